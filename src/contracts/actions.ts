/**
 * The internal API: every action called by name in code — one service on another, the gateway's
 * socket table, the operator's commands — with its params and result (InternalActions). Callers go
 * through `call()` (src/infra/calls.ts), handlers take `ActionContext<N>` and answer `ResultOf<N>`,
 * and the socket table may only name an action whose params and result are its event's payload and
 * ack: a renamed action or field breaks the build, not production.
 */
import type { UserRecord } from "./accounts.js";
import type { AppEvent, Message, MemberRole, Principal, Role, RoomKind, User, UserStatus } from "./objects.js";
import type { ErrorBody } from "./errors.js";
import type { ClientToServerEvents } from "./socket.js";

/** What a client sends with a socket event, and what its ack carries when it succeeds. */
export type SocketPayload<E extends keyof ClientToServerEvents> = Parameters<ClientToServerEvents[E]>[0];
export type SocketResult<E extends keyof ClientToServerEvents> = Parameters<
  NonNullable<Parameters<ClientToServerEvents[E]>[1]>
>[0] extends infer A
  ? A extends { ok: true; data: infer D }
    ? D
    : never
  : never;

/** `auth.resolveToken` */
export interface ResolveTokenParams {
  token: string;
}
export interface ResolvedToken {
  principal: Principal;
  /** When the access token expires (epoch ms): nobody may cache it longer. */
  expiresAt: number;
}

/** `users.create` */
export interface CreateUserParams {
  username: string;
  displayName?: string;
}

/** `log.stats`: events of a type in an hour. */
export interface HourlyCount {
  hour: string;
  type: string;
  count: number;
}

// ---- operator actions (roles: ["operator"]; the REPL's commands in src/operator/) ----

/** `users.online` */
export interface OnlineListing {
  /** One row per (gateway node, user), ordered by node then username. */
  users: { nodeId: string; userId: number; username: string; sockets: number; since: string }[];
  /** Open sockets in all. */
  connections: number;
  /** More rows than `limit`. */
  truncated: boolean;
}

/** `users.inspect` */
export interface UserInspection {
  user: User & { roles: Role[]; chosenStatus: UserStatus };
  connections: { nodeId: string; sockets: number }[];
}

/** `chat.roomStats`: the busiest rooms by messages. */
export interface RoomStat {
  id: number;
  name: string;
  kind: RoomKind;
  members: number;
  messages: number;
  /** The newest message's time, or the room's creation. */
  lastActivity: string;
}

/** `chat.roomsOfUser` */
export interface UserRoom {
  id: number;
  name: string;
  kind: RoomKind;
  role: MemberRole;
}

/** `<producer>.outboxStatus`: durable events not yet acknowledged by each consumer. */
export interface OutboxStatus {
  producer: string;
  consumers: { consumer: string; pending: number; oldestAgeMs: number }[];
  deadLetters: number;
}

// ---- the map -------------------------------------------------------------------------------------

interface Action<P, R> {
  params: P;
  result: R;
}

/** Every action called across services (and by the operator's commands), name → params and result. */
export interface InternalActions {
  "auth.resolveToken": Action<ResolveTokenParams, ResolvedToken>;
  "auth.inactiveSessions": Action<{ sessionIds: string[] }, { inactive: string[] }>;
  "auth.sessionsOf": Action<{ userId: number; limit?: number }, { sessions: SessionInfo[] }>;
  "auth.revokeUserSessions": Action<{ userId: number }, { revoked: number }>;

  "users.create": Action<CreateUserParams, UserRecord>;
  "users.remove": Action<{ id: number }, void>;
  "users.getRecord": Action<{ id: number }, UserRecord | null>;
  "users.findByUsername": Action<{ username: string }, UserRecord | null>;
  "users.findManyByUsername": Action<{ usernames: string[] }, { id: number; username: string }[]>;
  "users.getMany": Action<{ ids: number[] }, User[]>;
  /** From the gateway, as the socket's user (`meta.user`). */
  "users.connected": Action<ConnectionParams, void>;
  "users.disconnected": Action<ConnectionParams, void>;
  "users.setAdmin": Action<
    { id?: number; username?: string; admin: boolean },
    { id: number; username: string; admin: boolean; changed: boolean }
  >;
  "users.online": Action<{ limit?: number }, OnlineListing>;
  "users.inspect": Action<{ username: string }, UserInspection>;

  // Served to clients over the socket (and REST, whose path adds `roomId` to a message's calls).
  "chat.send": Action<SocketPayload<"message:send">, SocketResult<"message:send">>;
  "chat.edit": Action<SocketPayload<"message:edit"> & { roomId?: number }, SocketResult<"message:edit">>;
  "chat.delete": Action<SocketPayload<"message:delete"> & { roomId?: number }, SocketResult<"message:delete">>;
  "chat.react": Action<SocketPayload<"reaction:toggle"> & { roomId?: number }, SocketResult<"reaction:toggle">>;
  "chat.markRead": Action<SocketPayload<"room:read">, SocketResult<"room:read">>;
  "chat.sync": Action<SocketPayload<"sync">, SocketResult<"sync">>;

  /** From gateways: the sends of one tick, each answered alone (as `chat.send` would answer it). */
  "chat.sendBatch": Action<
    { sends: { userId: number; requestId: string | null; payload: object }[] },
    { results: ({ ok: true; message: Message; created: boolean } | { ok: false; error: ErrorBody })[] }
  >;

  "chat.roomIdsOf": Action<{ userId: number }, number[]>;
  "chat.membersAmong": Action<{ roomId: number; userIds: number[] }, number[]>;
  "chat.announceUnread": Action<{ roomId: number; userId: number }, void>;
  "chat.roomStats": Action<{ top?: number }, { rooms: RoomStat[] }>;
  "chat.roomsOfUser": Action<{ userId: number }, { rooms: UserRoom[] }>;
  "chat.removeMember": Action<{ room: string; userId: number }, { roomId: number; removed: boolean }>;
  "chat.announce": Action<{ room: string; body: string }, Message>;

  /** Mention counts per room above each read marker (room id → count). */
  "notify.mentionCounts": Action<{ userId: number; markers: Record<number, number> }, Record<number, number>>;

  "log.query": Action<
    { type?: string; userId?: number; roomId?: number; from?: string; to?: string; before?: string; limit?: number },
    { events: AppEvent[]; nextBefore: string | null }
  >;
  "log.stats": Action<{ from?: string; to?: string }, { from: string; to: string; counts: HourlyCount[] }>;
}

export type InternalActionName = keyof InternalActions;
export type ParamsOf<N extends InternalActionName> = InternalActions[N]["params"];
export type ResultOf<N extends InternalActionName> = InternalActions[N]["result"];

/** The actions that can serve socket event E: they take its payload and answer its ack's data. */
export type ActionServing<E extends keyof ClientToServerEvents> = {
  [N in InternalActionName]: SocketPayload<E> extends ParamsOf<N>
    ? ResultOf<N> extends SocketResult<E>
      ? N
      : never
    : never;
}[InternalActionName];

/** `users.connected` / `users.disconnected` */
export interface ConnectionParams {
  socketId: string;
  nodeId: string;
}

/** `auth.sessionsOf` */
export interface SessionInfo {
  id: string;
  createdAt: string;
  expiresAt: string;
}
