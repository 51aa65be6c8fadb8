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

/**
 * Names (and user ids) looked up per call: users.findManyByUsername takes at most 100. A message
 * may mention as many people as its 4,000 characters hold (about 800); they are looked up in chunks.
 */
export const LOOKUP_CHUNK = 100;

function chunks<T>(items: T[], size = LOOKUP_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
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
      const named: number[] = [];
      for (const names of chunks([...new Set(data.mentions)])) {
        for (const u of await dir.usersByName(names)) if (u.id !== data.userId) named.push(u.id);
      }
      const members: number[] = [];
      for (const ids of chunks(named)) members.push(...(await dir.membersAmong(data.roomId, ids)));
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
