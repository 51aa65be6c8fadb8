/** The error shape of docs/API.md: every REST error body and failed socket ack, on every side. */

export const ERROR_STATUS = {
  VALIDATION_ERROR: 422,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface FieldError {
  field: string;
  message: string;
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  fields?: FieldError[];
  retryAfter?: number;
  requestId?: string;
}

/** The contract's error envelope: `{ error: { code, message, fields? } }`. */
export interface ErrorEnvelope {
  error: ErrorBody;
}
