import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { DomainEvent } from "../src/contracts/domain-events.js";
import { broadcastEvent } from "../src/contracts/events.js";
import { rules } from "../src/contracts/limits.js";
import type { Notification } from "../src/contracts/objects.js";
import { AppError } from "../src/errors.js";
import { describeFailure, isTransientDeliveryError } from "../src/infra/outbox.js";
import { principalOf } from "../src/infra/permissions.js";
import { sqlMixin, type WithSql } from "../src/infra/sql-mixin.js";
import { notifyMigrations } from "../src/notify/migrations.js";
import { notificationsFor, type Directory } from "../src/notify/rules.js";
import { NotifyStore, type NotifyLevel } from "../src/notify/store.js";
import { call, type ActionContext } from "../src/infra/calls.js";
import type { ResultOf } from "../src/contracts/actions.js";

/** The service's own methods (`methods` below), typed for their callers and their bodies. */
interface Methods {
  directory(ctx: Context): Directory;
}

interface Vars extends WithSql {
  store: NotifyStore;
}

const NotifyService: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "notify",
  mixins: [sqlMixin("notify", notifyMigrations)],

  actions: {
    /**
     * Internal: the durable event path delivers here (at least once, possibly to any instance).
     * Each event is applied exactly once; returning is the acknowledgement.
     */
    ingest: {
      idempotent: true,
      visibility: "public",
      params: { events: { type: "array", items: "object", max: 1000 } },
      async handler(
        ctx: Context<{ events: DomainEvent[] }>,
      ): Promise<{ applied: number; failed: { id: string; error: string }[] }> {
        let applied = 0;
        // An event this service cannot apply (a bad event, a bug) is named in the answer and the
        // rest go on: the relay retries it alone and dead-letters it in the end. A service or store
        // that is down fails the whole call instead (the relay waits; nothing counts against events).
        const failed: { id: string; error: string }[] = [];
        for (const event of ctx.params.events) {
          let created: Awaited<ReturnType<NotifyStore["applyOnce"]>>;
          try {
            const items = await notificationsFor(event, this.directory(ctx));
            // An event that notifies nobody has no effect to apply twice: no need to remember it (most
            // messages — this saves a transaction per message).
            if (items.length === 0) continue;
            created = await this.store.applyOnce(event.id, items);
          } catch (err) {
            if (isTransientDeliveryError(err)) throw err;
            this.logger.warn(`notify.ingest: ${event.type} ${event.id} refused`, describeFailure(err));
            failed.push({ id: event.id, error: describeFailure(err) });
            continue;
          }
          if (created === null) continue;
          applied += 1;
          for (const { userId, ...notification } of created) {
            await broadcastEvent(ctx, "notify.created", { userId, notification });
            if (notification.kind === "mention") {
              await call(ctx, "chat.announceUnread", { roomId: notification.roomId, userId }).catch((err: unknown) =>
                this.logger.debug("unread announcement failed", err),
              );
            }
          }
        }
        return { applied, failed };
      },
    },

    list: {
      auth: "required",
      params: { unseen: { type: "boolean", convert: true, optional: true }, limit: rules.limit(100) },
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
        $$strict: "remove",
      },
      async handler(ctx: Context<{ ids?: number[]; all?: boolean }>): Promise<void> {
        if (!ctx.params.all && !ctx.params.ids) {
          throw AppError.validation([{ field: "ids", message: "Give 'ids' or 'all: true'." }]);
        }
        await this.store.markSeen(principalOf(ctx).id, ctx.params.all ? "all" : (ctx.params.ids ?? []));
      },
    },

    /** Internal: mention counts after each read marker, for room lists and unread updates. */
    mentionCounts: {
      idempotent: true,
      visibility: "public",
      params: {
        userId: rules.id,
        markers: { type: "record", key: { type: "string", numeric: true }, value: "number" },
      },
      async handler(ctx: ActionContext<"notify.mentionCounts">): Promise<ResultOf<"notify.mentionCounts">> {
        const markers = Object.fromEntries(Object.entries(ctx.params.markers).map(([k, v]) => [Number(k), v]));
        return this.store.mentionCounts(ctx.params.userId, markers);
      },
    },

    /** Extension of the contract: PUT /api/rooms/:id/notifications { level: "all" | "mentions" | "none" }. */
    setRoomLevel: {
      auth: "required",
      params: { id: rules.id, level: { type: "enum", values: ["all", "mentions", "none"] }, $$strict: "remove" },
      async handler(ctx: Context<{ id: number; level: NotifyLevel }>): Promise<{ roomId: number; level: NotifyLevel }> {
        const user = principalOf(ctx);
        const members = await call(ctx, "chat.membersAmong", {
          roomId: ctx.params.id,
          userIds: [user.id],
        });
        if (members.length === 0) throw AppError.notFound("Room");
        await this.store.setLevel(user.id, ctx.params.id, ctx.params.level);
        return { roomId: ctx.params.id, level: ctx.params.level };
      },
    },

    getRoomLevel: {
      auth: "required",
      params: { id: rules.id },
      async handler(ctx: Context<{ id: number }>): Promise<{ roomId: number; level: NotifyLevel }> {
        const user = principalOf(ctx);
        const levels = await this.store.levels([user.id], ctx.params.id);
        return { roomId: ctx.params.id, level: levels.get(user.id) ?? "all" };
      },
    },
  },

  methods: {
    /** What the rules need to know about users and rooms, asked of their owners. */
    directory(ctx: Context): Directory {
      return {
        usersByName: (names) => call(ctx, "users.findManyByUsername", { usernames: names }),
        membersAmong: (roomId, userIds) => call(ctx, "chat.membersAmong", { roomId, userIds }),
        levels: (userIds, roomId) => this.store.levels(userIds, roomId),
      };
    },
  },

  async started() {
    this.store = new NotifyStore(this.db);
  },
};

export default NotifyService;
