/** notify's tables: notifications per user. */
import type { Notification, NotificationKind } from "../contracts/objects.js";
import type { Sql } from "../infra/sql.js";

interface NotificationRow {
  id: number;
  user_id: number;
  kind: NotificationKind;
  room_id: number;
  message_id: number | null;
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

export class NotifyStore {
  constructor(private readonly db: Sql) {}

  async add(userId: number, n: Omit<Notification, "id" | "createdAt" | "seen">): Promise<Notification> {
    const row = {
      user_id: userId,
      kind: n.kind,
      room_id: n.roomId,
      message_id: n.messageId,
      from_user_id: n.fromUserId,
      created_at: Date.now(),
      seen: false,
    };
    const [id] = await this.db("notifications").insert(row);
    return toNotification({ ...row, id: Number(id) });
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
}
