/**
 * Refusals in the audit log are sampled, so a flood of bad tokens, unknown usernames or
 * unauthenticated requests cannot fill the store: per kind, the first `perMinute` in each minute
 * are recorded one by one (with their request ids); the rest are only counted, and one
 * `audit.suppressed` event per kind — `{ type, kind, suppressed, from, to }` — records how many
 * when the minute is over. AUDIT_REFUSALS_PER_MINUTE sets `perMinute` (per node).
 */
import type { NewEvent } from "../infra/outbox.js";

interface Window {
  type: string;
  startedAt: number;
  recorded: number;
  suppressed: number;
}

export class RefusalSampler {
  private readonly windows = new Map<string, Window>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly perMinute: number,
    private readonly emit: (events: NewEvent[]) => void,
    private readonly windowMs = 60_000,
  ) {}

  /** True when this refusal is recorded on its own; false when it is only counted. */
  admit(type: string, kind: string, now = Date.now()): boolean {
    const key = `${type}\n${kind}`;
    let w = this.windows.get(key);
    if (w && now - w.startedAt >= this.windowMs) {
      this.close(key, w, now);
      w = undefined;
    }
    if (!w) {
      w = { type, startedAt: now, recorded: 0, suppressed: 0 };
      this.windows.set(key, w);
    }
    if (w.recorded < this.perMinute) {
      w.recorded += 1;
      return true;
    }
    w.suppressed += 1;
    return false;
  }

  start(): void {
    this.timer = setInterval(() => this.flush(), Math.min(this.windowMs, 10_000));
    this.timer.unref();
  }

  /** Closes the windows that are over (all of them with `all`), emitting their summaries. */
  flush(all = false, now = Date.now()): void {
    for (const [key, w] of this.windows) if (all || now - w.startedAt >= this.windowMs) this.close(key, w, now);
  }

  stop(): void {
    clearInterval(this.timer);
    this.flush(true);
  }

  private close(key: string, w: Window, now: number): void {
    this.windows.delete(key);
    if (w.suppressed === 0) return;
    const kind = key.slice(w.type.length + 1);
    this.emit([
      {
        type: "audit.suppressed",
        requestId: null,
        data: {
          type: w.type,
          kind,
          suppressed: w.suppressed,
          from: new Date(w.startedAt).toISOString(),
          to: new Date(now).toISOString(),
        },
      },
    ]);
  }
}
