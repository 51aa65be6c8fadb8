/**
 * Refusals, asserted one way per channel. Each checks the contract's error object
 * (src/contracts/errors.ts: code, a message, `fields` exactly on VALIDATION_ERROR, nothing else)
 * and the status the contract gives its code (ERROR_STATUS):
 *
 *   expectError(res, 404, "NOT_FOUND", what)              a REST answer (accounts-helpers' api())
 *   expectValidation(res, "body", what)                    a REST 422 naming a field
 *   expectAckError(ack, "FORBIDDEN", what)                 a socket ack
 *   await rejectsWith(broker.call(…), "FORBIDDEN", what)   a broker call or a store method
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- error bodies of a black-box API */
import assert from "node:assert/strict";
import { ERROR_STATUS, type ErrorBody, type ErrorCode } from "../../src/contracts/errors.js";
import type { ApiResponse } from "./accounts-helpers.js";

const ERROR_KEYS = new Set(["code", "message", "fields", "retryAfter", "requestId"]);

/** Asserts `error` is the contract's error object with one of `codes`. */
function assertErrorBody(error: unknown, codes: readonly ErrorCode[], label: string): ErrorBody {
  assert.ok(error && typeof error === "object", `no error object: ${label}`);
  const e = error as ErrorBody;
  assert.ok(codes.includes(e.code), `code ${e.code} not in ${codes.join("|")}: ${label}`);
  assert.equal(typeof e.message, "string", label);
  assert.ok(e.message.length > 0, `empty message: ${label}`);
  for (const key of Object.keys(e)) assert.ok(ERROR_KEYS.has(key), `unexpected error key "${key}": ${label}`);
  if (e.code === "VALIDATION_ERROR") {
    assert.ok(Array.isArray(e.fields) && e.fields.length > 0, `no fields: ${label}`);
    for (const f of e.fields) {
      assert.equal(typeof f.field, "string", label);
      assert.equal(typeof f.message, "string", label);
    }
  } else {
    assert.equal(e.fields, undefined, `fields on a non-validation error: ${label}`);
  }
  return e;
}

/** A REST error answer: `status`, the `{ error }` envelope, `code`; returns the error. */
export function expectError(res: ApiResponse, status: number, code: ErrorCode, what = ""): ErrorBody {
  const label = `${what ? what + ": " : ""}got ${res.status} ${res.text.slice(0, 400)}`;
  assert.equal(status, ERROR_STATUS[code], `the contract answers ${code} with ${ERROR_STATUS[code]}, not ${status}`);
  assert.equal(res.status, status, label);
  assert.ok(res.body && typeof res.body === "object", `error body is not JSON: ${label}`);
  assert.ok(res.body.error && typeof res.body.error === "object", `no { error } envelope: ${label}`);
  return assertErrorBody(res.body.error, [code], label);
}

/** A REST 422 VALIDATION_ERROR whose `fields` names `field`. */
export function expectValidation(res: ApiResponse, field: string, what = ""): ErrorBody {
  const error = expectError(res, 422, "VALIDATION_ERROR", what);
  assert.ok(
    error.fields!.some((f) => f.field === field),
    `${what}: expected a field error for "${field}", got ${JSON.stringify(error.fields)}`,
  );
  return error;
}

/** A socket ack `{ ok: false, error }` (no data) with `code` (or one of several); returns the error. */
export function expectAckError(ack: unknown, code: ErrorCode | readonly ErrorCode[], what: string): ErrorBody {
  const label = `${what}: got ${JSON.stringify(ack)?.slice(0, 400)}`;
  assert.ok(ack && typeof ack === "object", `ack is not an object: ${label}`);
  const a = ack as { ok?: unknown; error?: unknown };
  assert.equal(a.ok, false, label);
  assert.ok(!("data" in a), `an error ack carries data: ${label}`);
  return assertErrorBody(a.error, typeof code === "string" ? [code] : code, label);
}

/** A MoleculerError as a caller sees it: AppError or Moleculer's own in-process, a plain Error from another node. */
export type CallError = Error & { type: string; code: number; data?: any; retryable?: boolean };

/**
 * A broker call or store method that must fail with the contract's `type`, whose `code` is the
 * type's status; returns the error.
 */
export async function rejectsWith(promise: Promise<unknown>, type: ErrorCode, what = ""): Promise<CallError> {
  const label = what ? `${what}: ` : "";
  const err: unknown = await promise.then(
    (value) => assert.fail(`${label}expected a ${type} rejection, got ${JSON.stringify(value)}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error, `${label}expected an error, got ${String(err)}`);
  const e = err as CallError;
  assert.equal(e.type, type, `${label}${e.name}: ${e.message}`);
  assert.equal(e.code, ERROR_STATUS[type], `${label}the status of ${type}`);
  return e;
}
