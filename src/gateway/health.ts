/**
 * `/api/health`: which NoChat services and nodes the registry sees as available right now; and the
 * load balancers' and systemd's probes: `/api/health/live` (the process answers) and
 * `/api/health/ready` (the required services are available and the databases this gateway needs answer).
 */
import type { ServiceBroker } from "moleculer";
import { toErrorBody } from "../errors.js";

export interface Health {
  status: "ok" | "degraded";
  services: string[];
  missing: string[];
  /** Admins only, unless HEALTH_DETAILS=public. */
  nodes?: { id: string; local: boolean; services: string[] }[];
}

interface ServiceItem {
  name: string;
  nodeID: string;
}
interface NodeItem {
  id: string;
  local: boolean;
  available: boolean;
}

export function healthOf(registry: ServiceBroker["registry"], required: readonly string[]): Health {
  const services = (
    registry.getServiceList({
      onlyAvailable: true,
      skipInternal: true,
    }) as ServiceItem[]
  ).filter((s) => !s.name.startsWith("$"));
  const nodes = (
    registry.getNodeList({
      onlyAvailable: true,
      withServices: false,
    }) as NodeItem[]
  ).map((n) => ({
    id: n.id,
    local: n.local,
    services: [...new Set(services.filter((s) => s.nodeID === n.id).map((s) => s.name))].sort(),
  }));
  const names = [...new Set(services.map((s) => s.name))].sort();
  const missing = required.filter((name) => !names.includes(name));
  return {
    status: missing.length === 0 ? "ok" : "degraded",
    services: names,
    missing,
    nodes,
  };
}

/** `/api/health/live`: the process answers. */
export interface Liveness {
  status: "ok";
}

/** `/api/health/ready` when it answers 200: what was checked. */
export interface Readiness {
  status: "ok";
  /** The services whose `ready` action answered (each one's database answers). */
  checked: string[];
}

/**
 * The services whose `ready` action (src/infra/sql-mixin.ts: `SELECT 1` on their database) the
 * gateway needs to answer: its own (`api`: its outbox) and those REST calls and sockets reach on
 * every request. `log` is not among them: audit records wait in the outboxes while it is away.
 */
export const READY_PROBED = ["api", "auth", "users", "chat", "notify"] as const;

/** How long the gateway waits for one service's `ready` before counting it as not answering. */
export const READY_CALL_TIMEOUT_MS = 1_500;

/** Calls `<service>.ready`; rejects when the service or its database does not answer. */
export type ReadyProbe = (service: string) => Promise<unknown>;

/**
 * Why this gateway is not ready (empty when it is): the required services the registry does not
 * see, then each available service in `probed` whose `ready` failed, with the reason it gave.
 * The probes run at once; each is bounded by the caller's timeout.
 */
export async function notReadyReasons(
  health: Pick<Health, "missing" | "services">,
  probed: readonly string[],
  probe: ReadyProbe,
): Promise<{ reasons: string[]; checked: string[] }> {
  const reasons = health.missing.map((name) => `service ${name} is not available`);
  const targets = probed.filter((name) => health.services.includes(name));
  const results = await Promise.allSettled(targets.map((name) => probe(name)));
  const checked: string[] = [];
  results.forEach((result, i) => {
    if (result.status === "fulfilled") checked.push(targets[i]);
    else reasons.push(`${targets[i]}: ${probeFailure(result.reason)}`);
  });
  return { reasons, checked };
}

function probeFailure(err: unknown): string {
  const e = (err ?? {}) as { name?: string; type?: string; message?: string };
  if (e.name === "RequestTimeoutError") return `did not answer within ${READY_CALL_TIMEOUT_MS} ms`;
  // AppError (UNAVAILABLE from the outage middleware or the ping's own timeout) carries its reason.
  if (e.type === "UNAVAILABLE" && e.message) return e.message;
  // Anything else is a bug, logged where it happened; its message is not for a public endpoint.
  const { body } = toErrorBody(err);
  return body.code === "INTERNAL" ? "failed (an internal error, see the service's log)" : body.message;
}
