/**
 * The gateway's cache of resolved access tokens, so a busy client costs one `auth.resolveToken`
 * call per token every few seconds instead of one per request. Entries live at most `ttlMs`
 * (bounded further by the token's own expiry) and a revoked session's entries are dropped at once
 * when its `auth.session.revoked` event arrives; the short TTL bounds staleness if an event is lost.
 */
import type { Principal } from "../contracts/objects.js";

interface Entry {
  principal: Principal;
  until: number;
}

export class TokenCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 50_000,
  ) {}

  get(token: string, now = Date.now()): Principal | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (entry.until <= now) {
      this.entries.delete(token);
      return undefined;
    }
    return entry.principal;
  }

  set(token: string, principal: Principal, expiresAtMs: number, now = Date.now()): void {
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: drop the oldest.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(token, {
      principal,
      until: Math.min(now + this.ttlMs, expiresAtMs),
    });
  }

  dropSession(sessionId: string): void {
    for (const [token, entry] of this.entries) {
      if (entry.principal.sessionId === sessionId) this.entries.delete(token);
    }
  }

  dropUser(userId: number): void {
    for (const [token, entry] of this.entries) {
      if (entry.principal.id === userId) this.entries.delete(token);
    }
  }
}
