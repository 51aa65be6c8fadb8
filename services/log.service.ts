import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { config } from "../src/config.js";
import type { BusEventName, BusEvents } from "../src/contracts/events.js";
import { rules } from "../src/contracts/limits.js";
import type { AppEvent } from "../src/contracts/objects.js";
import { openDocStore, type DocStore } from "../src/infra/docstore.js";
import type { CallMeta } from "../src/infra/permissions.js";
import { EventLog, type EventDoc } from "../src/log/event-log.js";

interface Vars {
  docs: DocStore;
  eventLog: EventLog;
  record(ctx: Context<Record<string, unknown>, CallMeta>): Promise<void>;
}

/** The bus events the log records, with where each keeps its user and room. */
const RECORDED: BusEventName[] = ["users.created", "auth.session.revoked"];

function numberField(data: Record<string, unknown>, key: string): number | null {
  return typeof data[key] === "number" ? data[key] : null;
}

const LogService: ServiceSchema<ServiceSettingSchema, object, Vars> = {
  name: "log",

  actions: {
    query: {
      roles: ["admin"],
      params: {
        type: { type: "string", max: 64, optional: true },
        userId: { ...rules.id, optional: true },
        roomId: { ...rules.id, optional: true },
        limit: rules.limit(500),
      },
      async handler(
        ctx: Context<{
          type?: string;
          userId?: number;
          roomId?: number;
          limit?: number;
        }>,
      ) {
        const events: AppEvent[] = await this.eventLog.query({
          ...ctx.params,
          limit: ctx.params.limit ?? 100,
        });
        return { events };
      },
    },
  },

  events: Object.fromEntries(
    RECORDED.map((name) => [
      name,
      function (this: Vars, ctx: Context<BusEvents[typeof name] & Record<string, unknown>, CallMeta>) {
        return this.record(ctx);
      },
    ]),
  ),

  methods: {
    async record(ctx: Context<Record<string, unknown>, CallMeta>) {
      const data = ctx.params;
      const doc: EventDoc = {
        // The emitting context's id is the same on every node that hears a broadcast: stored once.
        _id: ctx.id,
        ts: new Date(),
        type: ctx.eventName ?? "unknown",
        nodeId: ctx.nodeID ?? this.broker.nodeID,
        requestId: ctx.requestID ?? null,
        userId: numberField(data, "userId") ?? ctx.meta.user?.id ?? null,
        roomId: numberField(data, "roomId"),
        data,
      };
      await this.eventLog.record([doc]);
    },
  },

  async started() {
    const c = config();
    this.docs = await openDocStore({
      mongoUrl: c.mongoUrl,
      dataDir: c.dataDir,
    });
    this.eventLog = new EventLog(this.docs);
    await this.eventLog.init();
  },

  async stopped() {
    await this.docs?.close();
  },
};

export default LogService;
