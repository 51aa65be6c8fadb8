/**
 * The one place NoChat reads its environment. Every mode — embedded (one process, SQLite, file log
 * store) and clustered (RabbitMQ, MySQL, MongoDB) — is the same code configured from here.
 * The variable names are part of the operator contract (README, .env.example, Ansible).
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** The repository (or install) root: where package.json and public/ are, from src/ or dist/src/. */
export const PROJECT_ROOT = ((): string => {
  let dir = __dirname;
  while (!existsSync(path.join(dir, "package.json")) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

/** TRACING: spans printed with the logs, emitted on the bus as `$tracing.spans`, or none. */
export const TRACING_MODES = ["console", "event", "off"] as const;
export type TracingMode = (typeof TRACING_MODES)[number];

export const ALL_SERVICES = ["api", "auth", "users", "chat", "notify", "log"] as const;
export type ServiceName = (typeof ALL_SERVICES)[number];

export interface Config {
  /** `amqp://user:pass@host:5672` or `amqps://…:5671` → RabbitMQ; unset → every service in one process. */
  transporter: string | undefined;
  /** TLS for an `amqps://` TRANSPORTER: PEM files read at startup, and the name the server's certificate must carry. */
  transporterTls: TransporterTls | undefined;
  namespace: string;
  nodeID: string;
  services: ServiceName[];
  port: number;
  host: string;
  dataDir: string;
  /** `mysql://…` → MySQL/MariaDB; unset → SQLite file under DATA_DIR. */
  databaseUrl: string | undefined;
  /** `mongodb://…` → MongoDB; unset → embedded file store under DATA_DIR. */
  mongoUrl: string | undefined;
  jwtSecret: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlDays: number;
  admins: string[];
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
  requestTimeoutMs: number;
  amqpPrefetch: number;
  /** Origins allowed to open the socket; empty → same origin only. */
  allowedOrigins: string[];
  logRetentionDays: number;
  /** Per-user message sends on one gateway node: burst, sustained per second, per minute. */
  sendLimit: { burst: number; perSecond: number; perMinute: number };
  /** Proxies in front of the gateway whose X-Forwarded-For is believed (0: the peer address is the client). */
  trustProxy: number;
  /** Failed logins per window: per client address, per username from one address, per username from all. */
  loginLimit: { perAddress: number; perUserAddress: number; perUser: number; windowSeconds: number };
  /** Registrations per client address per window. */
  registerLimit: { perAddress: number; windowSeconds: number };
  /** Open sockets on one gateway node per user and per client address. */
  socketLimit: { perUser: number; perAddress: number };
  /** Client events per socket, each event its own bucket: sustained per second and burst; typing has its own rate. */
  socketEventLimit: { perSecond: number; burst: number; typingPerSecond: number };
  /** Rooms one `sync` call may ask for. */
  syncMaxRooms: number;
  /** Refusals (bad tokens, unknown usernames, unauthenticated 4xx) recorded one by one per kind per minute per node. */
  auditRefusalsPerMinute: number;
  /** Events the audit log keeps at most (the oldest beyond go), besides the retention in days. */
  logMaxEvents: number;
  /** Who sees `/api/health`'s per-node details: "admins" (default) or "public". */
  healthDetails: "admins" | "public";
  /** ROOM_ADDS_PER_HOUR: rooms others may put one user in per hour (invites, initial members, direct rooms). */
  roomAddsPerHour: number;
  /** Refusals of one durable event by one consumer before it is dead-lettered (OUTBOX_MAX_ATTEMPTS). */
  outboxMaxAttempts: number;
  /** First retry of a refused durable event after this many ms, doubling up to 60 s (OUTBOX_RETRY_MS). */
  outboxRetryMs: number;
  /**
   * Moleculer metrics with NoChat's own (src/infra/metrics.ts): METRICS=true, or implied by
   * METRICS_PORT. `$node.metrics`, the REPL's `metrics`.
   */
  metrics: boolean;
  /** METRICS_PORT: this process's Prometheus endpoint (`GET /metrics` on all interfaces); unset → none. */
  metricsPort: number | undefined;
  /** TRACING: Moleculer tracing spans printed with the logs ("console"), emitted as `$tracing.spans` ("event"), or none ("off"). */
  tracing: TracingMode;
}

export interface TransporterTls {
  /** TRANSPORTER_TLS_CA: CA certificate(s) to trust instead of the system's (PEM file). */
  ca?: string;
  /** TRANSPORTER_TLS_CERT / TRANSPORTER_TLS_KEY: a client certificate and its key (PEM files), both or neither. */
  cert?: string;
  key?: string;
  /** TRANSPORTER_TLS_SERVERNAME: the name to check the server's certificate against (default: the URL's host). */
  servername?: string;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

function list(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function parseServices(raw: string | undefined): ServiceName[] {
  const names = list(raw);
  if (names.length === 0) return [...ALL_SERVICES];
  if (names.length === 1 && names[0] === "none") return [];
  for (const name of names) {
    if (!(ALL_SERVICES as readonly string[]).includes(name)) {
      throw new Error(`SERVICES: unknown service "${name}" (known: ${ALL_SERVICES.join(", ")})`);
    }
  }
  return names as ServiceName[];
}

/**
 * TRANSPORTER_TLS_*: file paths, checked here so a typo stops the node at startup with the
 * variable's name; only meaningful with an `amqps://` TRANSPORTER.
 */
function transporterTls(env: Env, transporter: string | undefined): TransporterTls | undefined {
  const tls: TransporterTls = {};
  for (const [field, name] of [
    ["ca", "TRANSPORTER_TLS_CA"],
    ["cert", "TRANSPORTER_TLS_CERT"],
    ["key", "TRANSPORTER_TLS_KEY"],
  ] as const) {
    const file = env[name];
    if (!file) continue;
    if (!existsSync(file)) throw new Error(`${name}: no such file "${file}"`);
    tls[field] = path.resolve(file);
  }
  if (env.TRANSPORTER_TLS_SERVERNAME) tls.servername = env.TRANSPORTER_TLS_SERVERNAME;
  if (Boolean(tls.cert) !== Boolean(tls.key)) {
    throw new Error("TRANSPORTER_TLS_CERT and TRANSPORTER_TLS_KEY go together: give both or neither");
  }
  const given = Object.keys(tls).length > 0;
  const amqps = (transporter ?? "").split(";").every((url) => url.trim().startsWith("amqps://"));
  if (given && !(transporter && amqps)) {
    throw new Error("TRANSPORTER_TLS_* are set but TRANSPORTER is not an amqps:// URL");
  }
  return transporter && amqps ? tls : undefined;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;

/**
 * The embedded default keeps a generated secret under DATA_DIR so tokens survive a restart.
 * A cluster must share one secret, so there it has to be given — to the nodes that run auth, the
 * only service that signs or checks tokens; others (the operator's REPL too) have no use for it.
 */
function jwtSecret(env: Env, dataDir: string, clustered: boolean, needed: boolean): string {
  const given = env.JWT_SECRET;
  if (given) {
    if (given.length < 32) throw new Error("JWT_SECRET must be at least 32 characters");
    if (isPlaceholderSecret(given)) {
      throw new Error(
        "JWT_SECRET is a placeholder (as in .env.example); set a random one, e.g. `openssl rand -base64 48`",
      );
    }
    return given;
  }
  if (!needed) return "";
  if (clustered) throw new Error("JWT_SECRET is required when TRANSPORTER is set and this node runs auth");
  const file = path.join(dataDir, "jwt-secret");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(48).toString("base64url");
  writeFileSync(file, secret + "\n", { mode: 0o600 });
  return secret;
}

/**
 * Secrets copied from examples instead of generated: .env.example's, anything saying change-me /
 * your-secret / placeholder / example, or a run of x's.
 */
function isPlaceholderSecret(secret: string): boolean {
  const s = secret.toLowerCase();
  return /change-?me|your[-_]?secret|placeholder|example|xxxxxxxx/.test(s);
}

function tracing(raw: string | undefined): TracingMode {
  if (!raw) return "off";
  const mode = raw.toLowerCase();
  if ((TRACING_MODES as readonly string[]).includes(mode)) return mode as TracingMode;
  throw new Error(`TRACING must be one of ${TRACING_MODES.join(", ")}, got "${raw}"`);
}

function healthDetails(raw: string | undefined): Config["healthDetails"] {
  if (!raw) return "admins";
  if (raw === "admins" || raw === "public") return raw;
  throw new Error(`HEALTH_DETAILS must be "admins" or "public", got "${raw}"`);
}

/** METRICS_PORT: a port for the Prometheus endpoint, or unset (no endpoint). */
function metricsPort(env: Env): number | undefined {
  if (env.METRICS_PORT === undefined || env.METRICS_PORT === "") return undefined;
  return int(env, "METRICS_PORT", 0, 1, 65535);
}

export function loadConfig(env: Env = process.env): Config {
  const transporter = env.TRANSPORTER || undefined;
  const dataDir = path.resolve(env.DATA_DIR || "./data");
  const logLevel = (env.LOG_LEVEL || "info").toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new Error(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);
  }
  const services = parseServices(env.SERVICES);
  return {
    transporter,
    transporterTls: transporterTls(env, transporter),
    namespace: env.NAMESPACE || "nochat",
    nodeID: env.NODE_ID || `${os.hostname()}-${process.pid}`,
    services,
    port: int(env, "PORT", 3000, 0, 65535),
    host: env.HOST || "0.0.0.0",
    dataDir,
    databaseUrl: env.DATABASE_URL || undefined,
    mongoUrl: env.MONGO_URL || undefined,
    jwtSecret: jwtSecret(env, dataDir, transporter !== undefined, services.includes("auth")),
    accessTokenTtlSeconds: int(env, "ACCESS_TOKEN_TTL", 15 * 60, 10),
    refreshTokenTtlDays: int(env, "REFRESH_TOKEN_TTL_DAYS", 30, 1),
    admins: list(env.NOCHAT_ADMINS).map((u) => u.toLowerCase()),
    logLevel: logLevel as Config["logLevel"],
    requestTimeoutMs: int(env, "REQUEST_TIMEOUT", 10_000, 100),
    amqpPrefetch: int(env, "AMQP_PREFETCH", 100, 1),
    allowedOrigins: list(env.ALLOWED_ORIGINS),
    logRetentionDays: int(env, "LOG_RETENTION_DAYS", 90, 1),
    sendLimit: {
      burst: int(env, "SEND_BURST", 10, 1),
      perSecond: int(env, "SEND_PER_SECOND", 10, 1),
      perMinute: int(env, "SEND_PER_MINUTE", 100, 1),
    },
    outboxMaxAttempts: int(env, "OUTBOX_MAX_ATTEMPTS", 8, 1, 100),
    outboxRetryMs: int(env, "OUTBOX_RETRY_MS", 1_000, 10, 600_000),
    metrics: env.METRICS === "true" || env.METRICS === "1" || metricsPort(env) !== undefined,
    metricsPort: metricsPort(env),
    tracing: tracing(env.TRACING),
    trustProxy: int(env, "TRUST_PROXY", 0, 0, 10),
    loginLimit: {
      perAddress: int(env, "LOGIN_FAILURES_PER_ADDRESS", 30, 1),
      perUserAddress: int(env, "LOGIN_FAILURES_PER_USER_ADDRESS", 5, 1),
      perUser: int(env, "LOGIN_FAILURES_PER_USER", 50, 1),
      windowSeconds: int(env, "LOGIN_WINDOW_SECONDS", 900, 1),
    },
    registerLimit: {
      perAddress: int(env, "REGISTRATIONS_PER_ADDRESS", 10, 1),
      windowSeconds: int(env, "REGISTRATION_WINDOW_SECONDS", 3600, 1),
    },
    socketLimit: {
      perUser: int(env, "SOCKETS_PER_USER", 20, 1),
      perAddress: int(env, "SOCKETS_PER_ADDRESS", 100, 1),
    },
    socketEventLimit: {
      perSecond: int(env, "SOCKET_EVENTS_PER_SECOND", 10, 1),
      burst: int(env, "SOCKET_EVENT_BURST", 20, 1),
      typingPerSecond: int(env, "SOCKET_TYPING_PER_SECOND", 5, 1),
    },
    syncMaxRooms: int(env, "SYNC_MAX_ROOMS", 100, 1),
    auditRefusalsPerMinute: int(env, "AUDIT_REFUSALS_PER_MINUTE", 20, 0),
    logMaxEvents: int(env, "LOG_MAX_EVENTS", 1_000_000, 1000),
    healthDetails: healthDetails(env.HEALTH_DETAILS),
    roomAddsPerHour: int(env, "ROOM_ADDS_PER_HOUR", 50, 1),
  };
}

let cached: Config | undefined;

/** The process-wide configuration, read once. */
export function config(): Config {
  cached ??= loadConfig();
  return cached;
}

/** Tests that start brokers in-process against several databases re-read the environment. */
export function reloadConfig(env: Env = process.env): Config {
  cached = loadConfig(env);
  return cached;
}
