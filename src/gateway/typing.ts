/**
 * Typing indicators, kept by the gateway the typist is connected to: a `typing: true` is passed on
 * at most every 3 s while it is refreshed, and turns into `typing: false` by itself 6 s after the
 * last refresh (a closed tab never leaves a stuck indicator).
 */
export const TYPING_EXPIRES_MS = 6_000;
const REFRESH_MS = 3_000;

type Publish = (roomId: number, userId: number, typing: boolean) => void;

interface Entry {
  timer: NodeJS.Timeout;
  sentAt: number;
}

export class TypingTracker {
  private readonly active = new Map<string, Entry>();

  constructor(private readonly publish: Publish) {}

  set(roomId: number, userId: number, typing: boolean, now = Date.now()): void {
    const key = `${roomId}:${userId}`;
    const entry = this.active.get(key);
    if (!typing) {
      if (!entry) return;
      clearTimeout(entry.timer);
      this.active.delete(key);
      this.publish(roomId, userId, false);
      return;
    }
    if (entry) clearTimeout(entry.timer);
    const timer = setTimeout(() => this.set(roomId, userId, false), TYPING_EXPIRES_MS);
    timer.unref();
    if (!entry || now - entry.sentAt >= REFRESH_MS) {
      this.active.set(key, { timer, sentAt: now });
      this.publish(roomId, userId, true);
    } else {
      this.active.set(key, { timer, sentAt: entry.sentAt });
    }
  }

  /** A user's last socket on this node is gone: their indicators stop. */
  clearUser(userId: number): void {
    for (const key of [...this.active.keys()]) {
      const [roomId, uid] = key.split(":").map(Number);
      if (uid === userId) this.set(roomId, userId, false);
    }
  }

  stop(): void {
    for (const entry of this.active.values()) clearTimeout(entry.timer);
    this.active.clear();
  }
}
