/**
 * Per-user send limit at the gateway: a token bucket (default burst 10, refilled at 10/s) and a
 * one-minute window (default 100); SEND_BURST, SEND_PER_SECOND, SEND_PER_MINUTE. Kept per gateway node: a user spread over several nodes gets each node's share.
 */
export interface RateLimitOptions {
  burst: number;
  perSecond: number;
  perMinute: number;
}

interface UserState {
  tokens: number;
  refilledAt: number;
  minuteStart: number;
  minuteCount: number;
}

export class SendRateLimiter {
  private readonly users = new Map<number, UserState>();

  constructor(
    private readonly opts: RateLimitOptions = {
      burst: 10,
      perSecond: 10,
      perMinute: 100,
    },
  ) {}

  /** 0 when the send may go; otherwise the seconds to wait. */
  take(userId: number, now = Date.now()): number {
    let s = this.users.get(userId);
    if (!s) {
      s = {
        tokens: this.opts.burst,
        refilledAt: now,
        minuteStart: now,
        minuteCount: 0,
      };
      this.users.set(userId, s);
    }
    s.tokens = Math.min(this.opts.burst, s.tokens + ((now - s.refilledAt) / 1000) * this.opts.perSecond);
    s.refilledAt = now;
    if (now - s.minuteStart >= 60_000) {
      s.minuteStart = now;
      s.minuteCount = 0;
    }
    if (s.minuteCount >= this.opts.perMinute) return Math.ceil((s.minuteStart + 60_000 - now) / 1000);
    if (s.tokens < 1) return Math.ceil((1 - s.tokens) / this.opts.perSecond);
    s.tokens -= 1;
    s.minuteCount += 1;
    return 0;
  }

  /** Forget users idle for a minute, so the map does not grow forever. */
  sweep(now = Date.now()): void {
    for (const [userId, s] of this.users) if (now - s.refilledAt > 60_000) this.users.delete(userId);
  }
}

/**
 * Token buckets by key (per socket and event): `burst` tokens, refilled at `perSecond`. Each
 * socket keeps its own instance, dropped with the socket, so nothing grows with traffic.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /** 0 when the event may go; otherwise the seconds to wait. */
  take(key: string, rate: { perSecond: number; burst: number }, now = Date.now()): number {
    const b = this.buckets.get(key) ?? { tokens: rate.burst, at: now };
    b.tokens = Math.min(rate.burst, b.tokens + ((now - b.at) / 1000) * rate.perSecond);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens < 1) return (1 - b.tokens) / rate.perSecond;
    b.tokens -= 1;
    return 0;
  }
}
