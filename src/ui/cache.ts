/**
 * A copy of what the user last saw — profile, rooms, names and the recent messages of the last
 * rooms opened — so a reload while the server is unreachable still shows the chat (the service
 * worker serves the app itself). Written a moment after changes; cleared on sign-out.
 */
import { effect } from "@preact/signals";
import type { Message, Room, User } from "../contracts/objects.js";
import { knownUsers, me, rooms, timeline, users } from "./state.js";

interface Snapshot {
  me: User;
  rooms: Room[];
  users: User[];
  messages: Record<string, Message[]>;
}

const KEEP_ROOMS = 5;
const KEEP_MESSAGES = 50;
const recentRooms: number[] = [];
let saveTimer: ReturnType<typeof setTimeout> | undefined;

const keyOf = (userId: number) => `nochat.cache.${userId}`;

export function restoreSnapshot(userId: number): boolean {
  try {
    const raw = localStorage.getItem(keyOf(userId));
    if (!raw) return false;
    const snap = JSON.parse(raw) as Snapshot;
    me.value = snap.me;
    users.value = knownUsers(snap.users);
    rooms.value = new Map(snap.rooms.map((r) => [r.id, r]));
    for (const [id, messages] of Object.entries(snap.messages)) {
      const roomId = Number(id);
      if (!rooms.value.has(roomId)) continue;
      timeline(roomId).value = {
        messages,
        hasMoreBefore: (messages[0]?.seq ?? 1) > 1,
        loaded: true,
        loadingOlder: false,
      };
      recentRooms.push(roomId);
    }
    return true;
  } catch {
    return false;
  }
}

export function noteRoomOpened(roomId: number): void {
  const at = recentRooms.indexOf(roomId);
  if (at !== -1) recentRooms.splice(at, 1);
  recentRooms.unshift(roomId);
  recentRooms.length = Math.min(recentRooms.length, KEEP_ROOMS);
  cacheChanged();
}

function save(): void {
  const user = me.value;
  if (!user) return;
  const messages: Record<string, Message[]> = Object.create(null) as Record<string, Message[]>;
  for (const roomId of recentRooms) {
    const tl = timeline(roomId).value;
    if (tl.loaded) messages[String(roomId)] = tl.messages.slice(-KEEP_MESSAGES);
  }
  const snap: Snapshot = { me: user, rooms: [...rooms.value.values()], users: [...users.value.values()], messages };
  try {
    localStorage.setItem(keyOf(user.id), JSON.stringify(snap));
  } catch {
    // Storage full: the cache is a convenience, the outbox (small) matters more.
  }
}

export function cacheChanged(): void {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(save, 1_000);
}

export function clearSnapshot(userId: number): void {
  clearTimeout(saveTimer);
  recentRooms.length = 0;
  localStorage.removeItem(keyOf(userId));
}

effect(() => {
  // Re-run whenever rooms or users change.
  void rooms.value;
  void users.value;
  cacheChanged();
});
