/**
 * REST shortcuts for notifications, direct rooms, invites and the audit log that assert success,
 * and a bounded pool of concurrent calls (rooms and messages: chat-helpers.ts).
 */
import assert from "node:assert/strict";
import type { AppEvent, Notification, Room } from "../../src/contracts/objects.js";
import { api, type Account } from "./accounts-helpers.js";

/** POST /api/rooms/direct → the Room (200/201). */
export async function openDirect(base: string, from: Account, to: Account): Promise<Room> {
  const res = await api<Room>(base, "POST", "/api/rooms/direct", {
    token: from.accessToken,
    body: { userId: to.user.id },
  });
  assert.ok(res.status === 200 || res.status === 201, `open direct: ${res.status} ${res.text}`);
  return res.body;
}

/** POST /api/rooms/:id/members (201). */
export async function invite(base: string, by: Account, roomId: number, user: Account): Promise<void> {
  const res = await api(base, "POST", `/api/rooms/${roomId}/members`, {
    token: by.accessToken,
    body: { userId: user.user.id },
  });
  assert.equal(res.status, 201, `invite: ${res.status} ${res.text}`);
}

/** GET /api/notifications (all, or unseen only). */
export async function notifications(base: string, user: Account, unseen = false): Promise<Notification[]> {
  const res = await api<{ notifications: Notification[] }>(
    base,
    "GET",
    `/api/notifications?limit=100${unseen ? "&unseen=true" : ""}`,
    { token: user.accessToken },
  );
  assert.equal(res.status, 200, `notifications: ${res.status} ${res.text}`);
  return res.body.notifications;
}

/** GET /api/rooms → the caller's rooms by id. */
export async function myRooms(base: string, user: Account): Promise<Map<number, Room>> {
  const res = await api<{ rooms: Room[] }>(base, "GET", "/api/rooms", { token: user.accessToken });
  assert.equal(res.status, 200, `rooms: ${res.status} ${res.text}`);
  return new Map(res.body.rooms.map((r) => [r.id, r]));
}

/** GET /api/admin/events with a query string (no leading "?"). */
export async function adminEvents(
  base: string,
  admin: Account,
  query = "",
): Promise<{ events: AppEvent[]; nextBefore: string | null }> {
  const res = await api<{ events: AppEvent[]; nextBefore: string | null }>(
    base,
    "GET",
    `/api/admin/events${query ? `?${query}` : ""}`,
    { token: admin.accessToken },
  );
  assert.equal(res.status, 200, `admin events ${query}: ${res.status} ${res.text}`);
  return res.body;
}

/** Runs `fn` over `items` with at most `limit` at a time; results in order. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i], i);
      }
    }),
  );
  return results;
}
