/**
 * Client input as it enters the gateway, REST bodies and queries and socket payloads alike:
 * - keys that name the prototype machinery (`__proto__`, `constructor`, `prototype`) are removed at
 *   every depth — JSON.parse makes `__proto__` an own key, and moleculer-web's `Object.assign` of
 *   the body into the params would then set the params object's prototype;
 * - nesting deeper than MAX_DEPTH is refused with BAD_REQUEST: no request of the contract nests more
 *   than a few levels, and the validator and error formatting recurse (a 10,000-deep array in a
 *   field overflowed the stack: 500).
 */
import { AppError } from "../errors.js";

export const MAX_DEPTH = 32;

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** Removes the forbidden keys in place (iteratively, to any depth it allows); throws BAD_REQUEST past MAX_DEPTH. */
export function sanitizeInput(value: unknown, maxDepth = MAX_DEPTH): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== "object") continue;
    if (depth > maxDepth) throw AppError.badRequest(`Input is nested too deeply (at most ${maxDepth} levels)`);
    if (Array.isArray(node)) {
      for (const item of node) stack.push([item, depth + 1]);
      continue;
    }
    for (const key of Object.keys(node)) {
      if (FORBIDDEN_KEYS.has(key)) delete (node as Record<string, unknown>)[key];
      else stack.push([(node as Record<string, unknown>)[key], depth + 1]);
    }
  }
}

/** A moleculer-web route middleware (after the body parsers): sanitizes `req.body` and `req.query`. */
export function sanitizeRequest(
  req: { body?: unknown; query?: unknown },
  _res: unknown,
  next: (err?: unknown) => void,
): void {
  try {
    sanitizeInput(req.body);
    sanitizeInput(req.query);
    next();
  } catch (err) {
    next(err);
  }
}
