/**
 * The request id a REST call runs under (Moleculer's `ctx.requestID`, answered as X-Request-ID):
 * the caller's X-Request-ID (else X-Correlation-ID, which moleculer-web also reads) when it is a sane
 * id — 1 to 64 of [A-Za-z0-9._-], so it fits the audit log's request_id column and cannot forge
 * log lines or headers — else none, and Moleculer makes a fresh UUID. Taking a proxy's or client's
 * id lets its own logs be joined with ours; an id only groups records, it grants nothing.
 */
import type { IncomingHttpHeaders } from "node:http";

export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value;
}

/** The caller's request id if it is acceptable; undefined → Moleculer generates one. */
export function incomingRequestId(headers: IncomingHttpHeaders): string | undefined {
  for (const given of [header(headers["x-request-id"]), header(headers["x-correlation-id"])]) {
    if (given !== undefined && REQUEST_ID_PATTERN.test(given)) return given;
  }
  return undefined;
}

/** moleculer-web's `rootCallOptions` hook: the REST call's root context gets the vetted id. */
export function restRootCallOptions(options: { requestID?: string }, req: { headers: IncomingHttpHeaders }): void {
  options.requestID = incomingRequestId(req.headers);
}
