/**
 * The real-time channel of docs/API.md as socket.io event maps, used by the gateway's socket
 * mixin (server side) and by tests and the browser client (client side).
 */
import type { ErrorBody } from "./errors.js";
import type { Message, Notification, Room, UserStatus } from "./objects.js";

export type Ack<T> = { ok: true; data: T } | { ok: false; error: ErrorBody };
type Call<P, R> = (payload: P, ack: (res: Ack<R>) => void) => void;

export interface ClientToServerEvents {
  "message:send": Call<
    {
      roomId: number;
      body: string;
      clientMsgId: string;
      replyTo?: number | null;
    },
    Message
  >;
  "message:edit": Call<{ messageId: number; body: string }, Message>;
  "message:delete": Call<{ messageId: number }, MessageRef>;
  "reaction:toggle": Call<{ messageId: number; emoji: string }, Message>;
  "room:read": Call<{ roomId: number; seq: number }, UnreadState>;
  sync: Call<{ rooms: Record<string, number> }, { rooms: Record<string, { messages: Message[]; hasMore: boolean }> }>;
  typing: (payload: { roomId: number; typing: boolean }, ack?: (res: Ack<null>) => void) => void;
}

/** Which message: what a delete answers and announces. */
export type MessageRef = Pick<Message, "id" | "roomId" | "seq">;

export interface UnreadState {
  roomId: number;
  unread: number;
  mentions: number;
  lastReadSeq: number;
}

export interface ServerToClientEvents {
  "message:new": (message: Message) => void;
  "message:updated": (message: Message) => void;
  "message:deleted": (ref: MessageRef) => void;
  typing: (state: { roomId: number; userId: number; typing: boolean }) => void;
  presence: (state: { userId: number; status: UserStatus; lastSeenAt: string | null }) => void;
  "room:updated": (room: Room) => void;
  "room:member": (change: { roomId: number; userId: number; action: "joined" | "left" | "invited" | "kicked" }) => void;
  unread: (state: UnreadState) => void;
  notification: (notification: Notification) => void;
  "session:revoked": (payload: Record<string, never>) => void;
}

/** socket.io rooms the gateway uses: one per user (all their tabs), per session, per chat room. */
export const socketRooms = {
  user: (userId: number) => `user:${userId}`,
  session: (sessionId: string) => `session:${sessionId}`,
  room: (roomId: number) => `room:${roomId}`,
};
