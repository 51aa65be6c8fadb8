/** Params and results of the actions other services call over the bus (internal API). */
import type { MemberRole, Principal, Role, RoomKind, User, UserStatus } from "./objects.js";

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
