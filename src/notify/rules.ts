/**
 * Who gets a notification for an event: a mention of a room member, a message in a direct room
 * for the other member, an invite for the invitee. Never for your own actions, for non-members, or
 * for rooms the user muted ("none"; "mentions" keeps mentions and direct messages only — which are
 * all there is today, so it matters once "all" gains per-message notifications).
 */
import type { DomainEvent } from "../contracts/domain-events.js";
import type { NewNotification, NotifyLevel } from "./store.js";

export interface Directory {
  usersByName(names: string[]): Promise<{ id: number; username: string }[]>;
  membersAmong(roomId: number, userIds: number[]): Promise<number[]>;
  levels(userIds: number[], roomId: number): Promise<Map<number, NotifyLevel>>;
}

export async function notificationsFor(event: DomainEvent, dir: Directory): Promise<NewNotification[]> {
  const wanted: NewNotification[] = [];
  if (event.type === "message.created") {
    const { data } = event;
    const base = { roomId: data.roomId, messageId: data.messageId, seq: data.seq, fromUserId: data.userId };
    if (data.roomKind === "direct" && data.peerId !== null && data.peerId !== data.userId) {
      wanted.push({ ...base, userId: data.peerId, kind: "direct" });
    }
    if (data.mentions.length > 0) {
      const named = (await dir.usersByName(data.mentions)).map((u) => u.id).filter((id) => id !== data.userId);
      const members = named.length > 0 ? await dir.membersAmong(data.roomId, named) : [];
      for (const userId of members) {
        // In a direct room the peer already gets the "direct" notification for this message.
        if (!(data.roomKind === "direct" && userId === data.peerId)) wanted.push({ ...base, userId, kind: "mention" });
      }
    }
  } else if (event.type === "room.member_changed" && event.data.action === "invited") {
    const { data } = event;
    if (data.userId !== data.byUserId) {
      wanted.push({
        userId: data.userId,
        kind: "invite",
        roomId: data.roomId,
        messageId: null,
        seq: null,
        fromUserId: data.byUserId,
      });
    }
  }
  if (wanted.length === 0) return wanted;
  const levels = await dir.levels(
    wanted.map((w) => w.userId),
    wanted[0].roomId,
  );
  return wanted.filter((w) => {
    const level = levels.get(w.userId) ?? "all";
    return level !== "none" || w.kind === "invite";
  });
}
