/**
 * Defence in depth for the audit log: whatever an event carries, values under keys that name a
 * secret never reach the store. (Events are built without secrets; this guards against mistakes.)
 */
const SECRET_KEY = /pass(word)?|secret|token|hash|authorization|cookie|credential/i;
export const REDACTED = "[redacted]";

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [
      k,
      SECRET_KEY.test(k) ? REDACTED : redact(v, depth + 1),
    ]),
  );
}
