/**
 * Who may reach which room or message: the checks chat's actions start with, answering as the
 * contract says — NOT_FOUND for what the caller may not see (so an id tells them nothing),
 * FORBIDDEN ("join first") for a public room they are not in.
 */
import type { MemberRole, Message, RoomKind } from "../contracts/objects.js";
import { AppError } from "../errors.js";
import { canSee } from "./rules.js";
import type { ChatStore, Membership, RoomRecord } from "./store.js";

export class RoomAccess {
  constructor(private readonly store: ChatStore) {}

  /** Members see their rooms, everyone sees public rooms; anything else is NOT_FOUND. */
  async visibleRoom(roomId: number, userId: number): Promise<{ record: RoomRecord; membership?: Membership }> {
    const record = await this.store.room(roomId);
    const membership = record ? await this.store.membership(roomId, userId) : undefined;
    if (!record || !canSee(record.kind, membership?.role)) throw AppError.notFound("Room");
    return { record, membership };
  }

  /** Reading and writing need membership: a public room's non-member gets FORBIDDEN, others NOT_FOUND. */
  async memberRoom(roomId: number, userId: number): Promise<{ record: RoomRecord; membership: Membership }> {
    const { record, membership } = await this.visibleRoom(roomId, userId);
    if (!membership) throw AppError.forbidden("Join the room first");
    return { record, membership };
  }

  /**
   * Many rooms checked as memberRoom checks one, in one query: the first room that fails decides
   * the error.
   */
  async memberRooms(roomIds: number[], userId: number): Promise<void> {
    const access: Map<number, { kind: RoomKind; role?: MemberRole }> = await this.store.accessTo(userId, roomIds);
    for (const roomId of roomIds) {
      const room = access.get(roomId);
      if (!room || !canSee(room.kind, room.role)) throw AppError.notFound("Room");
      if (!room.role) throw AppError.forbidden("Join the room first");
    }
  }

  /**
   * A message the caller may act on, with their membership. A message in a room they cannot see
   * is answered exactly like a missing one.
   */
  async messageOfMember(
    messageId: number,
    userId: number,
    roomId?: number,
  ): Promise<{ message: Message; membership: Membership }> {
    const message = await this.store.message(messageId);
    if (!message || (roomId !== undefined && message.roomId !== roomId)) throw AppError.notFound("Message");
    const { membership } = await this.memberRoom(message.roomId, userId).catch((err: unknown) => {
      throw (err as AppError).type === "NOT_FOUND" ? AppError.notFound("Message") : err;
    });
    return { message, membership };
  }

  /** For operators: a room by id (`12` or `#12`) or by exact name; a name several rooms share is refused. */
  async roomByRef(ref: string): Promise<RoomRecord> {
    const id = /^#?\d{1,10}$/.test(ref) ? Number(ref.replace("#", "")) : undefined;
    if (id !== undefined) {
      const record = await this.store.room(id);
      if (!record) throw AppError.notFound("Room");
      return record;
    }
    const named = await this.store.roomsNamed(ref, 10);
    if (named.length === 0) throw AppError.notFound("Room");
    if (named.length > 1) {
      throw AppError.conflict(`Rooms ${named.map((r) => `#${r.id}`).join(", ")} are called ${ref}: give the id`);
    }
    return named[0];
  }
}
