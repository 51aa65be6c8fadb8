/**
 * The internal API: every action one service calls on another over the bus, by name, with its
 * params and result (InternalActions), called through `call()` (src/infra/calls.ts) so that a
 * renamed action or field breaks the build, not production.
 */
import type { UserRecord } from "./accounts.js";
import type { AppEvent, Message, MemberRole, Principal, Role, RoomKind, User, UserStatus } from "./objects.js";

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
