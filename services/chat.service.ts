import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { LIMITS, rules } from "../src/contracts/limits.js";
import type { Message } from "../src/contracts/objects.js";
import { ChatStore } from "../src/chat/store.js";
import { chatMigrations } from "../src/chat/migrations.js";
import { AppError } from "../src/errors.js";
import { principalOf } from "../src/infra/permissions.js";
import { sqlMixin, type WithSql } from "../src/infra/sql-mixin.js";

interface Vars extends WithSql {
  store: ChatStore;
  requireMember(roomId: number, userId: number): Promise<void>;
}

const ChatService: ServiceSchema<ServiceSettingSchema, object, Vars> = {
  name: "chat",
  mixins: [sqlMixin("chat", chatMigrations)],

  actions: {
    createRoom: {
      auth: "required",
      params: {
        name: { type: "string", trim: true, min: LIMITS.roomName.min, max: LIMITS.roomName.max },
        kind: { type: "enum", values: ["public", "private"] },
        topic: { type: "string", trim: true, max: LIMITS.topic.max, optional: true },
      },
      async handler(ctx: Context<{ name: string; kind: "public" | "private"; topic?: string }>) {
        const user = principalOf(ctx);
        const id = await this.store.createRoom({ ...ctx.params, createdBy: user.id });
        return { id };
      },
    },

    send: {
      auth: "required",
      params: {
        roomId: rules.id,
        body: { type: "string", trim: true, min: LIMITS.body.min },
        clientMsgId: {
          type: "string",
          min: LIMITS.clientMsgId.min,
          max: LIMITS.clientMsgId.max,
          pattern: LIMITS.clientMsgId.pattern,
        },
        replyTo: { ...rules.id, optional: true, nullable: true },
      },
      async handler(ctx: Context<{ roomId: number; body: string; clientMsgId: string; replyTo?: number | null }>) {
        const user = principalOf(ctx);
        if ([...ctx.params.body].length > LIMITS.body.max) {
          throw AppError.tooLarge(`A message is at most ${LIMITS.body.max} characters`);
        }
        await this.requireMember(ctx.params.roomId, user.id);
        const { message } = await this.store.send({ ...ctx.params, userId: user.id });
        return message;
      },
    },

    history: {
      auth: "required",
      params: { roomId: rules.id, after: { type: "number", integer: true, min: 0, convert: true, optional: true } },
      async handler(ctx: Context<{ roomId: number; after?: number }>): Promise<{ messages: Message[] }> {
        await this.requireMember(ctx.params.roomId, principalOf(ctx).id);
        return { messages: await this.store.history(ctx.params.roomId, ctx.params.after ?? 0, LIMITS.historyPage.max) };
      },
    },
  },

  methods: {
    async requireMember(roomId: number, userId: number) {
      if (!(await this.store.memberRole(roomId, userId))) throw AppError.notFound("Room");
    },
  },

  async started() {
    this.store = new ChatStore(this.db);
  },
};

export default ChatService;
