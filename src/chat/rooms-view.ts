/** Shapes stored rooms into the contract's Room for one caller. */
import type { Message, Room } from "../contracts/objects.js";
import type { Membership, RoomRecord } from "./store.js";

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
