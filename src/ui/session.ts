/**
 * The signed-in session: tokens kept in localStorage so a reload stays signed in, shared by every
 * tab. The access token is refreshed before it expires; refreshes are serialized across tabs with
 * the Web Locks API and re-read the tokens inside the lock, because refresh tokens rotate and a
 * second use of an old one revokes the whole session. Inside the lock the tokens come from
 * IndexedDB (see kv.ts): localStorage, which the rest reads synchronously, can lag between tabs.
 */
import { signal } from "@preact/signals";
import type { TokenPair } from "../contracts/objects.js";
import { kv } from "./kv.js";

export interface StoredSession {
  accessToken: string;
  refreshToken: string;
  /** Epoch ms when the access token expires. */
  expiresAt: number;
  /** Its lifetime in ms, to refresh at a fitting moment whatever the server's TTL. */
  lifetimeMs: number;
  userId: number;
}

const KEY = "nochat.session";

function readStored(): StoredSession | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as StoredSession) : null;
  } catch {
    return null;
  }
}

export const session = signal<StoredSession | null>(readStored());
/** Why the user was sent back to sign-in (a revoked or expired session), shown on the form. */
export const signedOutReason = signal<string | null>(null);

let refreshTimer: ReturnType<typeof setTimeout> | undefined;

/** Writes both copies: IndexedDB (what a refresh trusts) first, then localStorage (and the tabs). */
async function persist(next: StoredSession | null): Promise<void> {
  try {
    if (next) await kv.set(KEY, next);
    else await kv.delete(KEY);
  } catch {
    // No IndexedDB (private mode in some browsers): localStorage alone, as best effort.
  }
  if (next) localStorage.setItem(KEY, JSON.stringify(next));
  else localStorage.removeItem(KEY);
}

async function readTrusted(): Promise<StoredSession | null> {
  try {
    const fromDb = await kv.get<StoredSession>(KEY);
    if (fromDb) return fromDb;
  } catch {
    // Fall back to localStorage.
  }
  return readStored();
}

export function storeTokens(tokens: TokenPair, userId: number): StoredSession {
  const lifetimeMs = tokens.expiresIn * 1000;
  const next: StoredSession = {
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    expiresAt: Date.now() + lifetimeMs,
    lifetimeMs,
    userId,
  };
  session.value = next;
  signedOutReason.value = null;
  void persist(next);
  scheduleRefresh();
  return next;
}

/** Forgets the tokens locally (the server side is ended by logout or was revoked already). */
export function dropSession(reason: string | null = null): void {
  clearTimeout(refreshTimer);
  void persist(null);
  session.value = null;
  signedOutReason.value = reason;
}

function scheduleRefresh(): void {
  clearTimeout(refreshTimer);
  const current = session.value;
  if (!current) return;
  // A minute early, or a third of the lifetime early for short-lived tokens.
  const lead = Math.min(60_000, current.lifetimeMs / 3);
  const wait = Math.max(0, current.expiresAt - lead - Date.now());
  refreshTimer = setTimeout(() => {
    refreshSession(current.accessToken).catch(() => {
      // Unreachable server: try again shortly; the tokens stay until the server says otherwise.
      refreshTimer = setTimeout(scheduleRefresh, 5_000);
    });
  }, wait);
}

type Refreshed = StoredSession | null;

/** This tab's refresh in progress: every caller that finds the token refused shares it. */
let inFlight: Promise<Refreshed> | null = null;

/**
 * Exchanges the refresh token for new tokens unless another tab already did (then adopts theirs).
 * `stale` is the access token the caller found expired or refused. Resolves null when the session
 * is over (the user must sign in again); rejects when the server cannot be reached.
 */
export function refreshSession(stale: string): Promise<Refreshed> {
  inFlight ??= refreshOnce(stale).finally(() => (inFlight = null));
  return inFlight;
}

async function refreshOnce(stale: string): Promise<Refreshed> {
  const run = async (): Promise<Refreshed> => {
    const stored = await readTrusted();
    if (!stored) {
      dropSession("You were signed out.");
      return null;
    }
    if (stored.accessToken !== stale && stored.expiresAt > Date.now() + 5_000) {
      session.value = stored;
      scheduleRefresh();
      return stored;
    }
    const res = await fetch("/api/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refreshToken: stored.refreshToken }),
    });
    if (res.status === 401 || res.status === 403) {
      dropSession("Your session has ended. Please sign in again.");
      return null;
    }
    if (!res.ok) throw new Error(`refresh failed with ${res.status}`);
    const next = storeTokens((await res.json()) as TokenPair, stored.userId);
    // Committed before the lock is released: the next tab in line reads these tokens.
    await persist(next);
    return next;
  };
  if (navigator.locks) return navigator.locks.request("nochat.refresh", run);
  // No Web Locks (plain http on a LAN address is not a secure context): stagger the tabs, so the
  // one that refreshes first has stored its tokens before another re-reads them.
  await new Promise((resolve) => setTimeout(resolve, Math.random() * 300));
  return run();
}

// Another tab signed in, refreshed or signed out.
window.addEventListener("storage", (event) => {
  if (event.key !== KEY && event.key !== null) return;
  const stored = readStored();
  if (stored?.accessToken === session.value?.accessToken) return;
  session.value = stored;
  if (stored) scheduleRefresh();
  else clearTimeout(refreshTimer);
});

scheduleRefresh();
