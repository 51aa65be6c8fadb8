/**
 * Broker options for every mode, derived from the environment by src/config.ts.
 * No TRANSPORTER → all services in one process; TRANSPORTER=amqp://… (or amqps://…) → RabbitMQ.
 */
import { readFileSync } from "node:fs";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import type { BrokerOptions } from "moleculer";
import { config } from "./src/config.js";
import { databaseUnavailable } from "./src/errors.js";
import { DatabaseOutageMiddleware } from "./src/infra/database-outage.js";
import { PermissionMiddleware } from "./src/infra/permissions.js";
import { jsonLogFormatter, RequestContextMiddleware } from "./src/infra/request-context.js";
import { tracingOptions } from "./src/infra/tracing.js";

const c = config();

/**
 * TLS options for an `amqps://` TRANSPORTER (TRANSPORTER_TLS_*). Moleculer's AMQP transporter hands
 * `socketOptions` to amqplib's connect, which passes them to tls.connect — but it sets `servername`
 * to the URL's host itself, over ours; so a different name to verify the server's certificate
 * against is given as checkServerIdentity (SNI stays the URL's host).
 */
function amqpTlsOptions(): Record<string, unknown> {
  const tls = c.transporterTls;
  if (!tls) return {};
  const servername = tls.servername;
  return {
    ...(tls.ca ? { ca: readFileSync(tls.ca) } : {}),
    ...(tls.cert && tls.key ? { cert: readFileSync(tls.cert), key: readFileSync(tls.key) } : {}),
    ...(servername
      ? { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(servername, cert) }
      : {}),
  };
}

// `socketOptions` is passed to amqplib's connect by the transporter but missing from its typings.
const amqpOptions = {
  url: c.transporter,
  // Without noDelay Nagle's algorithm costs ~44 ms a call; prefetch lets a node work on many
  // requests at once instead of one at a time.
  socketOptions: { noDelay: true, ...amqpTlsOptions() },
  prefetch: c.amqpPrefetch,
};

const brokerOptions: BrokerOptions = {
  namespace: c.namespace,
  nodeID: c.nodeID,
  // A terminal gets short coloured lines; anything else JSON lines, which inside a request also
  // carry its requestId and userId (src/infra/request-context.ts).
  logger: {
    type: "Console",
    options: {
      // Moleculer calls a formatter function with more arguments than its typings say.
      formatter: process.stdout.isTTY
        ? "short"
        : (jsonLogFormatter as unknown as (t: string, a: unknown[]) => string[]),
      colors: process.stdout.isTTY,
      objectPrinter: null,
    },
  },
  logLevel: c.logLevel,
  transporter: c.transporter ? { type: "AMQP", options: amqpOptions } : null,
  // Heartbeats decide how fast a dead node's services (and a dead gateway's sockets) are counted out.
  heartbeatInterval: 2,
  heartbeatTimeout: 8,
  requestTimeout: c.requestTimeoutMs,
  // Announce a node's services at once (default: 1 s later), so a node that looks ready to its
  // peers also receives their broadcasts.
  transit: { serviceChangedDebounceTime: 50 } as BrokerOptions["transit"], // missing from the typings
  // Retries exactly the errors marked `retryable`: Moleculer's own (a timeout, a lost node) and a
  // database outage where running the call again is safe (DatabaseOutageMiddleware: nothing was
  // done, or the action is idempotent like chat.send). After the last retry the caller still gets
  // the UNAVAILABLE itself, with its retryAfter.
  retryPolicy: {
    enabled: true,
    retries: 3,
    delay: 100,
    maxDelay: 1000,
    factor: 2,
    check: (err: Error) => Boolean((err as Error & { retryable?: boolean }).retryable),
  },
  circuitBreaker: {
    enabled: true,
    threshold: 0.5,
    minRequestCount: 20,
    windowTime: 60,
    halfOpenTime: 10_000,
    // Server faults open the breaker; UNAVAILABLE is a service saying "not now" (its store is down:
    // DatabaseOutageMiddleware turns every driver outage error into UNAVAILABLE where it happens),
    // which must not keep it closed off for halfOpenTime after the store is back.
    check: (err: Error) => {
      const e = err as Error & { code?: number; type?: string };
      return (e.code ?? 500) >= 500 && e.type !== "UNAVAILABLE" && !databaseUnavailable(err);
    },
  },
  // Graceful shutdown: a stopping node finishes the requests it has taken.
  tracking: { enabled: true, shutdownTimeout: 10_000 },
  registry: { strategy: "RoundRobin", preferLocal: true },
  validator: true,
  // The first listed wraps the handler most closely: Permissions, then DatabaseOutage (which
  // Moleculer's CircuitBreaker and Retry, registered after these, see the result of), then
  // RequestContext, so that what those two log also names the request.
  middlewares: [PermissionMiddleware, DatabaseOutageMiddleware, RequestContextMiddleware],
  // METRICS=true or METRICS_PORT: Moleculer's metrics and NoChat's (src/infra/metrics.ts), in
  // `$node.metrics` and the REPL's `metrics`; METRICS_PORT also serves them to Prometheus, one
  // endpoint per process (GET /metrics, labels namespace and nodeID).
  metrics: {
    enabled: c.metrics,
    reporter: c.metricsPort ? [{ type: "Prometheus", options: { port: c.metricsPort, path: "/metrics" } }] : [],
  },
  // TRACING=console|event|off (src/infra/tracing.ts): spans whose traceID is the request id.
  tracing: tracingOptions(c.tracing, process.stdout.isTTY),
};

export default brokerOptions;
