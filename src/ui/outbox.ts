/**
 * Messages the user sent that the server has not acknowledged yet, kept in localStorage per user
 * so they survive a reload or a lost connection. Each keeps its clientMsgId for life: however often
 * it is re-sent — after a timeout, a reconnect, a reload, from another tab — the server stores it
 * once. An entry leaves the outbox only when an ack (or the message itself) says it is stored.
 */
import { signal } from "@preact/signals";

export interface OutboxEntry {
  clientMsgId: string;
  roomId: number;
  body: string;
  replyTo: number | null;
  createdAt: string;
  /** pending: will be sent (again) when possible; failed: refused, waits for the user's Retry. */
  state: "pending" | "failed";
  error?: string;
}

export const outbox = signal<readonly OutboxEntry[]>([]);
let ownerKey: string | null = null;

export function newClientMsgId(): string {
  return crypto.randomUUID().replace(/-/g, "");
}

function read(key: string): OutboxEntry[] {
  try {
    const parsed = JSON.parse(localStorage.getItem(key) ?? "[]") as unknown;
    return Array.isArray(parsed) ? (parsed as OutboxEntry[]) : [];
  } catch {
    return [];
  }
}

/**
 * Applies a change to the stored list, read afresh: another tab of the same user may have queued
 * or settled entries since this tab last looked, and a stale copy written back would drop them.
 */
function change(fn: (entries: OutboxEntry[]) => OutboxEntry[]): void {
  const entries = fn(ownerKey ? read(ownerKey) : [...outbox.value]);
  outbox.value = entries;
  if (!ownerKey) return;
  if (entries.length === 0) localStorage.removeItem(ownerKey);
  else localStorage.setItem(ownerKey, JSON.stringify(entries));
}

/** Loads the signed-in user's outbox; null when signed out. */
export function openOutbox(userId: number | null): void {
  ownerKey = userId === null ? null : `nochat.outbox.${userId}`;
  outbox.value = ownerKey ? read(ownerKey) : [];
}

export function addToOutbox(entry: OutboxEntry): void {
  change((entries) => [...entries, entry]);
}

export function updateOutbox(clientMsgId: string, patch: Partial<OutboxEntry>): void {
  change((entries) => entries.map((e) => (e.clientMsgId === clientMsgId ? { ...e, ...patch } : e)));
}

export function removeFromOutbox(clientMsgIds: readonly string[]): void {
  if (clientMsgIds.length === 0) return;
  const gone = new Set(clientMsgIds);
  if (!outbox.value.some((e) => gone.has(e.clientMsgId))) return;
  change((entries) => entries.filter((e) => !gone.has(e.clientMsgId)));
}

/** Drops what can no longer be sent, e.g. the room was left; or everything, on sign-out. */
export function dropFromOutbox(keep: (entry: OutboxEntry) => boolean): void {
  if (outbox.value.every(keep)) return;
  change((entries) => entries.filter(keep));
}

// Another tab of the same user sent or queued something.
window.addEventListener("storage", (event) => {
  if (ownerKey && event.key === ownerKey) outbox.value = read(ownerKey);
});
