/** The public objects of docs/API.md, typed once and used by every service, the gateway and tests. */

export type UserStatus = "online" | "away" | "offline";
export type Role = "admin";
/**
 * What a caller may hold: an account's roles, or "operator" — the principal of the operator's REPL
 * (src/operator/), which no token can carry: it passes every role-guarded action and no action that
 * acts as a user.
 */
export type PrincipalRole = Role | "operator";

export interface User {
  id: number;
  username: string;
  displayName: string;
  status: UserStatus;
  lastSeenAt: string | null;
  createdAt: string;
  /** Only on `/api/users/me`, and only for admins. */
  roles?: Role[];
}

export type RoomKind = "public" | "private" | "direct";
export type MemberRole = "owner" | "admin" | "member";

/**
 * The `userId` of system messages (the operator's announcements): no account has it. Clients show
 * such a message as coming from the server, not from a user.
 */
export const SYSTEM_USER_ID = 0;

export interface Message {
  id: number;
  roomId: number;
  seq: number;
  userId: number;
  body: string;
  clientMsgId: string;
  replyTo: number | null;
  createdAt: string;
  editedAt: string | null;
  deleted: boolean;
  reactions: Record<string, number[]>;
}

export interface Room {
  id: number;
  name: string;
  kind: RoomKind;
  topic: string;
  createdBy: number;
  createdAt: string;
  memberCount: number;
  lastSeq: number;
  role?: MemberRole;
  unread?: number;
  mentions?: number;
  lastReadSeq?: number;
  lastMessage?: Message;
}

export type NotificationKind = "mention" | "direct" | "invite";

export interface Notification {
  id: number;
  kind: NotificationKind;
  roomId: number;
  messageId: number | null;
  fromUserId: number;
  createdAt: string;
  seen: boolean;
}

/** An audit-log entry as the admin API returns it. */
export interface AppEvent {
  id: string;
  ts: string;
  type: string;
  nodeId: string;
  requestId: string | null;
  userId: number | null;
  roomId: number | null;
  data: Record<string, unknown>;
}

/** Who is calling: put in `ctx.meta.user` by the gateway (REST and socket) and checked everywhere. */
export interface Principal {
  id: number;
  username: string;
  roles: PrincipalRole[];
  sessionId: string;
}

export interface AuthResult {
  user: User;
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

export type TokenPair = Omit<AuthResult, "user">;
