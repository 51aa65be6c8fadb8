/**
 * The one error type of NoChat and its mapping to the public error shape (docs/API.md).
 * AppError extends MoleculerError so it crosses the bus intact: `type` carries the contract code,
 * `code` the HTTP status and `data.fields` the bad fields. A store error that means "the database
 * is unreachable or restarting" is UNAVAILABLE with a retry hint (databaseUnavailable() below lists
 * every driver code with its reason); whatever else is thrown — a driver error, a bug — reaches a
 * client only as INTERNAL with a request id, never with its message.
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
  static unavailable(message = "A service is unavailable, try again", retryAfterSeconds?: number): AppError {
    return new AppError(
      "UNAVAILABLE",
      message,
      retryAfterSeconds === undefined ? {} : { retryAfter: retryAfterSeconds },
    );
  }
  /**
   * A store outage seen where it happened. `retryable` tells Moleculer's retry policy (and the
   * caller) that running the call again inside the cluster is safe.
   */
  static databaseUnavailable(outage: DatabaseOutage, retryable: boolean): AppError {
    const err = new AppError("UNAVAILABLE", OUTAGE_MESSAGE[outage.store], { retryAfter: DATABASE_RETRY_AFTER_S });
    err.retryable = retryable;
    return err;
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

// ---- database outages ---------------------------------------------------------------------------

/** What databaseUnavailable() found: the store error means "the database is unreachable or restarting". */
export interface DatabaseOutage {
  /** Which store: SQL (MariaDB/MySQL through mysql2 and knex, or SQLite) or the log's MongoDB. */
  store: "sql" | "mongodb";
  /** The driver code, error name, server errno or label that matched. */
  code: string;
  /** Why that code means an outage (from the tables below). */
  reason: string;
  /**
   * True when the failed statement or transaction certainly had no effect (the server was never
   * reached, refused the connection, or rolled the transaction back): running the call again is
   * safe for any action. False when it may have run (the connection died mid-statement).
   */
  nothingDone: boolean;
}

/** Seconds a client is told to wait (Retry-After, `retryAfter`) before retrying during an outage. */
export const DATABASE_RETRY_AFTER_S = 2;

const OUTAGE_MESSAGE: Record<DatabaseOutage["store"], string> = {
  sql: "The database is unavailable, try again",
  mongodb: "The log store is unavailable, try again",
};

/** [nothingDone, reason] */
type OutageRule = readonly [boolean, string];
/** [nothingDone, reason, store] */
type NamedRule = readonly [boolean, string, DatabaseOutage["store"]];
const NOT_RUN = true;
const MAYBE_RUN = false;

/**
 * `err.code` of mysql2 (MariaDB/MySQL), of Node's sockets underneath it, and of better-sqlite3.
 * Anything else (a syntax error, ER_DUP_ENTRY, ER_ACCESS_DENIED_ERROR, …) is a bug or a
 * misconfiguration and stays INTERNAL.
 */
const SQL_CODES: Record<string, OutageRule> = {
  // Node's sockets, as mysql2 reports them
  ECONNREFUSED: [NOT_RUN, "nothing listens on the database port: the server is stopped or still starting"],
  ECONNRESET: [MAYBE_RUN, "the server or the network reset the connection (server killed or restarting)"],
  EPIPE: [MAYBE_RUN, "a statement was written to a connection the server had already closed"],
  ETIMEDOUT: [MAYBE_RUN, "the database host did not answer in time (connect or socket timeout)"],
  EHOSTUNREACH: [NOT_RUN, "no route to the database host: its machine or network is down"],
  ENETUNREACH: [NOT_RUN, "no network route to the database host"],
  ENOTFOUND: [NOT_RUN, "the database host name does not resolve (its container or DNS entry is being replaced)"],
  EAI_AGAIN: [NOT_RUN, "temporary DNS failure resolving the database host"],
  // mysql2's own
  PROTOCOL_CONNECTION_LOST: [MAYBE_RUN, "the server closed the connection (shutdown, restart, killed connection)"],
  PROTOCOL_SEQUENCE_TIMEOUT: [MAYBE_RUN, "the server did not answer a statement in time"],
  // MariaDB/MySQL server errors
  ER_SERVER_SHUTDOWN: [MAYBE_RUN, "1053: the server is shutting down and aborted the statement"],
  ER_CON_COUNT_ERROR: [NOT_RUN, "1040: too many connections, the server refused a new one"],
  ER_LOCK_WAIT_TIMEOUT: [NOT_RUN, "1205: lock wait timeout, the statement was rolled back; worth a retry"],
  ER_LOCK_DEADLOCK: [NOT_RUN, "1213: deadlock, the server rolled the whole transaction back; worth a retry"],
  ER_CLIENT_INTERACTION_TIMEOUT: [MAYBE_RUN, "4031 (MySQL 8): the server closed the connection as idle"],
  // better-sqlite3 (SQLite): the write lock was held past busy_timeout; the statement did not run
  SQLITE_BUSY: [NOT_RUN, "another connection held the database lock past busy_timeout"],
  SQLITE_BUSY_RECOVERY: [NOT_RUN, "another connection is recovering the WAL file"],
  SQLITE_BUSY_SNAPSHOT: [NOT_RUN, "a read transaction's snapshot went stale under a concurrent write"],
  SQLITE_BUSY_TIMEOUT: [NOT_RUN, "a blocking lock was not granted in time"],
  SQLITE_LOCKED: [NOT_RUN, "a table is locked by another statement of the same connection"],
  SQLITE_LOCKED_SHAREDCACHE: [NOT_RUN, "a table is locked by another connection of the shared cache"],
};

/** Server errnos mysql2 has no code name for (`err.code` undefined, `err.sqlState` set). */
const SQL_ERRNOS: Record<number, OutageRule> = {
  1927: [MAYBE_RUN, "MariaDB ER_CONNECTION_KILLED: the connection was killed (server shutdown or KILL)"],
};

/** Errors with no code, recognised by their message. */
const SQL_MESSAGES: [string, OutageRule][] = [
  [
    "Can't add new command when connection is in closed state",
    [MAYBE_RUN, "mysql2: the pooled connection died before the statement was sent (its transaction is lost)"],
  ],
  ["Can't write in closed state", [MAYBE_RUN, "mysql2: the connection died while a statement was being sent"]],
];

/** By error name (kept when an error crosses the bus as a plain object). */
const NAMES: Record<string, NamedRule> = {
  // knex: acquiring a pooled connection timed out (acquireConnectionTimeout): the server does not
  // answer new connections or every connection is stuck; nothing was sent. (Also a query's own
  // .timeout(), which NoChat does not use.)
  KnexTimeoutError: [NOT_RUN, "knex: no pooled connection within acquireConnectionTimeout", "sql"],
  // MongoDB driver (the log service)
  MongoNetworkError: [MAYBE_RUN, "the connection to MongoDB failed or dropped (server down or restarting)", "mongodb"],
  MongoNetworkTimeoutError: [MAYBE_RUN, "MongoDB did not answer in time on an open connection", "mongodb"],
  MongoServerSelectionError: [NOT_RUN, "no MongoDB server was reachable within serverSelectionTimeoutMS", "mongodb"],
  MongoPoolClearedError: [NOT_RUN, "the driver cleared its pool after a network error; nothing was sent", "mongodb"],
};

/** MongoDB server error codes (on MongoServerError and its subclasses) of a server going away. */
const MONGO_CODES: Record<number, OutageRule> = {
  6: [MAYBE_RUN, "HostUnreachable: a member of the deployment is unreachable"],
  7: [MAYBE_RUN, "HostNotFound: a member's host name does not resolve"],
  89: [MAYBE_RUN, "NetworkTimeout between the server and another member"],
  91: [MAYBE_RUN, "ShutdownInProgress: the server is shutting down"],
  189: [MAYBE_RUN, "PrimarySteppedDown: a failover is in progress"],
  9001: [MAYBE_RUN, "SocketException inside the deployment"],
  10107: [MAYBE_RUN, "NotWritablePrimary: a failover is in progress"],
  11600: [MAYBE_RUN, "InterruptedAtShutdown: the server is shutting down"],
  11602: [MAYBE_RUN, "InterruptedDueToReplStateChange: a failover is in progress"],
  13435: [MAYBE_RUN, "NotPrimaryNoSecondaryOk: a failover is in progress"],
  13436: [MAYBE_RUN, "NotPrimaryOrSecondary: the member is starting or recovering"],
};

/** MongoDB driver error labels. */
const MONGO_LABELS: Record<string, OutageRule> = {
  // Added by the driver when a connection cannot be established (and by servers under overload).
  SystemOverloadedError: [NOT_RUN, "MongoDB refused or could not open a connection"],
};

interface DriverErrorLike {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  errno?: unknown;
  sqlState?: unknown;
  errorLabels?: unknown;
  cause?: unknown;
  errorResponse?: unknown;
  errors?: unknown;
}

function outage(store: DatabaseOutage["store"], code: string, [nothingDone, reason]: OutageRule): DatabaseOutage {
  return { store, code, reason, nothingDone };
}

/**
 * Whether a store error means "the database is unreachable or restarting" (→ UNAVAILABLE, safe to
 * retry later), and why; null for anything else (a bug, a constraint, bad SQL → INTERNAL). Looks
 * through wrappers: `cause`, MongoBulkWriteError's `errorResponse`, AggregateError's `errors`.
 */
export function databaseUnavailable(err: unknown, depth = 0): DatabaseOutage | null {
  if (!err || typeof err !== "object" || depth > 3) return null;
  const e = err as DriverErrorLike;
  const name = typeof e.name === "string" ? e.name : "";
  const message = typeof e.message === "string" ? e.message : "";
  const isMongo = name.startsWith("Mongo");

  if (typeof e.code === "string" && Object.hasOwn(SQL_CODES, e.code)) return outage("sql", e.code, SQL_CODES[e.code]);
  if (typeof e.sqlState === "string" && typeof e.errno === "number" && Object.hasOwn(SQL_ERRNOS, e.errno)) {
    return outage("sql", String(e.errno), SQL_ERRNOS[e.errno]);
  }
  if (Object.hasOwn(NAMES, name)) {
    const [nothingDone, reason, store] = NAMES[name];
    const acquire = name !== "KnexTimeoutError" || message.includes("acquiring a connection");
    return outage(store, name, [nothingDone && acquire, reason]);
  }
  if (isMongo && typeof e.code === "number" && Object.hasOwn(MONGO_CODES, e.code)) {
    return outage("mongodb", String(e.code), MONGO_CODES[e.code]);
  }
  if (isMongo && Array.isArray(e.errorLabels)) {
    const label = e.errorLabels.find((l): l is string => typeof l === "string" && Object.hasOwn(MONGO_LABELS, l));
    if (label) return outage("mongodb", label, MONGO_LABELS[label]);
  }
  for (const [text, rule] of SQL_MESSAGES) if (message.includes(text)) return outage("sql", text, rule);

  const inner = [e.cause, e.errorResponse, ...(Array.isArray(e.errors) ? e.errors : [])];
  for (const candidate of inner) {
    if (candidate === err) continue;
    const found = databaseUnavailable(candidate, depth + 1);
    // A wrapper from the MongoDB driver (MongoBulkWriteError) speaks for MongoDB.
    if (found) return isMongo ? { ...found, store: "mongodb" } : found;
  }
  return null;
}

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
  // The safety net: a driver error that reached here without passing the DatabaseOutage middleware
  // (src/infra/database-outage.ts), which converts it where it happens.
  const outage = databaseUnavailable(err);
  if (outage) {
    return {
      status: 503,
      body: { code: "UNAVAILABLE", message: OUTAGE_MESSAGE[outage.store], retryAfter: DATABASE_RETRY_AFTER_S },
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
