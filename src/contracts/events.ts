/**
 * Bus events: name → payload, typed once for emitters and listeners alike.
 * `broadcast` ones reach every node (gateways fan out to their own sockets); the rest are
 * balanced to one instance of each listening service.
 */
import type { Message, Role, Room, UserStatus } from "./objects.js";

export type MemberAction = "joined" | "left" | "invited" | "kicked";

export interface BusEvents {
  /** A new account. */
  "users.created": { userId: number; username: string; roles: Role[] };
  /** A session ended (logout, refresh-token reuse): every gateway drops its tokens and sockets. */
  "auth.session.revoked": {
    sessionId: string;
    userId: number;
    reason: "logout" | "reuse";
  };

  // Broadcast by chat after commit; every gateway emits them to its own sockets.
  "chat.message.created": { message: Message };
  "chat.message.updated": { message: Message };
  "chat.message.deleted": {
    id: number;
    roomId: number;
    seq: number;
    userId: number;
  };
  /** `room` is the caller-independent view (no role or unread). */
  "chat.room.updated": { room: Room };
  "chat.member.changed": {
    roomId: number;
    userId: number;
    action: MemberAction;
    byUserId: number;
  };
  "chat.read": {
    roomId: number;
    userId: number;
    lastReadSeq: number;
    unread: number;
  };
  /** From the gateway the typing user is connected to, to every gateway. */
  "chat.typing": { roomId: number; userId: number; typing: boolean };
  /** users' presence of one user changed; `roomIds` are the rooms whose members should hear it. */
  "users.presence.changed": {
    userId: number;
    status: UserStatus;
    lastSeenAt: string | null;
    roomIds: number[];
  };
}

export type BusEventName = keyof BusEvents;

interface Emitter {
  emit(name: string, payload: unknown): Promise<void> | void;
  broadcast(name: string, payload: unknown): Promise<void> | void;
}

export function emitEvent<N extends BusEventName>(via: Emitter, name: N, payload: BusEvents[N]): Promise<void> {
  return Promise.resolve(via.emit(name, payload));
}

export function broadcastEvent<N extends BusEventName>(via: Emitter, name: N, payload: BusEvents[N]): Promise<void> {
  return Promise.resolve(via.broadcast(name, payload));
}
