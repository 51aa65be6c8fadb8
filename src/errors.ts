/**
 * The one error type of NoChat and its mapping to the public error shape (shared/API.md).
 * AppError extends MoleculerError so it crosses the bus intact: `type` carries the contract code,
 * `code` the HTTP status and `data.fields` the bad fields. Whatever else is thrown — a driver
 * error, a bug — reaches a client only as INTERNAL with a request id, never with its message.
 */
import { Errors } from "moleculer";
import {
  ERROR_STATUS,
  type ErrorBody,
  type ErrorCode,
  type ErrorEnvelope,
  type FieldError,
} from "./contracts/errors.js";

export { ERROR_STATUS };
export type { ErrorBody, ErrorCode, ErrorEnvelope, FieldError };

interface AppErrorData {
  fields?: FieldError[];
  retryAfter?: number;
}

export class AppError extends Errors.MoleculerError {
  constructor(code: ErrorCode, message: string, data: AppErrorData = {}) {
    super(message, ERROR_STATUS[code], code, data);
  }

  static validation(fields: FieldError[]): AppError {
    const message = fields.map((f) => `${f.field}: ${f.message}`).join("; ");
    return new AppError("VALIDATION_ERROR", message || "Invalid parameters", {
      fields,
    });
  }
  static badRequest(message: string): AppError {
    return new AppError("BAD_REQUEST", message);
  }
  static unauthorized(message = "Authentication required"): AppError {
    return new AppError("UNAUTHORIZED", message);
  }
  static forbidden(message = "You are not allowed to do that"): AppError {
    return new AppError("FORBIDDEN", message);
  }
  static notFound(what: string): AppError {
    return new AppError("NOT_FOUND", `${what} not found`);
  }
  static conflict(message: string): AppError {
    return new AppError("CONFLICT", message);
  }
  static tooLarge(message: string): AppError {
    return new AppError("PAYLOAD_TOO_LARGE", message);
  }
  static unavailable(message = "A service is unavailable, try again"): AppError {
    return new AppError("UNAVAILABLE", message);
  }
  static rateLimited(retryAfterSeconds: number, message = "Too many requests"): AppError {
    return new AppError("RATE_LIMITED", message, {
      retryAfter: Math.max(1, Math.ceil(retryAfterSeconds)),
    });
  }
}

interface ErrorLike {
  name?: string;
  message?: string;
  code?: unknown;
  type?: unknown;
  status?: unknown;
  data?: unknown;
  retryable?: boolean;
}

const UNAVAILABLE_NAMES = new Set([
  "ServiceNotFoundError",
  "ServiceNotAvailableError",
  "RequestTimeoutError",
  "RequestRejectedError",
  "QueueIsFullError",
  "BrokerDisconnectedError",
  // moleculer-web's, for an alias whose action no node has registered (yet).
  "ServiceUnavailableError",
]);

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && value in ERROR_STATUS;
}

/** Moleculer's validator reports `[{ field, message, type, … }]`; the contract wants `{ field, message }`. */
function fieldsOf(data: unknown): FieldError[] {
  const items = Array.isArray(data) ? data : (data as AppErrorData | undefined)?.fields;
  if (!Array.isArray(items)) return [];
  return items.map((item: { field?: unknown; message?: unknown }) => ({
    field: String(item.field ?? ""),
    message: String(item.message ?? "is invalid"),
  }));
}

/** Maps anything thrown anywhere to the public error body. `internal` is true when it must be logged. */
export function toErrorBody(err: unknown, requestId?: string): { status: number; body: ErrorBody; internal: boolean } {
  const e = (err ?? {}) as ErrorLike;
  if (isErrorCode(e.type)) {
    const code = e.type;
    const body: ErrorBody = {
      code,
      message: code === "INTERNAL" ? "Internal error" : String(e.message),
    };
    if (code === "VALIDATION_ERROR") {
      body.fields = fieldsOf(e.data);
      if (body.fields.length > 0) body.message = body.fields.map((f) => f.message).join(" ");
    }
    const retryAfter = (e.data as AppErrorData | undefined)?.retryAfter;
    if (typeof retryAfter === "number") body.retryAfter = retryAfter;
    if (code === "INTERNAL" && requestId) body.requestId = requestId;
    return { status: ERROR_STATUS[code], body, internal: code === "INTERNAL" };
  }
  if (e.name && UNAVAILABLE_NAMES.has(e.name)) {
    return {
      status: 503,
      body: {
        code: "UNAVAILABLE",
        message: "A service is unavailable, try again",
      },
      internal: false,
    };
  }
  // body-parser and moleculer-web request errors
  const status = typeof e.status === "number" ? e.status : typeof e.code === "number" ? e.code : 0;
  if (status === 413 || e.type === "entity.too.large") {
    return {
      status: 413,
      body: { code: "PAYLOAD_TOO_LARGE", message: "Request body is too large" },
      internal: false,
    };
  }
  if (status === 400 || e.type === "entity.parse.failed" || e.type === "INVALID_REQUEST_BODY") {
    return {
      status: 400,
      body: { code: "BAD_REQUEST", message: "Malformed request body" },
      internal: false,
    };
  }
  if (status === 401)
    return {
      status: 401,
      body: { code: "UNAUTHORIZED", message: "Authentication required" },
      internal: false,
    };
  if (status === 403)
    return {
      status: 403,
      body: { code: "FORBIDDEN", message: "Forbidden" },
      internal: false,
    };
  if (status === 404)
    return {
      status: 404,
      body: { code: "NOT_FOUND", message: "Not found" },
      internal: false,
    };
  if (status === 415)
    return {
      status: 400,
      body: { code: "BAD_REQUEST", message: "Unsupported content type" },
      internal: false,
    };
  if (status === 429)
    return {
      status: 429,
      body: {
        code: "RATE_LIMITED",
        message: "Too many requests",
        retryAfter: 1,
      },
      internal: false,
    };
  const body: ErrorBody = { code: "INTERNAL", message: "Internal error" };
  if (requestId) body.requestId = requestId;
  return { status: 500, body, internal: true };
}

export function toEnvelope(err: unknown, requestId?: string): ErrorEnvelope {
  return { error: toErrorBody(err, requestId).body };
}
