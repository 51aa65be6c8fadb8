/** auth's tables: credentials, sessions with their refresh-token families, and login throttling. */
import { createHash, randomUUID } from "node:crypto";
import type { Outbox, Trace } from "../infra/outbox.js";
import type { Sql } from "../infra/sql.js";
import { hashRefreshToken, newRefreshToken } from "./tokens.js";

/** auth's outbox: its events are written in the transaction of the change they describe. */
/**
 * Throttle counters, one row per key (hashed): failed logins per client address, per username from
 * one address and per username from anywhere, and registrations per client address.
 */
export const throttleKeys = {
  loginAddress: (address: string) => `login-address\n${address}`,
  loginPair: (username: string, address: string) => `login-pair\n${username.trim().toLowerCase()}\n${address}`,
  loginUser: (username: string) => `login-user\n${username.trim().toLowerCase()}`,
  registerAddress: (address: string) => `register-address\n${address}`,
};

export type RefreshOutcome =
  | { kind: "rotated"; sessionId: string; userId: number; refreshToken: string }
  | { kind: "reused"; sessionId: string; userId: number }
  | { kind: "invalid" };

interface SessionRow {
  id: string;
  user_id: number;
  created_at: number | string;
  expires_at: number | string;
  revoked_at: number | string | null;
}

export class AuthStore {
  constructor(
    private readonly db: Sql,
    private readonly outbox: Outbox,
    private readonly refreshTtlMs: number,
  ) {}

  async setPassword(userId: number, passwordHash: string): Promise<void> {
    await this.db("auth_credentials")
      .insert({ user_id: userId, password_hash: passwordHash, updated_at: Date.now() })
      .onConflict("user_id")
      .merge();
  }

  async passwordHash(userId: number): Promise<string | undefined> {
    const row = await this.db("auth_credentials").where({ user_id: userId }).first<{ password_hash: string }>();
    return row?.password_hash;
  }

  /** Opens a session (a login or a registration) and its first refresh token. */
  async openSession(
    userId: number,
    trace: Trace,
    now = Date.now(),
  ): Promise<{ sessionId: string; refreshToken: string }> {
    const sessionId = randomUUID();
    const refreshToken = newRefreshToken();
    await this.db.transaction(async (trx) => {
      await trx("auth_sessions").insert({
        id: sessionId,
        user_id: userId,
        created_at: now,
        expires_at: now + this.refreshTtlMs,
      });
      await trx("auth_refresh_tokens").insert({
        token_hash: hashRefreshToken(refreshToken),
        session_id: sessionId,
        created_at: now,
      });
      await this.outbox.write(trx, [{ type: "auth.login", requestId: trace.requestId, data: { userId, sessionId } }]);
    });
    return { sessionId, refreshToken };
  }

  /** True while the session is neither revoked nor expired. */
  async sessionActive(sessionId: string, now = Date.now()): Promise<boolean> {
    const row = await this.db<SessionRow>("auth_sessions").where({ id: sessionId }).first();
    return row !== undefined && row.revoked_at === null && Number(row.expires_at) > now;
  }

  /** Of the given sessions, those that are revoked, expired or unknown. */
  async inactiveSessions(sessionIds: string[], now = Date.now()): Promise<string[]> {
    if (sessionIds.length === 0) return [];
    const active = await this.db<SessionRow>("auth_sessions")
      .whereIn("id", sessionIds)
      .whereNull("revoked_at")
      .andWhere("expires_at", ">", now)
      .select("id");
    const alive = new Set(active.map((r) => r.id));
    return sessionIds.filter((id) => !alive.has(id));
  }

  /**
   * Rotation: the presented token is spent and a new one issued in the same session. A token that
   * was already spent means it leaked (or two clients raced): the whole session is revoked.
   */
  async rotate(refreshToken: string, trace: Trace, now = Date.now()): Promise<RefreshOutcome> {
    return this.db.transaction(async (trx) => {
      const tokenHash = hashRefreshToken(refreshToken);
      const token = await trx("auth_refresh_tokens")
        .where({ token_hash: tokenHash })
        .forUpdate()
        .first<{ session_id: string; used_at: number | null }>();
      if (!token) return { kind: "invalid" } as const;
      const session = await trx<SessionRow>("auth_sessions").where({ id: token.session_id }).forUpdate().first();
      if (!session || session.revoked_at !== null || Number(session.expires_at) <= now)
        return { kind: "invalid" } as const;
      if (token.used_at !== null) {
        await trx("auth_sessions").where({ id: session.id }).update({ revoked_at: now, revoked_reason: "reuse" });
        await this.outbox.write(trx, [
          {
            type: "auth.session_revoked",
            requestId: trace.requestId,
            data: { userId: session.user_id, sessionId: session.id, reason: "reuse" },
          },
        ]);
        return { kind: "reused", sessionId: session.id, userId: session.user_id } as const;
      }
      const next = newRefreshToken();
      await trx("auth_refresh_tokens").where({ token_hash: tokenHash }).update({ used_at: now });
      await trx("auth_refresh_tokens").insert({
        token_hash: hashRefreshToken(next),
        session_id: session.id,
        created_at: now,
      });
      await this.outbox.write(trx, [
        {
          type: "auth.refreshed",
          requestId: trace.requestId,
          data: { userId: session.user_id, sessionId: session.id },
        },
      ]);
      return { kind: "rotated", sessionId: session.id, userId: session.user_id, refreshToken: next } as const;
    });
  }

  /** Logout: ends the session; returns its owner if it was active. */
  async revokeSession(sessionId: string, trace: Trace, now = Date.now()): Promise<number | undefined> {
    return this.db.transaction(async (trx) => {
      const row = await trx<SessionRow>("auth_sessions").where({ id: sessionId }).forUpdate().first();
      if (!row || row.revoked_at !== null) return undefined;
      await trx("auth_sessions").where({ id: sessionId }).update({ revoked_at: now, revoked_reason: "logout" });
      await this.outbox.write(trx, [
        { type: "auth.logout", requestId: trace.requestId, data: { userId: row.user_id, sessionId } },
      ]);
      return row.user_id;
    });
  }

  /** The user's sessions that are neither revoked nor expired, newest first (at most `limit`). */
  async activeSessions(
    userId: number,
    limit: number,
    now = Date.now(),
  ): Promise<{ id: string; createdAt: string; expiresAt: string }[]> {
    const rows = await this.db<SessionRow>("auth_sessions")
      .where({ user_id: userId })
      .whereNull("revoked_at")
      .andWhere("expires_at", ">", now)
      .orderBy("created_at", "desc")
      .limit(limit)
      .select("id", "created_at", "expires_at");
    return rows.map((r) => ({
      id: r.id,
      createdAt: new Date(Number(r.created_at)).toISOString(),
      expiresAt: new Date(Number(r.expires_at)).toISOString(),
    }));
  }

  /** Ends every active session of the user in one statement (audited when there was one); returns how many. */
  async revokeUserSessions(userId: number, trace: Trace, now = Date.now()): Promise<number> {
    return this.db.transaction(async (trx) => {
      const sessions = await trx("auth_sessions")
        .where({ user_id: userId })
        .whereNull("revoked_at")
        .andWhere("expires_at", ">", now)
        .update({ revoked_at: now, revoked_reason: "operator" });
      if (sessions > 0) {
        await this.outbox.write(trx, [
          { type: "auth.sessions_revoked", requestId: trace.requestId, data: { userId, sessions, by: "operator" } },
        ]);
      }
      return sessions;
    });
  }

  /** Counts in the current window of each key (absent keys: 0), and the seconds until that window ends. */
  async throttleCounts(
    keys: string[],
    windowMs: number,
    now = Date.now(),
  ): Promise<Map<string, { count: number; retryAfter: number }>> {
    const rows = await this.db("auth_login_throttle")
      .whereIn("key", keys.map(throttleKey))
      .select<{ key: string; failures: number; window_started_at: number | string }[]>(
        "key",
        "failures",
        "window_started_at",
      );
    const byHash = new Map(rows.map((r) => [r.key, r]));
    const counts = new Map<string, { count: number; retryAfter: number }>();
    for (const key of keys) {
      const row = byHash.get(throttleKey(key));
      const until = row ? Number(row.window_started_at) + windowMs : 0;
      counts.set(
        key,
        until > now
          ? { count: row!.failures, retryAfter: Math.ceil((until - now) / 1000) }
          : { count: 0, retryAfter: 0 },
      );
    }
    return counts;
  }

  /**
   * Counts one more in the current window of each key, starting a new window when the old one is
   * over — in one atomic upsert per key, so concurrent failures on any number of auth instances all
   * count (a read-then-write transaction deadlocks on MariaDB's gap locks). Both assignments read
   * the old window: MySQL applies them left to right, so `failures` must come first.
   */
  async count(keys: string[], windowMs: number, now = Date.now()): Promise<void> {
    const expired = "auth_login_throttle.window_started_at + ? <= ?";
    for (const key of keys) {
      await this.db("auth_login_throttle")
        .insert({ key: throttleKey(key), failures: 1, window_started_at: now })
        .onConflict("key")
        .merge({
          failures: this.db.raw(`case when ${expired} then 1 else auth_login_throttle.failures + 1 end`, [
            windowMs,
            now,
          ]),
          window_started_at: this.db.raw(`case when ${expired} then ? else auth_login_throttle.window_started_at end`, [
            windowMs,
            now,
            now,
          ]),
        });
    }
  }

  async clearCounts(keys: string[]): Promise<void> {
    await this.db("auth_login_throttle").whereIn("key", keys.map(throttleKey)).delete();
  }
}

/** Stored hashed: the table never holds usernames as typed (a password typed there) or addresses. */
function throttleKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}
