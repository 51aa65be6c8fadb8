import { Errors, type Context, type ServiceSchema, type ServiceSettingSchema } from "moleculer";
import { config } from "../src/config.js";
import { broadcastEvent } from "../src/contracts/events.js";
import { LIMITS, rules, SEND_BATCH_MAX } from "../src/contracts/limits.js";
import { SYSTEM_USER_ID, type Message, type Room, type User } from "../src/contracts/objects.js";
import type { ParamsOf, ResultOf } from "../src/contracts/actions.js";
import { chatMigrations } from "../src/chat/migrations.js";
import { RoomAccess } from "../src/chat/access.js";
import { RoomViews } from "../src/chat/rooms-view.js";
import { canDeleteMessage, canEditRoom, canInvite, canKick, canLeave } from "../src/chat/rules.js";
import { ChatStore, type SendRequest, type SendResult } from "../src/chat/store.js";
import { AppError, toErrorBody } from "../src/errors.js";
import { GroupCommit, type Outcome } from "../src/infra/group-commit.js";
import type { Trace } from "../src/infra/outbox.js";
import { outboxMixin, type WithOutbox } from "../src/infra/outbox-mixin.js";
import { countMetric, METRIC, registerMetrics } from "../src/infra/metrics.js";
import { principalOf } from "../src/infra/permissions.js";
import { sqlMixin } from "../src/infra/sql-mixin.js";
import { call, type ActionContext } from "../src/infra/calls.js";

type Ctx<P = unknown> = Context<P, { $statusCode?: number; $location?: string }>;

/** The service's own methods (`methods` below), typed for their callers and their bodies. */
interface Methods {
  /** Rooms as the caller of `ctx` sees them (lookups in users and notify go with the request). */
  views(ctx: Context): RoomViews;
  /** A batch's sends stored in one transaction, then announced in one broadcast. */
  storeSends(requests: SendRequest[]): Promise<Outcome<SendResult>[]>;
}

interface Vars extends WithOutbox {
  store: ChatStore;
  access: RoomAccess;
  /** Group commit: sends that arrive while a transaction is in flight go into the next one. */
  sends: GroupCommit<SendRequest, SendResult>;
  /** chat.send's params, checked per send of a sendBatch (the same rules and messages). */
  checkSend(payload: object): SendPayload;
}

const clientMsgId = {
  type: "string",
  min: LIMITS.clientMsgId.min,
  max: LIMITS.clientMsgId.max,
  pattern: LIMITS.clientMsgId.pattern,
} as const;
const optionalRoomId = { ...rules.id, optional: true } as const;
const sendParams = {
  roomId: rules.id,
  body: rules.body,
  clientMsgId,
  replyTo: { ...rules.id, optional: true, nullable: true },
} as const;
type SendPayload = ParamsOf<"chat.send">;
type SendAnswer = ResultOf<"chat.sendBatch">["results"][number];
/** A room for the operator: its id (`12`, `#12`) or its exact name. */
const roomRef = { type: "string", min: 1, max: 80 } as const;

/** What a write carries into its domain events. */
const trace = (ctx: Context): Trace => ({ requestId: ctx.requestID ?? null });

/** The contract's 413 for an over-long message (fastest-validator would say 422). */
function checkBodyLength(text: string): void {
  if ([...text].length > LIMITS.body.max) {
    throw AppError.tooLarge(`A message is at most ${LIMITS.body.max} characters`);
  }
}

const ChatService: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "chat",
  // The last mixin starts first: tables are migrated before the outbox relay runs.
  mixins: [outboxMixin("chat"), sqlMixin("chat", chatMigrations)],

  actions: {
    // ---- rooms -------------------------------------------------------------------------------
    listRooms: {
      idempotent: true,
      auth: "required",
      params: {},
      async handler(ctx: Ctx): Promise<{ rooms: Room[] }> {
        const user = principalOf(ctx);
        return { rooms: await this.views(ctx).roomsOf(user.id) };
      },
    },

    browseRooms: {
      idempotent: true,
      auth: "required",
      params: {
        q: { type: "string", trim: true, max: LIMITS.roomName.max, optional: true },
        limit: rules.limit(100),
      },
      async handler(ctx: Ctx<{ q?: string; limit?: number }>): Promise<{ rooms: Room[] }> {
        const user = principalOf(ctx);
        const records = await this.store.browsePublic(ctx.params.q ?? "", ctx.params.limit ?? 50);
        const views = await Promise.all(
          records.map(async (record) => ({ record, membership: await this.store.membership(record.id, user.id) })),
        );
        return { rooms: await this.views(ctx).shape(user.id, views) };
      },
    },

    createRoom: {
      auth: "required",
      params: {
        name: rules.roomName,
        kind: { type: "enum", values: ["public", "private"] },
        topic: { ...rules.topic, optional: true },
        members: { type: "array", items: rules.id, max: 500, optional: true },
        $$strict: "remove",
      },
      async handler(
        ctx: Ctx<{ name: string; kind: "public" | "private"; topic?: string; members?: number[] }>,
      ): Promise<Room> {
        const user = principalOf(ctx);
        const invited = [...new Set(ctx.params.members ?? [])].filter((id) => id !== user.id);
        if (invited.length > 0) {
          const found = await call(ctx, "users.getMany", { ids: invited });
          if (found.length !== invited.length) {
            throw AppError.validation([{ field: "members", message: "Every member must be an existing user." }]);
          }
        }
        const id = await this.store.createRoom({ ...ctx.params, members: invited, createdBy: user.id }, trace(ctx));
        // The creator's open sockets subscribe to the new room too, not only the invited members'.
        await broadcastEvent(ctx, "chat.member.changed", {
          roomId: id,
          userId: user.id,
          action: "joined",
          byUserId: user.id,
        });
        for (const userId of invited) {
          await broadcastEvent(ctx, "chat.member.changed", {
            roomId: id,
            userId,
            action: "invited",
            byUserId: user.id,
          });
        }
        ctx.meta.$location = `/api/rooms/${id}`;
        return this.views(ctx).room(id, user.id);
      },
    },

    openDirect: {
      auth: "required",
      params: { userId: rules.id, $$strict: "remove" },
      async handler(ctx: Ctx<{ userId: number }>): Promise<Room> {
        const user = principalOf(ctx);
        const [other] = await call(ctx, "users.getMany", { ids: [ctx.params.userId] });
        if (!other) throw AppError.notFound("User");
        const name = `${user.username}+${other.username}`;
        const { id, created } = await this.store.directRoom(user.id, other.id, name, trace(ctx));
        ctx.meta.$statusCode = created ? 201 : 200;
        if (created) {
          ctx.meta.$location = `/api/rooms/${id}`;
          const change = { roomId: id, userId: other.id, action: "invited" as const, byUserId: user.id };
          await broadcastEvent(ctx, "chat.member.changed", change);
          // The opener's own sockets join too.
          if (other.id !== user.id) {
            await broadcastEvent(ctx, "chat.member.changed", { ...change, userId: user.id, action: "joined" });
          }
        }
        return this.views(ctx).room(id, user.id);
      },
    },

    getRoom: {
      idempotent: true,
      auth: "required",
      params: { id: rules.id },
      async handler(ctx: Ctx<{ id: number }>): Promise<Room> {
        const user = principalOf(ctx);
        await this.access.visibleRoom(ctx.params.id, user.id);
        return this.views(ctx).room(ctx.params.id, user.id);
      },
    },

    updateRoom: {
      auth: "required",
      params: {
        id: rules.id,
        name: { ...rules.roomName, optional: true },
        topic: { ...rules.topic, optional: true },
        $$strict: "remove",
      },
      async handler(ctx: Ctx<{ id: number; name?: string; topic?: string }>): Promise<Room> {
        const user = principalOf(ctx);
        const { record, membership } = await this.access.memberRoom(ctx.params.id, user.id);
        if (!canEditRoom(record.kind, membership.role)) throw AppError.forbidden();
        const { name, topic } = ctx.params;
        await this.store.updateRoom(record.id, { name, topic }, user.id, trace(ctx));
        const updated = await this.store.room(record.id);
        if (updated) {
          const [shared] = await this.views(ctx).shape(user.id, [{ record: updated }]);
          await broadcastEvent(ctx, "chat.room.updated", { room: shared });
        }
        return this.views(ctx).room(record.id, user.id);
      },
    },

    joinRoom: {
      auth: "required",
      params: { id: rules.id },
      async handler(ctx: Ctx<{ id: number }>): Promise<Room> {
        const user = principalOf(ctx);
        // The contract: private → 403, for members and non-members alike (not visibleRoom's 404).
        const record = await this.store.room(ctx.params.id);
        if (!record) throw AppError.notFound("Room");
        if (record.kind !== "public") throw AppError.forbidden("Only public rooms can be joined");
        const membership = await this.store.membership(record.id, user.id);
        const change = { roomId: record.id, userId: user.id, byUserId: user.id, action: "joined" as const };
        if (!membership && (await this.store.addMember({ ...change, roomKind: record.kind }, trace(ctx)))) {
          await broadcastEvent(ctx, "chat.member.changed", change);
        }
        return this.views(ctx).room(record.id, user.id);
      },
    },

    leaveRoom: {
      auth: "required",
      params: { id: rules.id },
      async handler(ctx: Ctx<{ id: number }>): Promise<void> {
        const user = principalOf(ctx);
        const { record } = await this.access.memberRoom(ctx.params.id, user.id);
        if (!canLeave(record.kind)) throw AppError.forbidden("Direct rooms cannot be left");
        const change = { roomId: record.id, userId: user.id, byUserId: user.id, action: "left" as const };
        if (await this.store.removeMember({ ...change, roomKind: record.kind }, trace(ctx))) {
          await broadcastEvent(ctx, "chat.member.changed", change);
        }
      },
    },

    members: {
      idempotent: true,
      auth: "required",
      params: { id: rules.id },
      async handler(ctx: Ctx<{ id: number }>): Promise<{ members: (User & { role: string })[] }> {
        const user = principalOf(ctx);
        await this.access.visibleRoom(ctx.params.id, user.id);
        const members = await this.store.members(ctx.params.id);
        const users = await call(ctx, "users.getMany", { ids: members.map((m) => m.userId) });
        const byId = new Map(users.map((u) => [u.id, u]));
        return {
          members: members.flatMap((m) => {
            const u = byId.get(m.userId);
            return u ? [{ ...u, role: m.role }] : [];
          }),
        };
      },
    },

    invite: {
      auth: "required",
      params: { id: rules.id, userId: rules.id, $$strict: "remove" },
      async handler(ctx: Ctx<{ id: number; userId: number }>): Promise<{ roomId: number; userId: number }> {
        const user = principalOf(ctx);
        const { record, membership } = await this.access.memberRoom(ctx.params.id, user.id);
        if (!canInvite(record.kind, membership.role)) throw AppError.forbidden();
        const [invitee] = await call(ctx, "users.getMany", { ids: [ctx.params.userId] });
        if (!invitee) throw AppError.notFound("User");
        const change = { roomId: record.id, userId: invitee.id, byUserId: user.id, action: "invited" as const };
        if (!(await this.store.addMember({ ...change, roomKind: record.kind }, trace(ctx)))) {
          throw AppError.conflict("Already a member");
        }
        await broadcastEvent(ctx, "chat.member.changed", change);
        return { roomId: record.id, userId: invitee.id };
      },
    },

    kick: {
      auth: "required",
      params: { id: rules.id, userId: rules.id },
      async handler(ctx: Ctx<{ id: number; userId: number }>): Promise<void> {
        const user = principalOf(ctx);
        const { record, membership } = await this.access.memberRoom(ctx.params.id, user.id);
        // A kick by someone who may not kick at all is refused before the target is looked up.
        if (!canKick(record.kind, membership.role, "member")) throw AppError.forbidden();
        const target = await this.store.membership(record.id, ctx.params.userId);
        if (!target) throw AppError.notFound("Member");
        if (!canKick(record.kind, membership.role, target.role)) throw AppError.forbidden();
        const change = { roomId: record.id, userId: ctx.params.userId, byUserId: user.id, action: "kicked" as const };
        if (await this.store.removeMember({ ...change, roomKind: record.kind }, trace(ctx))) {
          await broadcastEvent(ctx, "chat.member.changed", change);
        }
      },
    },

    /** Internal: the rooms a socket joins when it connects. */
    roomIdsOf: {
      idempotent: true,
      visibility: "public",
      params: { userId: rules.id },
      async handler(ctx: ActionContext<"chat.roomIdsOf">): Promise<ResultOf<"chat.roomIdsOf">> {
        return this.store.roomIdsOf(ctx.params.userId);
      },
    },

    /** Internal: of the given users, those who are members of the room. */
    membersAmong: {
      idempotent: true,
      visibility: "public",
      params: { roomId: rules.id, userIds: { type: "array", items: rules.id, max: 1000 } },
      async handler(ctx: ActionContext<"chat.membersAmong">): Promise<ResultOf<"chat.membersAmong">> {
        return this.store.membersAmong(ctx.params.roomId, ctx.params.userIds);
      },
    },

    /** Internal: tells every tab of the user their unread state in a room (after a new mention). */
    announceUnread: {
      visibility: "public",
      params: { roomId: rules.id, userId: rules.id },
      async handler(ctx: ActionContext<"chat.announceUnread">): Promise<ResultOf<"chat.announceUnread">> {
        const state = await this.views(ctx).unreadState(ctx.params.roomId, ctx.params.userId);
        await broadcastEvent(ctx, "unread.changed", { ...state, userId: ctx.params.userId });
      },
    },

    // ---- messages ----------------------------------------------------------------------------
    history: {
      idempotent: true,
      auth: "required",
      params: {
        roomId: rules.id,
        before: { ...rules.seq, optional: true },
        after: { ...rules.seq, optional: true },
        limit: rules.limit(LIMITS.historyPage.max),
      },
      async handler(
        ctx: Ctx<{ roomId: number; before?: number; after?: number; limit?: number }>,
      ): Promise<{ messages: Message[]; hasMore: boolean }> {
        await this.access.memberRoom(ctx.params.roomId, principalOf(ctx).id);
        const limit = ctx.params.limit ?? LIMITS.historyPage.default;
        if (ctx.params.before !== undefined && ctx.params.after !== undefined) {
          throw AppError.validation([{ field: "after", message: "Give either 'before' or 'after', not both." }]);
        }
        return ctx.params.after !== undefined
          ? this.store.after(ctx.params.roomId, ctx.params.after, limit)
          : this.store.before(ctx.params.roomId, ctx.params.before, limit);
      },
    },

    send: {
      // A repeated clientMsgId returns the stored original: a database outage is retried in the cluster.
      idempotent: true,
      auth: "required",
      params: sendParams,
      async handler(ctx: ActionContext<"chat.send">): Promise<ResultOf<"chat.send">> {
        const user = principalOf(ctx);
        checkBodyLength(ctx.params.body);
        const { roomId, body, clientMsgId, replyTo } = ctx.params;
        const { message, created } = await this.sends.submit({
          roomId,
          body,
          clientMsgId,
          replyTo,
          userId: user.id,
          trace: trace(ctx),
        });
        ctx.meta.$statusCode = created ? 201 : 200;
        if (created) ctx.meta.$location = `/api/rooms/${message.roomId}/messages/${message.id}`;
        return message;
      },
    },

    /**
     * Internal: the sends a gateway took from its sockets in one tick, as one bus call. Each is
     * validated and answered alone, exactly as `send` would answer it; the senders are the
     * gateway's authenticated principals.
     */
    sendBatch: {
      idempotent: true,
      visibility: "public",
      params: {
        sends: {
          type: "array",
          max: SEND_BATCH_MAX,
          items: {
            type: "object",
            props: { userId: rules.id, requestId: { type: "string", max: 128, nullable: true }, payload: "object" },
          },
        },
      },
      async handler(ctx: ActionContext<"chat.sendBatch">): Promise<ResultOf<"chat.sendBatch">> {
        const results = await Promise.all(
          ctx.params.sends.map(async ({ userId, requestId, payload }): Promise<SendAnswer> => {
            try {
              const checked = this.checkSend(payload);
              checkBodyLength(checked.body);
              const { message, created } = await this.sends.submit({ ...checked, userId, trace: { requestId } });
              return { ok: true, message, created };
            } catch (err) {
              const { body, internal } = toErrorBody(err, requestId ?? undefined);
              if (internal) this.logger.error(`send failed [${requestId}]`, err);
              return { ok: false, error: body };
            }
          }),
        );
        return { results };
      },
    },

    edit: {
      auth: "required",
      params: { messageId: rules.id, roomId: optionalRoomId, body: rules.body },
      async handler(ctx: ActionContext<"chat.edit">): Promise<ResultOf<"chat.edit">> {
        const user = principalOf(ctx);
        checkBodyLength(ctx.params.body);
        const { message } = await this.access.messageOfMember(ctx.params.messageId, user.id, ctx.params.roomId);
        if (message.userId !== user.id) throw AppError.forbidden("Only the author can edit a message");
        if (message.deleted) throw AppError.notFound("Message");
        const edited = await this.store.edit(message, ctx.params.body, trace(ctx));
        await broadcastEvent(ctx, "chat.message.updated", { message: edited });
        return edited;
      },
    },

    delete: {
      auth: "required",
      params: { messageId: rules.id, roomId: optionalRoomId },
      async handler(ctx: ActionContext<"chat.delete">): Promise<ResultOf<"chat.delete">> {
        const user = principalOf(ctx);
        const { message, membership } = await this.access.messageOfMember(
          ctx.params.messageId,
          user.id,
          ctx.params.roomId,
        );
        if (!canDeleteMessage(message.userId, user.id, membership.role)) throw AppError.forbidden();
        const ref = { id: message.id, roomId: message.roomId, seq: message.seq };
        if (!message.deleted) {
          await this.store.remove(message, user.id, trace(ctx));
          await broadcastEvent(ctx, "chat.message.deleted", { ...ref, userId: user.id });
        }
        return ref;
      },
    },

    react: {
      auth: "required",
      params: {
        messageId: rules.id,
        roomId: optionalRoomId,
        emoji: rules.emoji,
      },
      async handler(ctx: ActionContext<"chat.react">): Promise<ResultOf<"chat.react">> {
        const user = principalOf(ctx);
        const { message } = await this.access.messageOfMember(ctx.params.messageId, user.id, ctx.params.roomId);
        if (message.deleted) throw AppError.notFound("Message");
        const updated = await this.store.toggleReaction(message, user.id, ctx.params.emoji, trace(ctx));
        await broadcastEvent(ctx, "chat.message.updated", { message: updated });
        return updated;
      },
    },

    markRead: {
      idempotent: true,
      auth: "required",
      params: { roomId: rules.id, seq: rules.seq },
      async handler(ctx: ActionContext<"chat.markRead">): Promise<ResultOf<"chat.markRead">> {
        const user = principalOf(ctx);
        const { record } = await this.access.memberRoom(ctx.params.roomId, user.id);
        await this.store.markRead(record.id, user.id, Math.min(ctx.params.seq, record.lastSeq));
        const state = await this.views(ctx).unreadState(record.id, user.id);
        await broadcastEvent(ctx, "unread.changed", { ...state, userId: user.id });
        return state;
      },
    },

    /** Catch-up after a reconnect: everything after each given seq, up to 200 per room. */
    sync: {
      idempotent: true,
      auth: "required",
      params: {
        rooms: { type: "record", key: { type: "string", numeric: true }, value: rules.seq },
      },
      async handler(ctx: ActionContext<"chat.sync">): Promise<ResultOf<"chat.sync">> {
        const user = principalOf(ctx);
        const entries = Object.entries(ctx.params.rooms);
        if (entries.length > 500) {
          throw AppError.validation([{ field: "rooms", message: "At most 500 rooms per sync." }]);
        }
        const requests = entries.map(([key, after]) => ({ roomId: Number(key), after }));
        if (new Set(requests.map((r) => r.roomId)).size !== requests.length) {
          throw AppError.validation([{ field: "rooms", message: "Each room at most once." }]);
        }
        await this.access.memberRooms(
          requests.map((r) => r.roomId),
          user.id,
        );
        const pages = await this.store.afterMany(requests, LIMITS.syncPerRoom);
        // Keyed by client input: built as entries (Object.fromEntries defines own keys, whatever
        // their name), not by assignment into a `{}`.
        const result = entries.map(([key]): [string, { messages: Message[]; hasMore: boolean }] => [
          key,
          pages.get(Number(key))!,
        ]);
        return { rooms: Object.fromEntries(result) };
      },
    },

    // ---- operator only (src/operator/commands.ts), never on REST or sockets ----

    /** The busiest rooms: member and message counts, latest activity. */
    roomStats: {
      idempotent: true,
      visibility: "public",
      roles: ["operator"],
      params: { top: rules.limit(1000), $$strict: "remove" },
      async handler(ctx: ActionContext<"chat.roomStats">): Promise<ResultOf<"chat.roomStats">> {
        const rooms = await this.store.busiestRooms(ctx.params.top ?? 20);
        return {
          rooms: rooms.map((r) => ({
            id: r.id,
            name: r.name,
            kind: r.kind,
            members: r.memberCount,
            messages: r.lastSeq,
            lastActivity: new Date(r.lastActivityAt).toISOString(),
          })),
        };
      },
    },

    /** The rooms a user is a member of, with their role (direct rooms by their stored name). */
    roomsOfUser: {
      idempotent: true,
      visibility: "public",
      roles: ["operator"],
      params: { userId: rules.id, $$strict: "remove" },
      async handler(ctx: ActionContext<"chat.roomsOfUser">): Promise<ResultOf<"chat.roomsOfUser">> {
        const rooms = await this.store.roomsOf(ctx.params.userId);
        return {
          rooms: rooms
            .map(({ room, membership }) => ({ id: room.id, name: room.name, kind: room.kind, role: membership.role }))
            .sort((a, b) => a.id - b.id),
        };
      },
    },

    /** Removes a member from a room (any role, the owner too), as a kick by the operator. */
    removeMember: {
      visibility: "public",
      roles: ["operator"],
      params: { room: roomRef, userId: rules.id, $$strict: "remove" },
      async handler(ctx: ActionContext<"chat.removeMember">): Promise<ResultOf<"chat.removeMember">> {
        const record = await this.access.roomByRef(ctx.params.room);
        if (record.kind === "direct") throw AppError.forbidden("Nobody is removed from a direct room");
        const change = {
          roomId: record.id,
          userId: ctx.params.userId,
          byUserId: SYSTEM_USER_ID,
          action: "kicked" as const,
        };
        const removed = await this.store.removeMember({ ...change, roomKind: record.kind }, trace(ctx));
        if (removed) {
          await broadcastEvent(ctx, "chat.member.changed", change);
        }
        return { roomId: record.id, removed };
      },
    },

    /** Posts a system message (SYSTEM_USER_ID) to a room; clients show it as the server's. */
    announce: {
      visibility: "public",
      roles: ["operator"],
      params: { room: roomRef, body: rules.body, $$strict: "remove" },
      async handler(ctx: ActionContext<"chat.announce">): Promise<ResultOf<"chat.announce">> {
        checkBodyLength(ctx.params.body);
        const record = await this.access.roomByRef(ctx.params.room);
        if (record.kind === "direct") throw AppError.forbidden("Direct rooms are two people's own: no announcements");
        const message = await this.store.announce(record.id, ctx.params.body, trace(ctx));
        await broadcastEvent(ctx, "chat.messages.created", { messages: [message] });
        return message;
      },
    },
  },

  methods: {
    async storeSends(requests: SendRequest[]): Promise<Outcome<SendResult>[]> {
      const outcomes = await this.store.sendMany(requests);
      const messages = outcomes.flatMap((o) => (o.ok && o.value.created ? [o.value.message] : []));
      if (messages.length > 0) {
        const committedAt = Date.now();
        countMetric(this.broker, METRIC.messagesSent, undefined, messages.length);
        messages.sort((a, b) => a.roomId - b.roomId || a.seq - b.seq);
        await broadcastEvent(this.broker, "chat.messages.created", { messages, committedAt });
      }
      return outcomes;
    },

    views(ctx: Context): RoomViews {
      return new RoomViews(this.store, {
        usernames: async (ids) => {
          const names = new Map<number, string>();
          // users.getMany takes up to 1,000 ids a call.
          for (let i = 0; i < ids.length; i += 1000) {
            for (const u of await call(ctx, "users.getMany", { ids: ids.slice(i, i + 1000) }))
              names.set(u.id, u.username);
          }
          return names;
        },
        // Mentions live in notify; without it the counts are 0 rather than an error.
        mentionCounts: async (userId, markers) => {
          if (Object.keys(markers).length === 0) return {};
          return call(ctx, "notify.mentionCounts", { userId, markers }).catch((err: unknown) => {
            this.logger.debug("mention counts unavailable", (err as Error).message);
            return {};
          });
        },
      });
    },
  },

  async started() {
    this.store = new ChatStore(this.db, this.outbox, { roomAddsPerHour: config().roomAddsPerHour });
    this.access = new RoomAccess(this.store);
    this.sends = new GroupCommit((requests) => this.storeSends(requests), { maxBatch: SEND_BATCH_MAX, maxInFlight: 1 });
    // The broker's own validator (fastest-validator): the same rules and messages as chat.send's params.
    const { validator } = this.broker;
    if (!validator) throw new Error("chat needs the broker's params validator (validator: true)");
    const check = validator.compile(sendParams as unknown as Record<string, unknown>);
    this.checkSend = (payload) => {
      const res = check(payload as Record<string, unknown>) as true | object[];
      if (res !== true) throw new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", res);
      return payload as SendPayload;
    };
    registerMetrics(this.broker, [METRIC.messagesSent]);
  },
};

export default ChatService;
