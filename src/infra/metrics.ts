/**
 * NoChat's own Prometheus metrics, beside Moleculer's (METRICS=true or METRICS_PORT): their names,
 * and one-line helpers for the call sites that no-op when metrics are off. Everything here is in
 * memory; nothing adds a database or bus call to the send or fan-out path. Each process serves its
 * metrics on METRICS_PORT (moleculer.config.ts), with the default labels `namespace` and `nodeID`.
 *
 * Durations are in seconds (Prometheus' convention; Moleculer's own `moleculer_request_time` is in
 * milliseconds). Histograms carry buckets, `_sum` and `_count` (and Moleculer's sliding quantiles).
 */
import type { ServiceBroker } from "moleculer";

export const METRIC = {
  /** gauge: sockets connected to this gateway node. */
  socketsConnected: "nochat_sockets_connected",
  /** gauge {service}: available instances of each required service, as this gateway's registry sees them. */
  serviceInstances: "nochat_service_instances",
  /** gauge: users online in the cluster (every users instance reports the same count: use max()). */
  usersOnline: "nochat_users_online",
  /** counter: messages stored by chat.send (socket and REST; repeats of a clientMsgId not counted). */
  messagesSent: "nochat_messages_sent_total",
  /** histogram {outcome="ok"|"error"}: `message:send` from the socket event to its ack, on the gateway. */
  sendAck: "nochat_send_ack_seconds",
  /** histogram: chat's commit of a message to the gateway's emit to its sockets (clocks of two nodes). */
  fanout: "nochat_fanout_seconds",
  /** gauge {producer,consumer}: durable events in the producer's outbox still due to the consumer. */
  outboxBacklog: "nochat_outbox_backlog",
  /** gauge {producer,consumer}: age of the oldest of those events (0 when none): the delivery lag. */
  outboxLag: "nochat_outbox_lag_seconds",
  /** gauge {producer}: durable events set aside after their consumer kept refusing them. */
  deadLetters: "nochat_dead_letters",
  /** histogram: one batched write of audit events to the log's store. */
  auditWrite: "nochat_audit_write_seconds",
  /** counter: failed audit writes (the events stay in their producers' outboxes and come again). */
  auditWriteFailures: "nochat_audit_write_failures_total",
  /** counter {reason="bad_password"|"unknown_user"}: failed logins. */
  loginFailures: "nochat_login_failures_total",
  /** counter: logins refused by the failed-login throttle. */
  loginThrottled: "nochat_login_throttled_total",
  /** counter {limit="send"|"socket_event"|"socket_cap"|"register"}: requests refused RATE_LIMITED. */
  rateLimited: "nochat_rate_limited_total",
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/** Latency buckets in seconds: 1 ms to 10 s. */
const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Definition {
  type: "counter" | "gauge" | "histogram";
  labelNames?: string[];
  description: string;
}

const DEFINITIONS: Record<MetricName, Definition> = {
  [METRIC.socketsConnected]: { type: "gauge", description: "Sockets connected to this gateway node" },
  [METRIC.serviceInstances]: {
    type: "gauge",
    labelNames: ["service"],
    description: "Available instances of each required service, as this gateway sees them (0: missing)",
  },
  [METRIC.usersOnline]: { type: "gauge", description: "Users online in the cluster (same on every users node)" },
  [METRIC.messagesSent]: { type: "counter", description: "Messages stored by chat.send" },
  [METRIC.sendAck]: {
    type: "histogram",
    labelNames: ["outcome"],
    description: "message:send from the socket event to its ack, in seconds",
  },
  [METRIC.fanout]: {
    type: "histogram",
    description: "From chat's commit of a message to the gateway's emit to its sockets, in seconds",
  },
  [METRIC.outboxBacklog]: {
    type: "gauge",
    labelNames: ["producer", "consumer"],
    description: "Durable events in the producer's outbox not yet delivered to the consumer",
  },
  [METRIC.outboxLag]: {
    type: "gauge",
    labelNames: ["producer", "consumer"],
    description: "Age in seconds of the oldest durable event not yet delivered to the consumer (0: none)",
  },
  [METRIC.deadLetters]: {
    type: "gauge",
    labelNames: ["producer"],
    description: "Durable events set aside after their consumer kept refusing them",
  },
  [METRIC.auditWrite]: { type: "histogram", description: "One batched audit-log write, in seconds" },
  [METRIC.auditWriteFailures]: { type: "counter", description: "Failed audit-log writes" },
  [METRIC.loginFailures]: { type: "counter", labelNames: ["reason"], description: "Failed logins" },
  [METRIC.loginThrottled]: { type: "counter", description: "Logins refused by the failed-login throttle" },
  [METRIC.rateLimited]: { type: "counter", labelNames: ["limit"], description: "Requests refused RATE_LIMITED" },
};

/** Every metric name NoChat exports, as Prometheus shows them (histograms add _bucket, _sum, _count). */
export const NOCHAT_METRIC_NAMES: readonly MetricName[] = Object.values(METRIC);

/** The histograms among them. */
export const NOCHAT_HISTOGRAMS: readonly MetricName[] = NOCHAT_METRIC_NAMES.filter(
  (name) => DEFINITIONS[name].type === "histogram",
);

const registered = new WeakMap<ServiceBroker, Set<string>>();

/** Registers `names` once per broker; false when metrics are off. Unlabelled ones start at 0, so they show at once. */
export function registerMetrics(broker: ServiceBroker, names: readonly MetricName[]): boolean {
  if (!broker.isMetricsEnabled()) return false;
  let done = registered.get(broker);
  if (!done) registered.set(broker, (done = new Set()));
  for (const name of names) {
    if (done.has(name)) continue;
    done.add(name);
    if (broker.metrics.hasMetric(name)) continue;
    const def = DEFINITIONS[name];
    broker.metrics.register({
      name,
      type: def.type,
      labelNames: def.labelNames ?? [],
      description: def.description,
      ...(def.type === "histogram" ? { buckets: SECONDS_BUCKETS, quantiles: true } : {}),
    } as Parameters<ServiceBroker["metrics"]["register"]>[0]);
    if (!def.labelNames && def.type === "counter") broker.metrics.increment(name, undefined, 0);
    if (!def.labelNames && def.type === "gauge") broker.metrics.set(name, 0);
  }
  return true;
}

/** Adds to a counter. */
export function countMetric(broker: ServiceBroker, name: MetricName, labels?: Record<string, string>, by = 1): void {
  if (registerMetrics(broker, [name])) broker.metrics.increment(name, labels, by);
}

/** Sets a gauge. */
export function setMetric(
  broker: ServiceBroker,
  name: MetricName,
  value: number,
  labels?: Record<string, string>,
): void {
  if (registerMetrics(broker, [name])) broker.metrics.set(name, value, labels);
}

/** Records a duration in seconds from a `performance.now()` start (or a value in seconds with `seconds`). */
export function observeSince(
  broker: ServiceBroker,
  name: MetricName,
  startedAt: number,
  labels?: Record<string, string>,
): void {
  if (registerMetrics(broker, [name])) {
    broker.metrics.observe(name, (performance.now() - startedAt) / 1000, labels);
  }
}

/** Records a value in seconds. */
export function observeSeconds(
  broker: ServiceBroker,
  name: MetricName,
  seconds: number,
  labels?: Record<string, string>,
): void {
  if (registerMetrics(broker, [name])) broker.metrics.observe(name, Math.max(0, seconds), labels);
}

/** Times `work` into histogram `name` and counts its failures in counter `failures`. */
export async function timed<T>(
  broker: ServiceBroker,
  name: MetricName,
  failures: MetricName,
  work: () => Promise<T>,
): Promise<T> {
  const startedAt = performance.now();
  try {
    const result = await work();
    observeSince(broker, name, startedAt);
    return result;
  } catch (err) {
    countMetric(broker, failures);
    throw err;
  }
}
