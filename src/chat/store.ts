/**
 * chat's tables: rooms, members (with read markers), messages with a gap-free per-room seq, and
 * reactions. Every write that others must hear about returns what changed; the service broadcasts.
 */
import { randomUUID } from "node:crypto";
import type { MemberAction } from "../contracts/events.js";
import { SYSTEM_USER_ID, type MemberRole, type Message, type Room, type RoomKind } from "../contracts/objects.js";
import { AppError, databaseUnavailable } from "../errors.js";
import { mentionedUsernames } from "../contracts/domain-events.js";
import type { Outbox, Trace } from "../infra/outbox.js";
import type { Outcome } from "../infra/group-commit.js";
import { isMysql, isUniqueViolation, type Sql } from "../infra/sql.js";
import { canSee, directKey } from "./rules.js";

interface RoomRow {
  id: number;
  name: string;
  kind: RoomKind;
  topic: string;
  created_by: number;
  created_at: number | string;
  last_seq: number;
  direct_key: string | null;
}

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

export interface Membership {
  role: MemberRole;
  lastReadSeq: number;
}

/** A room as stored, before it is shaped for one caller (no role, unread or last message yet). */
export type RoomRecord = Pick<
  Room,
  "id" | "name" | "kind" | "topic" | "createdBy" | "createdAt" | "lastSeq" | "memberCount"
> & {
  /** Direct rooms: the two members' ids. */
  directPair?: [number, number];
};

const iso = (ms: number | string): string => new Date(Number(ms)).toISOString();

/**
 * A message's reactions as the contract's object, emoji → user ids. Emoji are user input: they are
 * grouped in a Map (on a `{}`, `__proto__`, `constructor` or `toString` hit Object.prototype's
 * members), and Object.fromEntries defines each as an own key, whatever its name — the same plain
 * object a JSON.parse of the contract gives on the other side of the bus.
 */
function reactionsObject(entries: Iterable<[string, number[]]> = []): Record<string, number[]> {
  return Object.fromEntries(entries) as Record<string, number[]>;
}

function toMessage(row: MessageRow, reactions: Map<string, number[]> = new Map()): Message {
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
    reactions: reactionsObject(deleted ? [] : reactions),
  };
}

function toRecord(row: RoomRow, memberCount: number): RoomRecord {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    topic: row.topic,
    createdBy: row.created_by,
    createdAt: iso(row.created_at),
    lastSeq: row.last_seq,
    memberCount,
    directPair: row.direct_key ? (row.direct_key.split(":").map(Number) as [number, number]) : undefined,
  };
}

export interface SendInput {
  roomId: number;
  userId: number;
  body: string;
  clientMsgId: string;
  replyTo?: number | null;
}

/** chat's outbox: events are written in the same transaction as the change they describe. */
export interface MemberChange {
  roomId: number;
  userId: number;
  byUserId: number;
  action: MemberAction;
  roomKind: RoomKind;
}

const memberEvent = (change: MemberChange, trace: Trace) => ({
  type: "room.member_changed" as const,
  requestId: trace.requestId,
  data: change,
});

export interface SendResult {
  message: Message;
  created: boolean;
}

/** A send with what its domain event carries. */
export interface SendRequest extends SendInput {
  trace: Trace;
}

/** The answer to a repeated clientMsgId: the stored original, if it was sent to the same room. */
function replay(original: Message, roomId: number): Outcome<SendResult> {
  if (original.roomId !== roomId) {
    return { ok: false, error: AppError.conflict("This clientMsgId was already used for a message in another room") };
  }
  return { ok: true, value: { message: original, created: false } };
}

const pairKey = (a: number, b: number | string): string => `${a}:${b}`;

export interface ChatStoreOptions {
  /**
   * How many rooms others may put one user in (invites, initial members of a new room, a new
   * direct room) within an hour; beyond it they get RATE_LIMITED. Joining or creating rooms
   * oneself is not counted.
   */
  roomAddsPerHour?: number;
}

/** The default of ROOM_ADDS_PER_HOUR. */
export const DEFAULT_ROOM_ADDS_PER_HOUR = 50;
/** The `message.created` domain event of a stored message. */
const messageCreated = (message: Message, roomKind: RoomKind, pairKey: string | null, trace: Trace) => ({
  type: "message.created" as const,
  requestId: trace.requestId,
  data: {
    messageId: message.id,
    roomId: message.roomId,
    seq: message.seq,
    userId: message.userId,
    roomKind,
    peerId:
      pairKey
        ?.split(":")
        .map(Number)
        .find((u) => u !== message.userId) ?? null,
    mentions: mentionedUsernames(message.body),
    replyTo: message.replyTo,
  },
});

const HOUR_MS = 3600_000;

/** Rooms per statement in afterMany: SQLite's compound-select limit is 500 terms. */
const SYNC_ROOMS_PER_STATEMENT = 100;

type ReactionRow = { message_id: number; user_id: number; emoji: string };

export class ChatStore {
  private readonly roomAddsPerHour: number;
  /** Whether a multi-row INSERT gets consecutive ids here (MySQL/MariaDB: asked once). */
  private consecutiveIds?: Promise<boolean>;

  constructor(
    private readonly db: Sql,
    private readonly outbox: Outbox,
    options: ChatStoreOptions = {},
  ) {
    this.roomAddsPerHour = options.roomAddsPerHour ?? DEFAULT_ROOM_ADDS_PER_HOUR;
  }

  /**
   * Counts `userIds` as put in a room by `byUserId` (in the caller's transaction), or refuses with
   * RATE_LIMITED when one of them was put in `roomAddsPerHour` rooms by others within the last
   * hour. Adding oneself is free. Two concurrent transactions on MariaDB may each pass the last
   * free slot (the count is not locked): the cap can be overshot by the number of racing adds.
   */
  private async noteAdditions(trx: Sql, roomId: number, userIds: number[], byUserId: number): Promise<void> {
    const targets = [...new Set(userIds)].filter((id) => id !== byUserId);
    if (targets.length === 0) return;
    const now = Date.now();
    const since = now - HOUR_MS;
    await trx("room_additions").whereIn("user_id", targets).andWhere("at", "<=", since).delete();
    const counts = await trx("room_additions")
      .whereIn("user_id", targets)
      .andWhere("at", ">", since)
      .groupBy("user_id")
      .select<{ user_id: number; n: number | string; oldest: number | string }[]>(
        "user_id",
        trx.raw("count(*) as n"),
        trx.raw("min(at) as oldest"),
      );
    const full = counts.find((c) => Number(c.n) >= this.roomAddsPerHour);
    if (full) {
      const retryAfterS = (Number(full.oldest) + HOUR_MS - now) / 1000;
      throw AppError.rateLimited(
        retryAfterS,
        `User ${full.user_id} has been added to ${this.roomAddsPerHour} rooms by others in the last hour, ` +
          "the most allowed; try again later",
      );
    }
    await trx("room_additions").insert(
      targets.map((userId) => ({ user_id: userId, by_user_id: byUserId, room_id: roomId, at: now })),
    );
  }

  // ---- rooms -------------------------------------------------------------------------------

  /** Inserts a room with its members and its `room.created` event, in the caller's transaction. */
  private async insertRoom(
    trx: Sql,
    room: { name: string; kind: RoomKind; topic: string; createdBy: number; directKey?: string },
    members: { userId: number; role: MemberRole }[],
    trace: Trace,
  ): Promise<number> {
    const now = Date.now();
    const [id] = await trx("rooms").insert({
      name: room.name,
      kind: room.kind,
      topic: room.topic,
      created_by: room.createdBy,
      created_at: now,
      direct_key: room.directKey ?? null,
    });
    const roomId = Number(id);
    await trx("room_members").insert(
      members.map((m) => ({ room_id: roomId, user_id: m.userId, role: m.role, joined_at: now })),
    );
    const memberIds = members.map((m) => m.userId).filter((userId) => userId !== room.createdBy);
    await this.outbox.write(trx, [
      {
        type: "room.created",
        requestId: trace.requestId,
        data: { roomId, userId: room.createdBy, kind: room.kind, name: room.name, memberIds },
      },
    ]);
    return roomId;
  }

  /** A public or private room; the creator is its owner and `members` are invited. */
  async createRoom(
    input: { name: string; kind: RoomKind; topic?: string; createdBy: number; members?: number[] },
    trace: Trace,
  ): Promise<number> {
    const others = [...new Set(input.members ?? [])].filter((m) => m !== input.createdBy);
    return this.db.transaction(async (trx) => {
      const roomId = await this.insertRoom(
        trx,
        { name: input.name, kind: input.kind, topic: input.topic ?? "", createdBy: input.createdBy },
        [{ userId: input.createdBy, role: "owner" }, ...others.map((userId) => ({ userId, role: "member" as const }))],
        trace,
      );
      await this.noteAdditions(trx, roomId, others, input.createdBy);
      await this.outbox.write(
        trx,
        others.map((userId) => ({
          type: "room.member_changed" as const,
          requestId: trace.requestId,
          data: { roomId, userId, byUserId: input.createdBy, action: "invited" as const, roomKind: input.kind },
        })),
      );
      return roomId;
    });
  }

  /** The direct room of a pair, created on first use; `created` tells which. */
  async directRoom(a: number, b: number, name: string, trace: Trace): Promise<{ id: number; created: boolean }> {
    const key = directKey(a, b);
    const existing = await this.db<RoomRow>("rooms").where({ direct_key: key }).first();
    if (existing) return { id: existing.id, created: false };
    try {
      return await this.db.transaction(async (trx) => {
        const members = (a === b ? [a] : [a, b]).map((userId) => ({ userId, role: "member" as const }));
        const room = { name, kind: "direct" as const, topic: "", createdBy: a, directKey: key };
        const id = await this.insertRoom(trx, room, members, trace);
        await this.noteAdditions(trx, id, [b], a);
        return { id, created: true };
      });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      // Both users opened it at once: the other transaction created it.
      const row = await this.db<RoomRow>("rooms").where({ direct_key: key }).first();
      if (!row) throw err;
      return { id: row.id, created: false };
    }
  }

  async room(roomId: number): Promise<RoomRecord | undefined> {
    return (await this.rooms([roomId]))[0];
  }

  async rooms(ids: number[]): Promise<RoomRecord[]> {
    if (ids.length === 0) return [];
    const rows = await this.db<RoomRow>("rooms").whereIn("id", ids).orderBy("id");
    return this.withCounts(rows);
  }

  private async withCounts(rows: RoomRow[]): Promise<RoomRecord[]> {
    if (rows.length === 0) return [];
    const counts = await this.db("room_members")
      .whereIn(
        "room_id",
        rows.map((r) => r.id),
      )
      .groupBy("room_id")
      .select("room_id")
      .count<{ room_id: number; n: number | string }[]>({ n: "*" });
    const countOf = new Map(counts.map((c) => [Number(c.room_id), Number(c.n)]));
    return rows.map((row) => toRecord(row, countOf.get(row.id) ?? 0));
  }

  /**
   * Rooms of a user with their membership, member count and last message (unordered). Three
   * statements whatever the number of rooms: each joins from the user's memberships, so none grows
   * with it (a list of ids or one OR term per room would: SQLite refuses an expression tree over
   * 1,000 deep, and a statement over its variable limit).
   */
  async roomsOf(userId: number): Promise<{ room: RoomRecord; membership: Membership; lastMessage?: Message }[]> {
    const mine = () =>
      this.db("room_members as rm").join("rooms as r", "r.id", "rm.room_id").where("rm.user_id", userId);
    const lastOfMine = () =>
      mine().join("messages as m", (j) => j.on("m.room_id", "r.id").andOn("m.seq", "r.last_seq"));
    const rows = await mine().select<(RoomRow & { role: MemberRole; last_read_seq: number; member_count: number })[]>(
      "r.*",
      "rm.role",
      "rm.last_read_seq",
      this.db.raw("(select count(*) from room_members c where c.room_id = r.id) as member_count"),
    );
    const lastRows = await lastOfMine().select<MessageRow[]>("m.*");
    const reactionRows = await lastOfMine()
      .join("message_reactions as mr", "mr.message_id", "m.id")
      .orderBy("mr.created_at")
      .select<ReactionRow[]>("mr.message_id", "mr.user_id", "mr.emoji");
    const last = new Map(this.withReactionRows(lastRows, reactionRows).map((m) => [m.roomId, m]));
    return rows.map((row) => ({
      room: toRecord(row, Number(row.member_count)),
      membership: { role: row.role, lastReadSeq: row.last_read_seq },
      lastMessage: last.get(row.id),
    }));
  }

  async roomIdsOf(userId: number): Promise<number[]> {
    const rows = await this.db("room_members").where({ user_id: userId }).select<{ room_id: number }[]>("room_id");
    return rows.map((r) => r.room_id);
  }

  async browsePublic(prefix: string, limit: number): Promise<RoomRecord[]> {
    const q = this.db<RoomRow>("rooms").where({ kind: "public" }).orderBy("name").orderBy("id").limit(limit);
    if (prefix)
      q.andWhereRaw("lower(name) like ? escape '!'", [prefix.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`) + "%"]);
    return this.withCounts(await q);
  }

  async updateRoom(
    roomId: number,
    patch: { name?: string; topic?: string },
    byUserId: number,
    trace: Trace,
  ): Promise<void> {
    const changes: Partial<RoomRow> = {};
    if (patch.name !== undefined) changes.name = patch.name;
    if (patch.topic !== undefined) changes.topic = patch.topic;
    if (Object.keys(changes).length === 0) return;
    await this.db.transaction(async (trx) => {
      await trx("rooms").where({ id: roomId }).update(changes);
      await this.outbox.write(trx, [
        {
          type: "room.updated",
          requestId: trace.requestId,
          data: { roomId, userId: byUserId, fields: Object.keys(patch) },
        },
      ]);
    });
  }

  // ---- members -----------------------------------------------------------------------------

  async membership(roomId: number, userId: number): Promise<Membership | undefined> {
    const row = await this.db("room_members")
      .where({ room_id: roomId, user_id: userId })
      .first<{ role: MemberRole; last_read_seq: number }>();
    return row ? { role: row.role, lastReadSeq: row.last_read_seq } : undefined;
  }

  /** Adds a member (joined or invited); false when the user already was one. */
  async addMember(change: MemberChange, trace: Trace): Promise<boolean> {
    try {
      await this.db.transaction(async (trx) => {
        await trx("room_members").insert({
          room_id: change.roomId,
          user_id: change.userId,
          role: "member",
          joined_at: Date.now(),
        });
        await this.noteAdditions(trx, change.roomId, [change.userId], change.byUserId);
        await this.outbox.write(trx, [memberEvent(change, trace)]);
      });
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  /** Removes a member (left or kicked); false when the user was not one. */
  async removeMember(change: MemberChange, trace: Trace): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const removed = await trx("room_members").where({ room_id: change.roomId, user_id: change.userId }).delete();
      if (removed > 0) await this.outbox.write(trx, [memberEvent(change, trace)]);
      return removed > 0;
    });
  }

  /** Of `userIds`, those who are members of the room. */
  async membersAmong(roomId: number, userIds: number[]): Promise<number[]> {
    if (userIds.length === 0) return [];
    const rows = await this.db("room_members")
      .where({ room_id: roomId })
      .whereIn("user_id", userIds)
      .select<{ user_id: number }[]>("user_id");
    return rows.map((r) => r.user_id);
  }

  async members(roomId: number): Promise<{ userId: number; role: MemberRole }[]> {
    const rows = await this.db("room_members")
      .where({ room_id: roomId })
      .orderBy("joined_at")
      .orderBy("user_id")
      .select<{ user_id: number; role: MemberRole }[]>("user_id", "role");
    return rows.map((r) => ({ userId: r.user_id, role: r.role }));
  }

  /** Moves the marker forward only; returns the marker after the call. */
  async markRead(roomId: number, userId: number, seq: number): Promise<number> {
    await this.db("room_members")
      .where({ room_id: roomId, user_id: userId })
      .andWhere("last_read_seq", "<", seq)
      .update({ last_read_seq: seq });
    return (await this.membership(roomId, userId))?.lastReadSeq ?? 0;
  }

  // ---- messages ----------------------------------------------------------------------------

  async findByClientMsgId(userId: number, clientMsgId: string): Promise<Message | undefined> {
    const row = await this.db<MessageRow>("messages").where({ user_id: userId, client_msg_id: clientMsgId }).first();
    return row ? (await this.withReactions([row]))[0] : undefined;
  }

  async message(messageId: number): Promise<Message | undefined> {
    const row = await this.db<MessageRow>("messages").where({ id: messageId }).first();
    return row ? (await this.withReactions([row]))[0] : undefined;
  }

  /**
   * Takes the room's next seq. The UPDATE locks the room row until the transaction ends, so
   * concurrent senders queue on it and seqs come out 1, 2, 3, … with no gap; it also returns the
   * new value (MySQL: LAST_INSERT_ID(expr), read back as the statement's insertId; SQLite: RETURNING).
   */
  private async nextSeq(trx: Sql, roomId: number): Promise<number> {
    if (isMysql(this.db)) {
      const [res] = (await trx.raw("update rooms set last_seq = last_insert_id(last_seq + 1) where id = ?", [
        roomId,
      ])) as [{ insertId: number; affectedRows: number }];
      if (res.affectedRows !== 1) throw AppError.notFound("Room");
      return Number(res.insertId);
    }
    const rows = (await trx.raw("update rooms set last_seq = last_seq + 1 where id = ? returning last_seq", [
      roomId,
    ])) as { last_seq: number }[];
    if (rows.length !== 1) throw AppError.notFound("Room");
    return Number(rows[0].last_seq);
  }

  /**
   * Stores one message of a member; see sendMany, whose one-item batch this is.
   */
  async send(input: SendInput, trace: Trace): Promise<SendResult> {
    const [outcome] = await this.sendMany([{ ...input, trace }]);
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /**
   * Stores a batch of sends, each answered alone, in order. Per send, as for one: membership comes
   * first (NOT_FOUND for rooms the sender cannot see, FORBIDDEN for public ones they are not in,
   * whatever else they sent — a replyTo must not tell them which room a message is in); a repeated
   * clientMsgId returns the stored original (`created: false`) and changes nothing, or CONFLICT if
   * it was sent to another room; then replyTo must be a message of the same room.
   *
   * The cost does not grow with the number of sends but with round trips: three reads (rooms,
   * memberships, repeated clientMsgIds; a fourth for replyTo), then one transaction — every room's
   * counter moved once, rooms locked in id order, so batches on several chat instances never
   * deadlock and each room's seqs stay gap-free; one multi-row insert of the messages, the
   * senders' read markers moved together, one outbox write — and COMMIT. If the transaction fails
   * for one send (say, a concurrent retry of its clientMsgId), the batch is stored again one send at
   * a time so that send fails alone.
   */
  async sendMany(requests: SendRequest[]): Promise<Outcome<SendResult>[]> {
    const outcomes: Outcome<SendResult>[] = new Array(requests.length);
    const fail = (i: number, error: unknown) => (outcomes[i] = { ok: false, error });
    const ctx = await this.sendContext(requests);
    const fresh: number[] = [];
    const firstOf = new Map<string, number>(); // sender:clientMsgId → the batch's first send of it
    const repeats: [number, number][] = []; // [send, first send of its clientMsgId in this batch]
    requests.forEach((r, i) => {
      const room = ctx.rooms.get(r.roomId);
      const role = ctx.roles.get(pairKey(r.roomId, r.userId));
      const key = pairKey(r.userId, r.clientMsgId);
      const original = ctx.existing.get(key);
      if (!room || !canSee(room.kind, role)) fail(i, AppError.notFound("Room"));
      else if (!role) fail(i, AppError.forbidden("Join the room first"));
      else if (original) outcomes[i] = replay(original, r.roomId);
      else if (r.replyTo && ctx.replyRooms.get(r.replyTo) !== r.roomId) {
        fail(i, AppError.validation([{ field: "replyTo", message: "replyTo must be a message of the same room." }]));
      } else if (firstOf.has(key)) repeats.push([i, firstOf.get(key)!]);
      else {
        firstOf.set(key, i);
        fresh.push(i);
      }
    });
    if (fresh.length > 0) {
      try {
        const stored = await this.insertSends(
          fresh.map((i) => requests[i]),
          ctx.rooms,
        );
        fresh.forEach((i, k) => (outcomes[i] = { ok: true, value: { message: stored[k], created: true } }));
      } catch (err) {
        if (fresh.length > 1 && !databaseUnavailable(err)) {
          // One send spoiled the batch: each alone, so only that one fails.
          for (const i of fresh) [outcomes[i]] = await this.sendMany([requests[i]]);
        } else {
          const i = fresh[0];
          // A concurrent retry of the same clientMsgId won the race: answer with its message.
          const original =
            isUniqueViolation(err) && fresh.length === 1
              ? await this.findByClientMsgId(requests[i].userId, requests[i].clientMsgId)
              : undefined;
          if (original) outcomes[i] = replay(original, requests[i].roomId);
          else for (const j of fresh) fail(j, err);
        }
      }
    }
    for (const [i, first] of repeats) {
      const o = outcomes[first];
      outcomes[i] = o.ok ? replay(o.value.message, requests[i].roomId) : o;
    }
    return outcomes;
  }

  /**
   * Inserts message rows in one statement and answers their ids, in order. One multi-row INSERT
   * gets consecutive ids where the engine promises it — SQLite (one writer), and MySQL/MariaDB with
   * innodb_autoinc_lock_mode 0 or 1 (1 is MariaDB's default) — read off the insert; with mode 2 (or
   * if unknown) they are read back by (room, seq).
   */
  private async insertedIds(trx: Sql, rows: { room_id: number; seq: number }[]): Promise<number[]> {
    const [id] = (await trx("messages").insert(rows)) as number[];
    if (!isMysql(this.db)) return rows.map((_, k) => Number(id) - rows.length + 1 + k);
    this.consecutiveIds ??= this.db
      .raw("select @@innodb_autoinc_lock_mode as mode")
      .then((res: [{ mode: number | string }[]]) => Number(res[0][0]?.mode) <= 1)
      .catch(() => false);
    if (await this.consecutiveIds) return rows.map((_, k) => Number(id) + k);
    const found = await trx("messages")
      .whereIn("room_id", [...new Set(rows.map((r) => r.room_id))])
      .whereIn("seq", [...new Set(rows.map((r) => r.seq))])
      .select<{ id: number; room_id: number; seq: number }[]>("id", "room_id", "seq");
    const idOf = new Map(found.map((r) => [pairKey(r.room_id, r.seq), Number(r.id)]));
    return rows.map((r) => idOf.get(pairKey(r.room_id, r.seq))!);
  }

  /** What a batch of sends needs to know, in three or four reads whatever its size. */
  private async sendContext(requests: SendRequest[]) {
    const roomIds = [...new Set(requests.map((r) => r.roomId))];
    const userIds = [...new Set(requests.map((r) => r.userId))];
    const replyIds = [...new Set(requests.flatMap((r) => (r.replyTo ? [r.replyTo] : [])))];
    // Memberships and repeated clientMsgIds as IN × IN on their two-column keys (index ranges the
    // planner handles well); the few rows of other pairs that match are ignored below.
    const [roomRows, memberRows, existingRows, replyRows] = await Promise.all([
      this.db<RoomRow>("rooms").whereIn("id", roomIds).select("id", "kind", "direct_key"),
      this.db("room_members")
        .whereIn("room_id", roomIds)
        .whereIn("user_id", userIds)
        .select<{ room_id: number; user_id: number; role: MemberRole }[]>("room_id", "user_id", "role"),
      this.db<MessageRow>("messages")
        .whereIn("user_id", userIds)
        .whereIn("client_msg_id", [...new Set(requests.map((r) => r.clientMsgId))])
        .select(),
      replyIds.length === 0
        ? []
        : this.db("messages").whereIn("id", replyIds).select<{ id: number; room_id: number }[]>("id", "room_id"),
    ]);
    const wanted = new Set(requests.map((r) => pairKey(r.userId, r.clientMsgId)));
    const existing = await this.withReactions(
      existingRows.filter((m) => wanted.has(pairKey(m.user_id, m.client_msg_id))),
    );
    return {
      rooms: new Map(roomRows.map((r) => [r.id, { kind: r.kind, directKey: r.direct_key }])),
      roles: new Map(memberRows.map((m) => [pairKey(m.room_id, m.user_id), m.role])),
      existing: new Map(existing.map((m) => [pairKey(m.userId, m.clientMsgId), m])),
      replyRooms: new Map(replyRows.map((r) => [Number(r.id), Number(r.room_id)])),
    };
  }

  /** One transaction for sends already checked; the stored messages in the order given. */
  private insertSends(
    sends: SendRequest[],
    rooms: Map<number, { kind: RoomKind; directKey: string | null }>,
  ): Promise<Message[]> {
    return this.db.transaction(async (trx) => {
      const counts = new Map<number, number>();
      for (const s of sends) counts.set(s.roomId, (counts.get(s.roomId) ?? 0) + 1);
      const roomIds = [...counts.keys()].sort((a, b) => a - b);
      // Every room's counter moves once; the rows are locked in id order until COMMIT.
      const moved = await trx("rooms")
        .whereIn("id", roomIds)
        .update({
          last_seq: trx.raw(`last_seq + case id ${roomIds.map(() => "when ? then ?").join(" ")} end`, [
            ...roomIds.flatMap((id) => [id, counts.get(id)!]),
          ]),
        });
      if (moved !== roomIds.length) throw AppError.notFound("Room");
      const last = await trx<RoomRow>("rooms").whereIn("id", roomIds).select("id", "last_seq");
      const next = new Map(last.map((r) => [r.id, Number(r.last_seq) - counts.get(r.id)! + 1]));
      const now = Date.now();
      const rows = sends.map((s) => {
        const seq = next.get(s.roomId)!;
        next.set(s.roomId, seq + 1);
        return {
          room_id: s.roomId,
          seq,
          user_id: s.userId,
          body: s.body,
          client_msg_id: s.clientMsgId,
          reply_to: s.replyTo ?? null,
          created_at: now,
          edited_at: null,
          deleted: false,
        };
      });
      const ids = await this.insertedIds(trx, rows);
      const messages = rows.map((row, k) => toMessage({ ...row, id: ids[k] }));
      // Each sender's read marker moves to their newest message in the room.
      const markers = new Map<string, [number, number, number]>();
      for (const m of messages) markers.set(pairKey(m.roomId, m.userId), [m.roomId, m.userId, m.seq]);
      const marks = [...markers.values()];
      // One statement: the rows are found by room and sender; a pair not in the batch keeps its marker.
      await trx("room_members")
        .whereIn("room_id", [...new Set(marks.map(([roomId]) => roomId))])
        .whereIn("user_id", [...new Set(marks.map(([, userId]) => userId))])
        .update({
          last_read_seq: trx.raw(
            `case ${marks.map(() => "when room_id = ? and user_id = ? then ?").join(" ")} else last_read_seq end`,
            marks.flat(),
          ),
        });
      await this.outbox.write(
        trx,
        messages.map((m, k) => {
          const room = rooms.get(m.roomId)!;
          return messageCreated(m, room.kind, room.directKey, sends[k].trace);
        }),
      );
      return messages;
    });
  }

  /**
   * A system message (the operator's `announce`): sent by SYSTEM_USER_ID with the room's next seq
   * and its `message.created` event, like any message; nobody's read marker moves.
   */
  async announce(roomId: number, body: string, trace: Trace): Promise<Message> {
    return this.db.transaction(async (trx) => {
      const room = await trx<RoomRow>("rooms").where({ id: roomId }).first("kind", "direct_key");
      if (!room) throw AppError.notFound("Room");
      const row = {
        room_id: roomId,
        seq: await this.nextSeq(trx, roomId),
        user_id: SYSTEM_USER_ID,
        body,
        client_msg_id: randomUUID().replace(/-/g, ""),
        reply_to: null,
        created_at: Date.now(),
        edited_at: null,
        deleted: false,
      };
      const [id] = await trx("messages").insert(row);
      const message = toMessage({ ...row, id: Number(id) });
      await this.outbox.write(trx, [messageCreated(message, room.kind, room.direct_key, trace)]);
      return message;
    });
  }

  // ---- for the operator ------------------------------------------------------------------------

  /** The rooms with the most messages, with member counts and the time of their newest message. */
  async busiestRooms(limit: number): Promise<(RoomRecord & { lastActivityAt: number })[]> {
    const rows = await this.db("rooms as r")
      .orderBy([
        { column: "r.last_seq", order: "desc" },
        { column: "r.id", order: "asc" },
      ])
      .limit(limit)
      .select<(RoomRow & { last_at: number | string | null })[]>(
        "r.*",
        this.db.raw("(select m.created_at from messages m where m.room_id = r.id and m.seq = r.last_seq) as last_at"),
      );
    const records = await this.withCounts(rows);
    return records.map((record, i) => ({ ...record, lastActivityAt: Number(rows[i].last_at ?? rows[i].created_at) }));
  }

  /** Rooms (not direct ones) called exactly `name`, at most `limit`. */
  async roomsNamed(name: string, limit: number): Promise<RoomRecord[]> {
    const rows = await this.db<RoomRow>("rooms")
      .where({ name })
      .whereNot({ kind: "direct" })
      .orderBy("id")
      .limit(limit);
    return this.withCounts(rows);
  }

  async edit(message: Message, body: string, trace: Trace): Promise<Message> {
    await this.db.transaction(async (trx) => {
      await trx("messages").where({ id: message.id, deleted: false }).update({ body, edited_at: Date.now() });
      await this.outbox.write(trx, [
        {
          type: "message.edited",
          requestId: trace.requestId,
          data: { messageId: message.id, roomId: message.roomId, seq: message.seq, userId: message.userId },
        },
      ]);
    });
    return (await this.message(message.id)) as Message;
  }

  /** Tombstone: the row keeps its id and seq; body and reactions go. */
  async remove(message: Message, byUserId: number, trace: Trace): Promise<void> {
    await this.db.transaction(async (trx) => {
      await trx("messages").where({ id: message.id }).update({ deleted: true, body: "" });
      await trx("message_reactions").where({ message_id: message.id }).delete();
      await this.outbox.write(trx, [
        {
          type: "message.deleted",
          requestId: trace.requestId,
          data: {
            messageId: message.id,
            roomId: message.roomId,
            seq: message.seq,
            userId: byUserId,
            authorId: message.userId,
          },
        },
      ]);
    });
  }

  /** Adds the caller's reaction, or removes it if it was there. */
  async toggleReaction(message: Message, userId: number, emoji: string, trace: Trace): Promise<Message> {
    await this.db.transaction(async (trx) => {
      const removed = await trx("message_reactions").where({ message_id: message.id, user_id: userId, emoji }).delete();
      if (removed === 0) {
        await trx("message_reactions").insert({
          message_id: message.id,
          user_id: userId,
          emoji,
          created_at: Date.now(),
        });
      }
      await this.outbox.write(trx, [
        {
          type: "reaction.toggled",
          requestId: trace.requestId,
          data: { messageId: message.id, roomId: message.roomId, userId, emoji },
        },
      ]);
    });
    return (await this.message(message.id)) as Message;
  }

  /** Messages after `afterSeq` (ascending), up to `limit`, and whether more follow. */
  async after(roomId: number, afterSeq: number, limit: number): Promise<{ messages: Message[]; hasMore: boolean }> {
    const rows = await this.db<MessageRow>("messages")
      .where({ room_id: roomId })
      .andWhere("seq", ">", afterSeq)
      .orderBy("seq", "asc")
      .limit(limit + 1);
    const hasMore = rows.length > limit;
    return {
      messages: await this.withReactions(rows.slice(0, limit)),
      hasMore,
    };
  }

  /**
   * `after` for many rooms at once (sync): each room's first `limit` messages after its seq, in a
   * few statements whatever the number of rooms — one UNION ALL of per-room limited selects per
   * SYNC_ROOMS_PER_STATEMENT rooms (SQLite allows 500 terms in a compound select), then their
   * reactions — instead of two per room.
   */
  async afterMany(
    requests: { roomId: number; after: number }[],
    limit: number,
  ): Promise<Map<number, { messages: Message[]; hasMore: boolean }>> {
    const rows: MessageRow[] = [];
    for (let i = 0; i < requests.length; i += SYNC_ROOMS_PER_STATEMENT) {
      const page = (r: { roomId: number; after: number }) =>
        this.db<MessageRow>("messages")
          .where({ room_id: r.roomId })
          .andWhere("seq", ">", r.after)
          .orderBy("seq", "asc")
          .limit(limit + 1);
      const [first, ...rest] = requests.slice(i, i + SYNC_ROOMS_PER_STATEMENT);
      const query = this.db.select("*").from(page(first).as("p0"));
      rest.forEach((r, j) => query.unionAll(this.db.select("*").from(page(r).as(`p${j + 1}`))));
      rows.push(...((await query) as MessageRow[]));
    }
    const byRoom = new Map<number, MessageRow[]>(requests.map((r) => [r.roomId, []]));
    for (const row of rows) byRoom.get(row.room_id)?.push(row);
    const kept = [...byRoom.values()].flatMap((list) => list.sort((a, b) => a.seq - b.seq).slice(0, limit));
    const messages = new Map<number, Message>();
    for (let i = 0; i < kept.length; i += 1000) {
      for (const m of await this.withReactions(kept.slice(i, i + 1000))) messages.set(m.id, m);
    }
    return new Map(
      [...byRoom].map(([roomId, list]) => [
        roomId,
        {
          messages: list.slice(0, limit).map((row) => messages.get(row.id)!),
          hasMore: list.length > limit,
        },
      ]),
    );
  }

  /** The caller's view of many rooms in one query: each existing room's kind and the caller's membership. */
  async accessTo(userId: number, roomIds: number[]): Promise<Map<number, { kind: RoomKind; role?: MemberRole }>> {
    if (roomIds.length === 0) return new Map();
    const rows = await this.db("rooms as r")
      .leftJoin("room_members as rm", (j) => j.on("rm.room_id", "r.id").andOnVal("rm.user_id", userId))
      .whereIn("r.id", roomIds)
      .select<{ id: number; kind: RoomKind; role: MemberRole | null }[]>("r.id", "r.kind", "rm.role");
    return new Map(rows.map((r) => [r.id, { kind: r.kind, role: r.role ?? undefined }]));
  }

  /** Messages before `beforeSeq` (or the newest), returned ascending, and whether older ones exist. */
  async before(
    roomId: number,
    beforeSeq: number | undefined,
    limit: number,
  ): Promise<{ messages: Message[]; hasMore: boolean }> {
    const q = this.db<MessageRow>("messages")
      .where({ room_id: roomId })
      .orderBy("seq", "desc")
      .limit(limit + 1);
    if (beforeSeq !== undefined) q.andWhere("seq", "<", beforeSeq);
    const rows = await q;
    const hasMore = rows.length > limit;
    return {
      messages: await this.withReactions(rows.slice(0, limit).reverse()),
      hasMore,
    };
  }

  /** The newest message of each of a few rooms (a user's whole list: roomsOf). */
  async lastMessages(roomIds: number[]): Promise<Map<number, Message>> {
    if (roomIds.length === 0) return new Map();
    const rows = await this.db("messages as m")
      .join("rooms as r", (j) => j.on("r.id", "m.room_id").andOn("r.last_seq", "m.seq"))
      .whereIn("r.id", roomIds)
      .select<MessageRow[]>("m.*");
    const messages = await this.withReactions(rows);
    return new Map(messages.map((m) => [m.roomId, m]));
  }

  private async withReactions(rows: MessageRow[]): Promise<Message[]> {
    if (rows.length === 0) return [];
    const reactions = await this.db("message_reactions")
      .whereIn(
        "message_id",
        rows.map((r) => r.id),
      )
      .orderBy("created_at")
      .select<ReactionRow[]>("message_id", "user_id", "emoji");
    return this.withReactionRows(rows, reactions);
  }

  /** Messages with their reactions (rows in the order given: oldest first). */
  private withReactionRows(rows: MessageRow[], reactions: ReactionRow[]): Message[] {
    const byMessage = new Map<number, Map<string, number[]>>();
    for (const r of reactions) {
      let byEmoji = byMessage.get(r.message_id);
      if (!byEmoji) byMessage.set(r.message_id, (byEmoji = new Map()));
      let userIds = byEmoji.get(r.emoji);
      if (!userIds) byEmoji.set(r.emoji, (userIds = []));
      userIds.push(r.user_id);
    }
    return rows.map((row) => toMessage(row, byMessage.get(row.id)));
  }
}
