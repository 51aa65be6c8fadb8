import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { rules } from "../src/contracts/limits.js";
import type { Notification } from "../src/contracts/objects.js";
import { principalOf } from "../src/infra/permissions.js";
import { sqlMixin, type WithSql } from "../src/infra/sql-mixin.js";
import { notifyMigrations } from "../src/notify/migrations.js";
import { NotifyStore } from "../src/notify/store.js";

interface Vars extends WithSql {
  store: NotifyStore;
}

const NotifyService: ServiceSchema<ServiceSettingSchema, object, Vars> = {
  name: "notify",
  mixins: [sqlMixin("notify", notifyMigrations)],

  actions: {
    list: {
      auth: "required",
      params: {
        unseen: { type: "boolean", convert: true, optional: true },
        limit: rules.limit(100),
      },
      async handler(ctx: Context<{ unseen?: boolean; limit?: number }>): Promise<{ notifications: Notification[] }> {
        const notifications = await this.store.list(principalOf(ctx).id, {
          unseenOnly: ctx.params.unseen ?? false,
          limit: ctx.params.limit ?? 50,
        });
        return { notifications };
      },
    },

    markSeen: {
      auth: "required",
      params: {
        ids: { type: "array", items: rules.id, max: 1000, optional: true },
        all: { type: "boolean", optional: true },
      },
      async handler(ctx: Context<{ ids?: number[]; all?: boolean }>): Promise<void> {
        await this.store.markSeen(principalOf(ctx).id, ctx.params.all ? "all" : (ctx.params.ids ?? []));
      },
    },
  },

  async started() {
    this.store = new NotifyStore(this.db);
  },
};

export default NotifyService;
