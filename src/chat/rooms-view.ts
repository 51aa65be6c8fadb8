/** Shapes stored rooms into the contract's Room for one caller. */
import type { Message, Room } from "../contracts/objects.js";
import type { UnreadState } from "../contracts/socket.js";
import { AppError } from "../errors.js";
import type { ChatStore, Membership, RoomRecord } from "./store.js";

export interface RoomView {
  record: RoomRecord;
  membership?: Membership;
  lastMessage?: Message;
}

/** Direct rooms are named after the other member; `usernames` maps user id → username. */
export function toRoom(view: RoomView, callerId: number, usernames: Map<number, string>): Room {
  const { record, membership, lastMessage } = view;
  let name = record.name;
  if (record.kind === "direct" && record.directPair) {
    const other = record.directPair[0] === callerId ? record.directPair[1] : record.directPair[0];
    name = usernames.get(other) ?? name;
  }
  const room: Room = {
    id: record.id,
    name,
    kind: record.kind,
    topic: record.topic,
    createdBy: record.createdBy,
    createdAt: record.createdAt,
    memberCount: record.memberCount,
    lastSeq: record.lastSeq,
  };
  if (membership) {
    room.role = membership.role;
    room.lastReadSeq = membership.lastReadSeq;
    room.unread = Math.max(0, record.lastSeq - membership.lastReadSeq);
    room.mentions = 0;
  }
  if (lastMessage) room.lastMessage = lastMessage;
  return room;
}

/** The users whose names the direct rooms among `records` need. */
export function directPeers(records: RoomRecord[]): number[] {
  return [...new Set(records.flatMap((r) => r.directPair ?? []))];
}

/** What shaping rooms needs from other services, bound to the calling request. */
export interface ViewLookups {
  /** user id → username, for the given ids. */
  usernames(ids: number[]): Promise<Map<number, string>>;
  /** Mention counts per room above each read marker; {} when they cannot be had. */
  mentionCounts(userId: number, markers: Record<number, number>): Promise<Record<number, number>>;
}

/** Rooms and unread state as one caller sees them. */
export class RoomViews {
  constructor(
    private readonly store: ChatStore,
    private readonly lookups: ViewLookups,
  ) {}

  /** Direct rooms named after the other member. */
  async shape(callerId: number, views: RoomView[]): Promise<Room[]> {
    const names = await this.lookups.usernames(directPeers(views.map((v) => v.record)));
    return views.map((view) => toRoom(view, callerId, names));
  }

  /** The caller's rooms, with unread and mention counts, the most recently active first. */
  async roomsOf(callerId: number): Promise<Room[]> {
    const mine = await this.store.roomsOf(callerId);
    const rooms = await this.shape(
      callerId,
      mine.map((m) => ({ record: m.room, membership: m.membership, lastMessage: m.lastMessage })),
    );
    // Mentions can only be unread in rooms with unread messages.
    const unread = mine.filter((m) => m.room.lastSeq > m.membership.lastReadSeq);
    const mentions = await this.lookups.mentionCounts(
      callerId,
      Object.fromEntries(unread.map((m) => [m.room.id, m.membership.lastReadSeq])),
    );
    for (const room of rooms) room.mentions = mentions[room.id] ?? 0;
    const activity = (r: Room) => r.lastMessage?.createdAt ?? r.createdAt;
    return rooms.sort((a, b) => activity(b).localeCompare(activity(a)));
  }

  /** One room as the caller sees it: role, unread, mentions, last message. */
  async room(roomId: number, callerId: number): Promise<Room> {
    const record = await this.store.room(roomId);
    if (!record) throw AppError.notFound("Room");
    const membership = await this.store.membership(roomId, callerId);
    const last = await this.store.lastMessages([roomId]);
    const [room] = await this.shape(callerId, [{ record, membership, lastMessage: last.get(roomId) }]);
    if (membership) {
      const mentions = await this.lookups.mentionCounts(callerId, { [roomId]: membership.lastReadSeq });
      room.mentions = mentions[roomId] ?? 0;
    }
    return room;
  }

  async unreadState(roomId: number, userId: number): Promise<UnreadState> {
    const record = await this.store.room(roomId);
    const membership = await this.store.membership(roomId, userId);
    const lastSeq = record?.lastSeq ?? 0;
    const lastReadSeq = membership?.lastReadSeq ?? 0;
    const mentions = await this.lookups.mentionCounts(userId, { [roomId]: lastReadSeq });
    return { roomId, lastReadSeq, unread: Math.max(0, lastSeq - lastReadSeq), mentions: mentions[roomId] ?? 0 };
  }
}
