import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { config } from "../src/config.js";
import type { DomainEvent } from "../src/contracts/domain-events.js";
import { rules } from "../src/contracts/limits.js";
import type { AppEvent } from "../src/contracts/objects.js";
import { openDocStore, type DocStore } from "../src/infra/docstore.js";
import { EventLog, toEventDoc } from "../src/log/event-log.js";

interface Vars {
  docs: DocStore;
  eventLog: EventLog;
}

const LogService: ServiceSchema<ServiceSettingSchema, object, Vars> = {
  name: "log",

  actions: {
    /**
     * Internal: the durable event path delivers here. The batch is written before this returns, so
     * returning acknowledges it; if the store is unreachable the call fails and the events stay in
     * the producers' outboxes until it is back. Replays are absorbed by the event-id key.
     */
    ingest: {
      visibility: "public",
      params: { events: { type: "array", items: "object", max: 1000 } },
      async handler(ctx: Context<{ events: DomainEvent[] }>): Promise<{ stored: number }> {
        return { stored: await this.eventLog.record(ctx.params.events.map(toEventDoc)) };
      },
    },

    query: {
      roles: ["admin"],
      params: {
        type: { type: "string", max: 64, optional: true },
        userId: { ...rules.id, optional: true },
        roomId: { ...rules.id, optional: true },
        limit: rules.limit(500),
      },
      async handler(ctx: Context<{ type?: string; userId?: number; roomId?: number; limit?: number }>) {
        const events: AppEvent[] = await this.eventLog.query({ ...ctx.params, limit: ctx.params.limit ?? 100 });
        return { events };
      },
    },
  },

  async started() {
    const c = config();
    this.docs = await openDocStore({ mongoUrl: c.mongoUrl, dataDir: c.dataDir });
    this.eventLog = new EventLog(this.docs);
    await this.eventLog.init();
  },

  async stopped() {
    await this.docs?.close();
  },
};

export default LogService;
