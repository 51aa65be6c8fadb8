/**
 * A database outage answers UNAVAILABLE, never INTERNAL. A driver error thrown inside a service
 * would cross the bus as a plain error and reach the client as INTERNAL, so this middleware
 * converts it where it happens, for every local action of every service:
 *
 * - an error databaseUnavailable() (src/errors.ts) recognises becomes
 *   `AppError("UNAVAILABLE", …, { retryAfter })`, marked `retryable` when running the call again
 *   inside the cluster is safe: nothing was done (refused connection, acquire timeout, too many
 *   connections, deadlock rolled back, …) or the action declares `idempotent: true` (chat.send,
 *   whose clientMsgId makes a repeat return the original). Moleculer's retry policy retries exactly
 *   the `retryable` errors; the circuit breaker ignores UNAVAILABLE (moleculer.config.ts).
 * - it is logged as an expected condition: one warning without a stack when a node first sees a
 *   database fail, and one info line "database … is back after N s" when a later call of a service
 *   that saw it succeeds — never one line per request.
 *
 * Background jobs (presence sweeps, …) report their errors with noteDatabaseError().
 */
import type { ActionSchema, Context, Logger, Middleware, Service, ServiceBroker } from "moleculer";
import { config } from "../config.js";
import { AppError, databaseUnavailable, type DatabaseOutage } from "../errors.js";

/**
 * A success right after a failure may be a call that raced the outage on a connection not yet
 * closed; the database counts as back once calls succeed this long after the last failure.
 */
const QUIET_MS = 1_000;

interface Down {
  /** When this node first saw the database fail. */
  since: number;
  lastFailure: number;
  /** The first success after the last failure. */
  firstSuccess: number | undefined;
  /** Calls answered UNAVAILABLE since. */
  refused: number;
  /** The services that saw it fail: a later success of one of them means it is back. */
  services: Set<string>;
}

/** Outages seen by one node, keyed by the database's name (its URL without credentials). */
export class OutageTracker {
  private readonly down = new Map<string, Down>();

  constructor(
    private readonly logger: Pick<Logger, "warn" | "info">,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a failure; the first one of an outage is logged as a warning (no stack). */
  failed(database: string, outage: DatabaseOutage, service: string): void {
    const now = this.now();
    const entry = this.down.get(database);
    if (entry) {
      entry.lastFailure = now;
      entry.firstSuccess = undefined;
      entry.refused += 1;
      entry.services.add(service);
      return;
    }
    this.down.set(database, {
      since: now,
      lastFailure: now,
      firstSuccess: undefined,
      refused: 1,
      services: new Set([service]),
    });
    this.logger.warn(
      `database ${database} is unavailable (${outage.code}: ${outage.reason}); ` +
        `its calls answer UNAVAILABLE until it is back`,
    );
  }

  /** A call of `service` that began at `startedAt` succeeded. */
  succeeded(service: string, startedAt: number): void {
    if (this.down.size === 0) return;
    const now = this.now();
    for (const [database, entry] of this.down) {
      // Only calls begun after the last failure say anything about the database now.
      if (!entry.services.has(service) || startedAt <= entry.lastFailure) continue;
      entry.firstSuccess ??= now;
      if (now - entry.lastFailure < QUIET_MS) continue;
      this.down.delete(database);
      const seconds = ((entry.firstSuccess - entry.since) / 1000).toFixed(1);
      this.logger.info(`database ${database} is back after ${seconds} s (${entry.refused} failed call(s) meanwhile)`);
    }
  }

  /** The databases currently counted as down (for tests and operators). */
  outages(): string[] {
    return [...this.down.keys()];
  }
}

/** A database URL without user, password or query, for logs. */
export function databaseName(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//").replace(/\?.*$/, "");
}

/** The database of this node a store error of `store` came from. */
function databaseOf(store: DatabaseOutage["store"]): string {
  const c = config();
  if (store === "mongodb") return c.mongoUrl ? databaseName(c.mongoUrl) : "the embedded log store";
  return c.databaseUrl ? databaseName(c.databaseUrl) : `sqlite:${c.dataDir}/nochat.sqlite`;
}

const trackers = new WeakMap<ServiceBroker, OutageTracker>();

/**
 * For errors outside actions (timers, background jobs): true when `err` is a database outage, which
 * is then counted in the node's outage (one warning per outage, not per error); false otherwise,
 * and the caller logs it as before.
 */
export function noteDatabaseError(service: Service, err: unknown): boolean {
  const outage = databaseUnavailable(err);
  if (!outage) return false;
  trackers.get(service.broker)?.failed(databaseOf(outage.store), outage, service.fullName);
  return true;
}

/** The databases this node currently counts as down. */
export function outagesOf(broker: ServiceBroker): string[] {
  return trackers.get(broker)?.outages() ?? [];
}

export interface OutageAwareAction {
  /**
   * Running the action twice has the effect of running it once (reads; chat.send with its
   * clientMsgId): a database error is then retried inside the cluster even when the statement may
   * have run.
   */
  idempotent?: boolean;
}

type Handler = (ctx: Context) => Promise<unknown>;

export const DatabaseOutageMiddleware: Middleware = {
  name: "DatabaseOutage",
  created(broker: ServiceBroker) {
    trackers.set(broker, new OutageTracker(broker.getLogger("database")));
  },
  localAction(this: ServiceBroker, next: Handler, action: ActionSchema & OutageAwareAction): Handler {
    const tracker = trackers.get(this);
    if (!tracker) return next;
    const service = (action.service as Service | undefined)?.fullName ?? String(action.name);
    const idempotent = action.idempotent === true;
    return function databaseOutage(ctx: Context) {
      const startedAt = Date.now();
      return next(ctx).then(
        (result) => {
          tracker.succeeded(service, startedAt);
          return result;
        },
        (err: unknown) => {
          const outage = databaseUnavailable(err);
          if (!outage) throw err;
          tracker.failed(databaseOf(outage.store), outage, service);
          throw AppError.databaseUnavailable(outage, outage.nothingDone || idempotent);
        },
      );
    };
  },
};
