/**
 * Bus events: name → payload, typed once for emitters and listeners alike.
 * All are broadcast, fire-and-forget: they reach every node that listens (the gateways fan out to
 * their own sockets). What must not be missed travels as a domain event (domain-events.ts) instead.
 */
import type { Context } from "moleculer";
import type { Message, Notification, Room, UserStatus } from "./objects.js";

export type MemberAction = "joined" | "left" | "invited" | "kicked";

export interface BusEvents {
  /** A session ended (logout, refresh-token reuse): every gateway drops its tokens and sockets. */
  "auth.session.revoked": {
    sessionId: string;
    userId: number;
    reason: "logout" | "reuse";
  };
  /** Every session of a user ended (the operator's `sessions revoke`): gateways drop them all. */
  "auth.user.sessions_revoked": { userId: number; reason: "operator" };

  // Broadcast by chat after commit; every gateway emits them to its own sockets.
  /**
   * The messages one transaction stored (chat's group commit), in seq order per room — one bus
   * message per batch, not per message. `committedAt`: when chat saw the commit (epoch ms), for the
   * fan-out latency metric.
   */
  "chat.messages.created": { messages: Message[]; committedAt?: number };
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
  /** A user's unread state in a room changed (read marker moved, new mention): all their tabs hear it. */
  "unread.changed": { roomId: number; userId: number; lastReadSeq: number; unread: number; mentions: number };
  /** notify created a notification for a user: all their tabs hear it. */
  "notify.created": { userId: number; notification: Notification };
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

/** A service's listeners of bus events, by name: each handler's `ctx.params` is typed from BusEvents. */
export type BusListeners<This> = {
  [N in BusEventName]?: (this: This, ctx: Context<BusEvents[N]>) => void | Promise<void>;
};

/** Declares listeners (`events: onBus<Vars>({ "chat.messages.created"(ctx) { … } })`): a misspelt event or field fails to compile. */
export const onBus = <This>(listeners: BusListeners<This>): BusListeners<This> => listeners;

interface Emitter {
  broadcast(name: string, payload: unknown): Promise<void> | void;
}

export function broadcastEvent<N extends BusEventName>(via: Emitter, name: N, payload: BusEvents[N]): Promise<void> {
  return Promise.resolve(via.broadcast(name, payload));
}
