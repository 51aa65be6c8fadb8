/**
 * Domain events: what happened, written by the owning service into its outbox in the same
 * transaction as the change and delivered durably (src/infra/outbox.ts) to the consumers that must
 * not miss them. Typed once here for producers and consumers. They never carry passwords, hashes
 * or tokens; message bodies stay in chat (events carry ids and the mentioned usernames only).
 */
import type { MemberAction } from "./events.js";
import type { RoomKind } from "./objects.js";

interface Envelope<T extends string, D> {
  /** Unique; consumers deduplicate on it. */
  id: string;
  type: T;
  ts: string;
  /** The producing service and node. */
  source: string;
  nodeId: string;
  requestId: string | null;
  data: D;
}

export type DomainEvent =
  | Envelope<"user.registered", { userId: number; username: string; admin: boolean }>
  | Envelope<"user.updated", { userId: number; fields: string[] }>
  // Admin granted or revoked (src/users/admins.ts); `by`: "NOCHAT_ADMINS" at start, or the operator.
  | Envelope<"user.admin_changed", { userId: number; username: string; admin: boolean; by: string }>
  | Envelope<"auth.login", { userId: number; sessionId: string }>
  // `username` only when such an account exists (a password typed into the username field must not
  // land in the log); `usernameTag` (a keyed hash, src/auth/audit.ts) correlates attempts on one name.
  | Envelope<
      "auth.login_failed",
      { username: string | null; usernameTag: string; reason: "unknown_user" | "bad_password"; userId: number | null }
    >
  | Envelope<"auth.throttled", { username: string | null; usernameTag: string; retryAfter: number }>
  | Envelope<"auth.refreshed", { userId: number; sessionId: string }>
  | Envelope<"auth.logout", { userId: number; sessionId: string }>
  | Envelope<"auth.session_revoked", { userId: number; sessionId: string; reason: "reuse" }>
  // The operator ended every session of a user (REPL `sessions revoke`).
  | Envelope<"auth.sessions_revoked", { userId: number; sessions: number; by: "operator" }>
  | Envelope<"room.created", { roomId: number; userId: number; kind: RoomKind; name: string; memberIds: number[] }>
  | Envelope<"room.updated", { roomId: number; userId: number; fields: string[] }>
  | Envelope<
      "room.member_changed",
      { roomId: number; userId: number; byUserId: number; action: MemberAction; roomKind: RoomKind }
    >
  | Envelope<
      "message.created",
      {
        messageId: number;
        roomId: number;
        seq: number;
        userId: number;
        roomKind: RoomKind;
        /** Direct rooms: the other member. */
        peerId: number | null;
        /** `@name` tokens in the body, lower-cased, unresolved. */
        mentions: string[];
        replyTo: number | null;
      }
    >
  | Envelope<"message.edited", { messageId: number; roomId: number; seq: number; userId: number }>
  | Envelope<"message.deleted", { messageId: number; roomId: number; seq: number; userId: number; authorId: number }>
  | Envelope<"reaction.toggled", { messageId: number; roomId: number; userId: number; emoji: string }>
  | Envelope<"auth.token_refused", { reason: string; userId: number | null }>
  // Refusals past the sampling rate (src/log/sampler.ts): how many of a type and kind were not recorded.
  | Envelope<"audit.suppressed", { type: string; kind: string; suppressed: number; from: string; to: string }>
  | Envelope<
      "http.access",
      { method: string; route: string; status: number; durationMs: number; userId: number | null }
    >
  | Envelope<"socket.connected", { userId: number; socketId: string }>
  | Envelope<"socket.disconnected", { userId: number; socketId: string; reason: string }>
  | Envelope<"cluster.node_connected", { node: string; reconnected: boolean }>
  | Envelope<"cluster.node_disconnected", { node: string; unexpected: boolean }>
  // The durable path itself (src/infra/outbox.ts): an event a consumer kept refusing was set aside,
  // and an admin put it back or dropped it (`userId`: the admin).
  | Envelope<"outbox.dead_lettered", DeadLetterRef & { attempts: number; error: string }>
  | Envelope<"outbox.dead_letter_retried", DeadLetterRef & { userId: number | null }>
  | Envelope<"outbox.dead_letter_dropped", DeadLetterRef & { userId: number | null }>;

/** Which dead letter an `outbox.*` event is about. */
export interface DeadLetterRef {
  deadLetterId: string;
  /** The service whose outbox (and database) holds it. */
  producer: string;
  consumer: string;
  eventId: string;
  eventType: string;
}

export type DomainEventType = DomainEvent["type"];

/** Consumers that must see every event of a type; each has an `ingest({ events })` action. */
export type Consumer = "notify" | "log";

/** What notify turns into notifications (src/notify/rules.ts); a new room's members come as `room.member_changed`. */
const NOTIFY_TYPES = new Set<DomainEventType>(["message.created", "room.member_changed"]);

export function consumersOf(type: DomainEventType): Consumer[] {
  return NOTIFY_TYPES.has(type) ? ["notify", "log"] : ["log"];
}

/** `@alice`, `@bob.smith` → ["alice", "bob.smith"]; trailing punctuation is not part of a name. */
export function mentionedUsernames(body: string): string[] {
  const names = new Set<string>();
  for (const match of body.matchAll(/(?:^|[^a-z0-9_.-])@([a-z0-9_.-]{3,32})/gi)) {
    names.add(match[1].replace(/[.-]+$/, "").toLowerCase());
  }
  return [...names].filter((n) => n.length >= 3);
}
