/**
 * Makes a service a producer of durable domain events: its outbox table is migrated with its other
 * tables (list `outboxMigration(owner)` among them; later outbox changes and the dead-letter table
 * come from migrateOutbox here) and a relay delivers the rows to each consumer's `ingest` action.
 * Mix in before sqlMixin (`mixins: [outboxMixin(o), sqlMixin(o, …)]`): the last mixin starts
 * first, so the tables exist before the relay runs.
 *
 * Each producer answers `<owner>.outboxStatus` (its backlog per consumer, for the operator's REPL)
 * and for its own dead letters (admin only): `<owner>.outboxDeadLetters`,
 * `<owner>.outboxRetryDeadLetter`, `<owner>.outboxDropDeadLetter` — gathered across producers and
 * nodes by `log.deadLetters` & co. (src/infra/dead-letters.ts) — and keeps the gauge
 * `nochat_dead_letters{producer}` when metrics are enabled, and the backlog gauges
 * `nochat_outbox_backlog{producer,consumer}` and `nochat_outbox_lag_seconds{producer,consumer}` from
 * one grouped count of its outbox every BACKLOG_POLL_MS (not per event).
 */
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { config } from "../config.js";
import type { OutboxStatus } from "../contracts/actions.js";
import type { Consumer, DomainEvent } from "../contracts/domain-events.js";
import { METRIC, registerMetrics, setMetric } from "./metrics.js";
import type { CallMeta } from "./permissions.js";
import {
  countDeadLetters,
  dropDeadLetter,
  listDeadLetters,
  migrateOutbox,
  outboxBacklog,
  Outbox,
  OutboxRelay,
  retryDeadLetter,
  type DeadLetter,
  type DeliveryReport,
  type NewEvent,
} from "./outbox.js";
import type { WithSql } from "./sql-mixin.js";

export const DEAD_LETTER_GAUGE = METRIC.deadLetters;

/** How often a producer counts its outbox for the backlog gauges (when metrics are on). */
export const BACKLOG_POLL_MS = 5_000;

/** Every consumer of durable events: each producer reports a backlog (maybe 0) for each. */
const CONSUMERS: readonly Consumer[] = ["notify", "log"];

export interface WithOutbox extends WithSql {
  /** For this service's stores: writes in their transactions, wakes the relay after each commit. */
  outbox: Outbox;
  /** Delivers the outbox to its consumers. */
  relay: OutboxRelay;
  /** Writes events on their own (no transaction to join) and has the relay deliver them. */
  publish(events: NewEvent[]): Promise<DomainEvent[]>;
  /** Sets the dead-letter gauge from the table. */
  countDeadLetters(): Promise<number>;
  /** Sets the backlog gauges from one grouped count of the outbox. */
  measureBacklog(): Promise<void>;
  backlogTimer: NodeJS.Timeout | undefined;
}

/** What a producer instance answers to `outboxDeadLetters`. */
export interface ProducerDeadLetters {
  producer: string;
  nodeID: string;
  count: number;
  deadLetters: DeadLetter[];
}

const byWhom = (ctx: Context): { userId: number | null; requestId: string | null } => {
  const meta = ctx.meta as CallMeta;
  return { userId: meta.user?.id ?? null, requestId: meta.requestId ?? ctx.requestID ?? null };
};

/** How the relay retries a consumer: its `settings.outbox` when given (tests), else OUTBOX_MAX_ATTEMPTS and OUTBOX_RETRY_MS. */
export interface OutboxSettings {
  outbox?: { maxAttempts: number; retryMs: number };
}

export function outboxMixin(owner: string): Partial<ServiceSchema> {
  const mixin: Partial<ServiceSchema<ServiceSettingSchema & OutboxSettings, object, WithOutbox>> = {
    actions: {
      /** Internal (admin): this producer's dead letters in the database this instance uses. */
      outboxDeadLetters: {
        roles: ["admin"],
        visibility: "public",
        params: { limit: { type: "number", integer: true, min: 1, max: 1000, optional: true, convert: true } },
        async handler(ctx: Context<{ limit?: number }>): Promise<ProducerDeadLetters> {
          const [count, deadLetters] = await Promise.all([
            this.countDeadLetters(),
            listDeadLetters(this.db, owner, ctx.params.limit ?? 100),
          ]);
          return { producer: owner, nodeID: this.broker.nodeID, count, deadLetters };
        },
      },
      /** Admins and the operator (REPL `outbox`): what this producer's consumers have not acknowledged yet. */
      outboxStatus: {
        idempotent: true,
        roles: ["admin"],
        visibility: "public",
        params: {},
        async handler(): Promise<OutboxStatus> {
          const now = Date.now();
          const [backlog, deadLetters] = await Promise.all([
            outboxBacklog(this.db, owner, CONSUMERS),
            this.countDeadLetters(),
          ]);
          const consumers = backlog.map(({ consumer, count, oldestAt }) => ({
            consumer,
            pending: count,
            oldestAgeMs: oldestAt === null ? 0 : Math.max(0, now - oldestAt),
          }));
          return { producer: owner, consumers, deadLetters };
        },
      },
      /** Internal (admin): back into the outbox for its consumer; null when this database has no such id. */
      outboxRetryDeadLetter: {
        roles: ["admin"],
        visibility: "public",
        params: { id: { type: "uuid" } },
        async handler(ctx: Context<{ id: string }>): Promise<DeadLetter | null> {
          const letter = await retryDeadLetter(this.db, owner, ctx.params.id, byWhom(ctx), this.broker.nodeID);
          if (letter) {
            this.logger.info(`outbox: dead letter ${letter.id} (${letter.type} → ${letter.consumer}) retried`);
            this.relay.kick();
            await this.countDeadLetters();
          }
          return letter;
        },
      },
      /** Internal (admin): deletes a dead letter for good; null when this database has no such id. */
      outboxDropDeadLetter: {
        roles: ["admin"],
        visibility: "public",
        params: { id: { type: "uuid" } },
        async handler(ctx: Context<{ id: string }>): Promise<DeadLetter | null> {
          const letter = await dropDeadLetter(this.db, owner, ctx.params.id, byWhom(ctx), this.broker.nodeID);
          if (letter) {
            this.logger.info(`outbox: dead letter ${letter.id} (${letter.type} → ${letter.consumer}) dropped`);
            this.relay.kick();
            await this.countDeadLetters();
          }
          return letter;
        },
      },
    },
    methods: {
      async publish(events: NewEvent[]) {
        return this.outbox.write(this.db, events);
      },
      async countDeadLetters() {
        const n = await countDeadLetters(this.db, owner);
        setMetric(this.broker, METRIC.deadLetters, n, { producer: owner });
        return n;
      },
      async measureBacklog() {
        const now = Date.now();
        for (const { consumer, count, oldestAt } of await outboxBacklog(this.db, owner, CONSUMERS)) {
          const labels = { producer: owner, consumer };
          setMetric(this.broker, METRIC.outboxBacklog, count, labels);
          setMetric(this.broker, METRIC.outboxLag, oldestAt === null ? 0 : Math.max(0, now - oldestAt) / 1000, labels);
        }
      },
    },
    async started() {
      await migrateOutbox(this.db, owner);
      const metrics = registerMetrics(this.broker, [METRIC.deadLetters, METRIC.outboxBacklog, METRIC.outboxLag]);
      const retries = this.settings.outbox ?? {
        maxAttempts: config().outboxMaxAttempts,
        retryMs: config().outboxRetryMs,
      };
      this.outbox = new Outbox(owner, this.broker.nodeID);
      this.relay = new OutboxRelay(
        this.db,
        owner,
        this.broker.nodeID,
        async (consumer, events) =>
          (await this.broker.call(`${consumer}.ingest`, { events }, { timeout: 15_000, retries: 0 })) as DeliveryReport,
        {
          maxAttempts: retries.maxAttempts,
          retryBaseMs: retries.retryMs,
          onError: (consumer, err) =>
            this.logger.debug(`outbox: delivery to ${consumer} failed, will retry`, (err as Error).message),
          onDeadLetter: (letter) => {
            this.logger.warn(
              `outbox: ${letter.type} ${letter.eventId} dead-lettered for ${letter.consumer} after ` +
                `${letter.attempts} attempts (dead letter ${letter.id}): ${letter.lastError.slice(0, 300)}`,
            );
            void this.countDeadLetters().catch(() => undefined);
          },
        },
      );
      this.outbox.onCommitted(() => this.relay.kick());
      await this.countDeadLetters();
      this.relay.start();
      if (metrics) {
        const measure = () =>
          this.measureBacklog().catch((err: unknown) =>
            this.logger.debug("outbox: backlog not counted", (err as Error).message),
          );
        await measure();
        this.backlogTimer = setInterval(() => void measure(), BACKLOG_POLL_MS);
        this.backlogTimer.unref();
      }
    },
    async stopped() {
      clearInterval(this.backlogTimer);
      await this.relay?.stop();
    },
  };
  return mixin as Partial<ServiceSchema>;
}
