/** chat's tables: rooms, members and messages with a gap-free per-room seq. */
import type { Message, MemberRole, RoomKind } from "../contracts/objects.js";
import { AppError } from "../errors.js";
import { isUniqueViolation, type Sql } from "../infra/sql.js";

interface MessageRow {
  id: number;
  room_id: number;
  seq: number;
  user_id: number;
  body: string;
  client_msg_id: string;
  reply_to: number | null;
  created_at: number | string;
  edited_at: number | string | null;
  deleted: number | boolean;
}

const iso = (ms: number | string): string => new Date(Number(ms)).toISOString();

export function toMessage(row: MessageRow): Message {
  const deleted = Boolean(row.deleted);
  return {
    id: row.id,
    roomId: row.room_id,
    seq: row.seq,
    userId: row.user_id,
    body: deleted ? "" : row.body,
    clientMsgId: row.client_msg_id,
    replyTo: row.reply_to,
    createdAt: iso(row.created_at),
    editedAt: row.edited_at === null ? null : iso(row.edited_at),
    deleted,
    reactions: {},
  };
}

export interface SendInput {
  roomId: number;
  userId: number;
  body: string;
  clientMsgId: string;
  replyTo?: number | null;
}

export class ChatStore {
  constructor(private readonly db: Sql) {}

  async createRoom(input: { name: string; kind: RoomKind; topic?: string; createdBy: number }): Promise<number> {
    return this.db.transaction(async (trx) => {
      const now = Date.now();
      const [id] = await trx("rooms").insert({
        name: input.name,
        kind: input.kind,
        topic: input.topic ?? "",
        created_by: input.createdBy,
        created_at: now,
      });
      await trx("room_members").insert({ room_id: id, user_id: input.createdBy, role: "owner", joined_at: now });
      return Number(id);
    });
  }

  async memberRole(roomId: number, userId: number): Promise<MemberRole | undefined> {
    const row = await this.db("room_members").where({ room_id: roomId, user_id: userId }).first<{ role: MemberRole }>();
    return row?.role;
  }

  async findByClientMsgId(userId: number, clientMsgId: string): Promise<Message | undefined> {
    const row = await this.db<MessageRow>("messages").where({ user_id: userId, client_msg_id: clientMsgId }).first();
    return row ? toMessage(row) : undefined;
  }

  /**
   * Stores a message with the room's next seq. The room row is locked for the transaction, so
   * concurrent senders queue on it and seqs come out 1, 2, 3, … with no gap. A repeated
   * clientMsgId returns the stored original (`created: false`) and changes nothing.
   */
  async send(input: SendInput): Promise<{ message: Message; created: boolean }> {
    const existing = await this.findByClientMsgId(input.userId, input.clientMsgId);
    if (existing) return { message: existing, created: false };
    try {
      const message = await this.db.transaction(async (trx) => {
        const room = await trx("rooms").where({ id: input.roomId }).forUpdate().first<{ last_seq: number }>();
        if (!room) throw AppError.notFound("Room");
        const seq = room.last_seq + 1;
        await trx("rooms").where({ id: input.roomId }).update({ last_seq: seq });
        const row = {
          room_id: input.roomId,
          seq,
          user_id: input.userId,
          body: input.body,
          client_msg_id: input.clientMsgId,
          reply_to: input.replyTo ?? null,
          created_at: Date.now(),
          edited_at: null,
          deleted: false,
        };
        const [id] = await trx("messages").insert(row);
        return toMessage({ ...row, id: Number(id) });
      });
      return { message, created: true };
    } catch (err) {
      // A concurrent retry of the same clientMsgId won the race: answer with its message.
      if (isUniqueViolation(err)) {
        const original = await this.findByClientMsgId(input.userId, input.clientMsgId);
        if (original) return { message: original, created: false };
      }
      throw err;
    }
  }

  async history(roomId: number, afterSeq: number, limit: number): Promise<Message[]> {
    const rows = await this.db<MessageRow>("messages")
      .where({ room_id: roomId })
      .andWhere("seq", ">", afterSeq)
      .orderBy("seq", "asc")
      .limit(limit);
    return rows.map(toMessage);
  }
}
