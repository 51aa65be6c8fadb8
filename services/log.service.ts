import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { ResultOf } from "../src/contracts/actions.js";
import { config } from "../src/config.js";
import type { DomainEvent } from "../src/contracts/domain-events.js";
import { rules } from "../src/contracts/limits.js";
import { AppError } from "../src/errors.js";
import { actOnDeadLetter, gatherDeadLetters, type DeadLetterListing } from "../src/infra/dead-letters.js";
import { openDocStore, type DocStore } from "../src/infra/docstore.js";
import type { DeadLetter } from "../src/infra/outbox.js";
import { outboxMigration, type NewEvent } from "../src/infra/outbox.js";
import { outboxMixin, type WithOutbox } from "../src/infra/outbox-mixin.js";
import { METRIC, registerMetrics, timed } from "../src/infra/metrics.js";
import { sqlMixin } from "../src/infra/sql-mixin.js";
import { BatchWriter } from "../src/log/batch-writer.js";
import { EventLog, toEventDoc, type EventDoc } from "../src/log/event-log.js";

/** The service's own methods (`methods` below), typed for their callers and their bodies. */
interface Methods {
  ready(): EventLog;
  connect(): Promise<void>;
  purge(): Promise<void>;
  recordClusterEvent(
    type: "cluster.node_connected" | "cluster.node_disconnected",
    node: NodeInfo,
    flag: boolean,
  ): Promise<void>;
}

/** Where the audit log lives: `settings` when given (tests), else MONGO_URL and DATA_DIR. */
interface Settings extends ServiceSettingSchema {
  mongoUrl?: string;
  dataDir?: string;
}

interface Vars extends WithOutbox {
  docs: DocStore | undefined;
  eventLog: EventLog | undefined;
  connectTimer: NodeJS.Timeout | undefined;
  writer: BatchWriter<EventDoc>;
  purgeTimer: NodeJS.Timeout;
}

interface NodeInfo {
  id: string;
  instanceID?: string;
  seq?: number;
}

interface QueryParams {
  type?: string;
  userId?: number;
  roomId?: number;
  from?: Date;
  to?: Date;
  before?: string;
  limit?: number;
}

/** Retention and the size bound: checked this often (and at start). */
const PURGE_EVERY_MS = 10 * 60 * 1000;
const date = { type: "date", convert: true, optional: true } as const;

const LogService: ServiceSchema<Settings, Methods, Vars> = {
  name: "log",
  // Its SQL database holds only its outbox: cluster events wait there like everyone else's.
  mixins: [outboxMixin("log"), sqlMixin("log", [outboxMigration("log")])],

  actions: {
    /**
     * Internal: the durable event path delivers here. The batch is written before this returns, so
     * returning acknowledges it; if the store is unreachable (or the buffer is full) the call fails
     * and the events stay in the producers' outboxes until it is back. Replays are absorbed by the
     * event-id key.
     */
    ingest: {
      idempotent: true,
      visibility: "public",
      params: { events: { type: "array", items: "object", max: 1000 } },
      async handler(ctx: Context<{ events: DomainEvent[] }>): Promise<{ stored: number }> {
        return { stored: await this.writer.add(ctx.params.events.map(toEventDoc)) };
      },
    },

    /** GET /api/admin/events: newest first; `before` is the id of the last event of the previous page. */
    query: {
      idempotent: true,
      roles: ["admin"],
      params: {
        type: { type: "string", max: 64, optional: true },
        userId: { ...rules.id, optional: true },
        roomId: { ...rules.id, optional: true },
        from: date,
        to: date,
        before: { type: "string", max: 64, optional: true },
        limit: rules.limit(500),
        $$strict: "remove",
      },
      // Params as the validator leaves them: `from`/`to` converted to Dates.
      async handler(ctx: Context<QueryParams>): Promise<ResultOf<"log.query">> {
        const { before, limit = 100, ...filters } = ctx.params;
        let cursor: { ts: Date; id: string } | undefined;
        if (before) {
          const last = await this.ready().get(before);
          if (!last) throw AppError.validation([{ field: "before", message: "No event has this id." }]);
          cursor = { ts: new Date(last.ts), id: last.id };
        }
        const events = await this.ready().query({ ...filters, before: cursor, limit });
        return { events, nextBefore: events.length === limit ? events[events.length - 1].id : null };
      },
    },

    /** GET /api/admin/events/stats: counts per type per hour over [from, to) (default: the last 24 h). */
    stats: {
      idempotent: true,
      roles: ["admin"],
      params: { from: date, to: date, $$strict: "remove" },
      async handler(ctx: Context<{ from?: Date; to?: Date }>): Promise<ResultOf<"log.stats">> {
        const to = ctx.params.to ?? new Date();
        const from = ctx.params.from ?? new Date(to.getTime() - 24 * 3_600_000);
        if (from >= to) throw AppError.validation([{ field: "from", message: "'from' must be before 'to'." }]);
        return { from: from.toISOString(), to: to.toISOString(), counts: await this.ready().hourlyCounts(from, to) };
      },
    },

    /**
     * GET /api/admin/dead-letters: durable events set aside after a consumer kept refusing them,
     * gathered from every producer on every node (src/infra/dead-letters.ts), oldest failure first.
     */
    deadLetters: {
      idempotent: true,
      roles: ["admin"],
      params: { limit: rules.limit(1000), $$strict: "remove" },
      async handler(ctx: Context<{ limit?: number }>): Promise<DeadLetterListing> {
        return gatherDeadLetters(ctx, this.broker, ctx.params.limit ?? 100);
      },
    },

    /** POST /api/admin/dead-letters/:id/retry: back into its producer's outbox for its consumer (audited). */
    retryDeadLetter: {
      roles: ["admin"],
      params: { id: { type: "uuid" }, $$strict: "remove" },
      async handler(ctx: Context<{ id: string }>): Promise<DeadLetter> {
        return actOnDeadLetter(ctx, this.broker, ctx.params.id, "retry");
      },
    },

    /** DELETE /api/admin/dead-letters/:id: gone for good (audited). */
    dropDeadLetter: {
      roles: ["admin"],
      params: { id: { type: "uuid" }, $$strict: "remove" },
      async handler(ctx: Context<{ id: string }>): Promise<void> {
        await actOnDeadLetter(ctx, this.broker, ctx.params.id, "drop");
      },
    },

    /** Internal: runs the retention purge now (operators, tests). */
    purge: {
      roles: ["admin"],
      params: {},
      async handler(): Promise<{ deleted: number }> {
        return { deleted: await this.ready().purge() };
      },
    },
  },

  events: {
    // Every log instance hears these; the id derived from the node's instance makes them one record.
    async "$node.connected"(ctx: Context<{ node: NodeInfo; reconnected: boolean }>) {
      await this.recordClusterEvent("cluster.node_connected", ctx.params.node, ctx.params.reconnected);
    },
    async "$node.disconnected"(ctx: Context<{ node: NodeInfo; unexpected: boolean }>) {
      await this.recordClusterEvent("cluster.node_disconnected", ctx.params.node, ctx.params.unexpected);
    },
  },

  methods: {
    async recordClusterEvent(type, node: NodeInfo, flag: boolean) {
      // The same key on every log instance: each node's arrival and departure is stored once.
      const idKey = `${type}:${node.id}:${node.instanceID ?? ""}${type === "cluster.node_connected" && flag ? ":re" : ""}`;
      const event: NewEvent =
        type === "cluster.node_connected"
          ? { type, idKey, requestId: null, data: { node: node.id, reconnected: flag } }
          : { type, idKey, requestId: null, data: { node: node.id, unexpected: flag } };
      await this.publish([event]);
    },

    /** The store, or UNAVAILABLE while it cannot be reached (ingest callers keep their events and retry). */
    ready(): EventLog {
      // It tries to connect again every 5 s.
      if (!this.eventLog) throw AppError.unavailable("The log store is not reachable yet", 5);
      return this.eventLog;
    },

    /** Opens the store; until it succeeds the service runs and answers UNAVAILABLE, retrying every 5 s. */
    async connect() {
      const c = config();
      try {
        const docs = await openDocStore({
          mongoUrl: this.settings.mongoUrl ?? c.mongoUrl,
          dataDir: this.settings.dataDir ?? c.dataDir,
        });
        const eventLog = new EventLog(docs, c.logRetentionDays);
        const { ttl } = await eventLog.init().catch(async (err: unknown) => {
          await docs.close().catch(() => undefined);
          throw err;
        });
        if (!ttl) this.logger.info("the log store has no TTL indexes here: retention is the hourly purge job");
        this.docs = docs;
        this.eventLog = eventLog;
        void this.purge();
      } catch (err) {
        this.logger.warn("the log store is not reachable; retrying in 5 s", (err as Error).message);
        this.connectTimer = setTimeout(() => void this.connect(), 5_000);
        this.connectTimer.unref();
      }
    },

    async purge() {
      try {
        if (!this.eventLog) return;
        const deleted = await this.eventLog.purge();
        if (deleted > 0) this.logger.info(`retention: purged ${deleted} events`);
        const max = config().logMaxEvents;
        const trimmed = await this.eventLog.trimTo(max);
        if (trimmed > 0)
          this.logger.warn(`the audit log holds at most ${max} events (LOG_MAX_EVENTS): dropped the ${trimmed} oldest`);
      } catch (err) {
        this.logger.warn("retention purge failed; will retry", (err as Error).message);
      }
    },
  },

  async started() {
    registerMetrics(this.broker, [METRIC.auditWrite, METRIC.auditWriteFailures]);
    this.writer = new BatchWriter((docs) =>
      timed(this.broker, METRIC.auditWrite, METRIC.auditWriteFailures, () => this.ready().record(docs)),
    );
    this.purgeTimer = setInterval(() => void this.purge(), PURGE_EVERY_MS);
    this.purgeTimer.unref();
    // Not awaited: with the store down the node still starts (and answers UNAVAILABLE) at once.
    void this.connect();
    // Nodes already up when this instance started: $node.connected came before it could listen.
    for (const node of this.broker.registry.getNodeList({ onlyAvailable: true, withServices: false }) as (NodeInfo & {
      local: boolean;
    })[]) {
      if (!node.local) await this.recordClusterEvent("cluster.node_connected", node, false);
    }
  },

  async stopped() {
    clearInterval(this.purgeTimer);
    clearTimeout(this.connectTimer);
    await this.writer?.flush().catch(() => undefined);
    await this.docs?.close();
  },
};

export default LogService;
