/** notify's tables: notifications per user, per-room notification levels, processed event ids. */
import type { Notification, NotificationKind } from "../contracts/objects.js";
import { isUniqueViolation, type Sql } from "../infra/sql.js";

export type NotifyLevel = "all" | "mentions" | "none";

interface NotificationRow {
  id: number;
  user_id: number;
  kind: NotificationKind;
  room_id: number;
  message_id: number | null;
  seq: number | null;
  from_user_id: number;
  created_at: number | string;
  seen: number | boolean;
}

const toNotification = (row: NotificationRow): Notification => ({
  id: row.id,
  kind: row.kind,
  roomId: row.room_id,
  messageId: row.message_id,
  fromUserId: row.from_user_id,
  createdAt: new Date(Number(row.created_at)).toISOString(),
  seen: Boolean(row.seen),
});

export interface NewNotification {
  userId: number;
  kind: NotificationKind;
  roomId: number;
  messageId: number | null;
  seq: number | null;
  fromUserId: number;
}

export class NotifyStore {
  constructor(private readonly db: Sql) {}

  /**
   * Applies one event exactly once: records its id and inserts its notifications in one
   * transaction. Returns the notifications created, or null when the event was seen before.
   */
  async applyOnce(
    eventId: string,
    items: NewNotification[],
    now = Date.now(),
  ): Promise<(Notification & { userId: number })[] | null> {
    try {
      return await this.db.transaction(async (trx) => {
        await trx("notify_processed").insert({ event_id: eventId, processed_at: now });
        const created: (Notification & { userId: number })[] = [];
        for (const item of items) {
          const row = {
            user_id: item.userId,
            kind: item.kind,
            room_id: item.roomId,
            message_id: item.messageId,
            seq: item.seq,
            from_user_id: item.fromUserId,
            created_at: now,
            seen: false,
            event_id: eventId,
          };
          const [id] = await trx("notifications").insert(row);
          created.push({ ...toNotification({ ...row, id: Number(id) }), userId: item.userId });
        }
        return created;
      });
    } catch (err) {
      if (isUniqueViolation(err)) return null;
      throw err;
    }
  }

  /** Newest first. */
  async list(userId: number, opts: { unseenOnly: boolean; limit: number }): Promise<Notification[]> {
    const q = this.db<NotificationRow>("notifications")
      .where({ user_id: userId })
      .orderBy("id", "desc")
      .limit(opts.limit);
    if (opts.unseenOnly) q.andWhere({ seen: false });
    return (await q).map(toNotification);
  }

  async markSeen(userId: number, ids: number[] | "all"): Promise<void> {
    const q = this.db("notifications").where({ user_id: userId, seen: false });
    if (ids !== "all") q.whereIn("id", ids);
    await q.update({ seen: true });
  }

  /** Mentions of the user in each room after that room's read marker. */
  async mentionCounts(userId: number, markers: Record<number, number>): Promise<Record<number, number>> {
    const roomIds = Object.keys(markers).map(Number);
    const counts: Record<number, number> = Object.fromEntries(roomIds.map((id) => [id, 0]));
    if (roomIds.length === 0) return counts;
    const rows = await this.db("notifications")
      .where({ user_id: userId, kind: "mention" })
      .whereIn("room_id", roomIds)
      .select<{ room_id: number; seq: number | null }[]>("room_id", "seq");
    for (const row of rows) {
      if ((row.seq ?? 0) > (markers[row.room_id] ?? 0)) counts[row.room_id] += 1;
    }
    return counts;
  }

  async levels(userIds: number[], roomId: number): Promise<Map<number, NotifyLevel>> {
    if (userIds.length === 0) return new Map();
    const rows = await this.db("notify_room_prefs")
      .where({ room_id: roomId })
      .whereIn("user_id", userIds)
      .select<{ user_id: number; level: NotifyLevel }[]>("user_id", "level");
    return new Map(rows.map((r) => [r.user_id, r.level]));
  }

  async setLevel(userId: number, roomId: number, level: NotifyLevel): Promise<void> {
    await this.db("notify_room_prefs")
      .insert({ user_id: userId, room_id: roomId, level })
      .onConflict(["user_id", "room_id"])
      .merge();
  }
}
