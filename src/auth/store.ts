/** auth's tables: credentials, sessions with their refresh-token families, and login throttling. */
import { createHash, randomUUID } from "node:crypto";
import type { Sql } from "../infra/sql.js";
import { hashRefreshToken, newRefreshToken } from "./tokens.js";

export const THROTTLE = { maxFailures: 5, windowMs: 15 * 60 * 1000 } as const;

export type RefreshOutcome =
  | { kind: "rotated"; sessionId: string; userId: number; refreshToken: string }
  | { kind: "reused"; sessionId: string; userId: number }
  | { kind: "invalid" };

interface SessionRow {
  id: string;
  user_id: number;
  expires_at: number | string;
  revoked_at: number | string | null;
}

export class AuthStore {
  constructor(
    private readonly db: Sql,
    private readonly refreshTtlMs: number,
  ) {}

  async setPassword(userId: number, passwordHash: string): Promise<void> {
    await this.db("auth_credentials")
      .insert({
        user_id: userId,
        password_hash: passwordHash,
        updated_at: Date.now(),
      })
      .onConflict("user_id")
      .merge();
  }

  async passwordHash(userId: number): Promise<string | undefined> {
    const row = await this.db("auth_credentials").where({ user_id: userId }).first<{ password_hash: string }>();
    return row?.password_hash;
  }

  /** Opens a session and its first refresh token. */
  async openSession(userId: number, now = Date.now()): Promise<{ sessionId: string; refreshToken: string }> {
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
  async rotate(refreshToken: string, now = Date.now()): Promise<RefreshOutcome> {
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
        return {
          kind: "reused",
          sessionId: session.id,
          userId: session.user_id,
        } as const;
      }
      const next = newRefreshToken();
      await trx("auth_refresh_tokens").where({ token_hash: tokenHash }).update({ used_at: now });
      await trx("auth_refresh_tokens").insert({
        token_hash: hashRefreshToken(next),
        session_id: session.id,
        created_at: now,
      });
      return {
        kind: "rotated",
        sessionId: session.id,
        userId: session.user_id,
        refreshToken: next,
      } as const;
    });
  }

  /** Returns the owner of the session if it was active. */
  async revokeSession(sessionId: string, reason: string, now = Date.now()): Promise<number | undefined> {
    const row = await this.db<SessionRow>("auth_sessions").where({ id: sessionId }).first();
    if (!row || row.revoked_at !== null) return undefined;
    await this.db("auth_sessions").where({ id: sessionId }).update({ revoked_at: now, revoked_reason: reason });
    return row.user_id;
  }

  /** Seconds until this username may try again, or 0. */
  async throttledFor(username: string, now = Date.now()): Promise<number> {
    const row = await this.db("auth_login_throttle")
      .where({ key: throttleKey(username) })
      .first<{ failures: number; window_started_at: number | string }>();
    if (!row || row.failures < THROTTLE.maxFailures) return 0;
    const until = Number(row.window_started_at) + THROTTLE.windowMs;
    return until > now ? Math.ceil((until - now) / 1000) : 0;
  }

  /**
   * Counts a failure in the current 15-minute window, starting a new window when the old one is
   * over — in one atomic upsert, so concurrent failures on any number of auth instances all count
   * (a read-then-write transaction deadlocks on MariaDB's gap locks). Both assignments read the
   * old window: MySQL applies them left to right, so `failures` must come first.
   */
  async recordFailure(username: string, now = Date.now()): Promise<void> {
    const expired = "auth_login_throttle.window_started_at + ? <= ?";
    await this.db("auth_login_throttle")
      .insert({ key: throttleKey(username), failures: 1, window_started_at: now })
      .onConflict("key")
      .merge({
        failures: this.db.raw(`case when ${expired} then 1 else auth_login_throttle.failures + 1 end`, [
          THROTTLE.windowMs,
          now,
        ]),
        window_started_at: this.db.raw(`case when ${expired} then ? else auth_login_throttle.window_started_at end`, [
          THROTTLE.windowMs,
          now,
          now,
        ]),
      });
  }

  async clearFailures(username: string): Promise<void> {
    await this.db("auth_login_throttle")
      .where({ key: throttleKey(username) })
      .delete();
  }
}

/** Throttling is per username as typed (case-insensitive), whether or not it exists. */
function throttleKey(username: string): string {
  return createHash("sha256").update(username.trim().toLowerCase()).digest("hex");
}
