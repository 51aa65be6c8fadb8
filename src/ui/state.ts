/**
 * The client's state as Preact signals: components read them, the REST and socket layers write
 * them. Maps are replaced, not mutated, so every reader re-renders. Timelines are one signal per
 * room, so a message in one room re-renders only that room.
 */
import { computed, signal, type Signal } from "@preact/signals";
import {
  SYSTEM_USER_ID,
  type Message,
  type MemberRole,
  type Notification,
  type Room,
  type User,
} from "../contracts/objects.js";

export const me = signal<User | null>(null);
export const rooms = signal<ReadonlyMap<number, Room>>(new Map());
/** The author of system messages (the operator's announcements): shown by name like anyone. */
export const SYSTEM_AUTHOR: User = {
  id: SYSTEM_USER_ID,
  username: "nochat",
  displayName: "Announcement",
  status: "offline",
  lastSeenAt: null,
  createdAt: new Date(0).toISOString(),
};

/** Known users by id; the system author is always among them (and never fetched). */
export const knownUsers = (list: readonly User[] = []): Map<number, User> =>
  new Map([[SYSTEM_USER_ID, SYSTEM_AUTHOR], ...list.map((u): [number, User] => [u.id, u])]);

export const users = signal<ReadonlyMap<number, User>>(knownUsers());
/** Members per room (user id → role), loaded when a room is opened. */
export const members = signal<ReadonlyMap<number, ReadonlyMap<number, MemberRole>>>(new Map());
export const notifications = signal<readonly Notification[]>([]);
/** roomId → userId → when their typing flag expires (ms). */
export const typing = signal<ReadonlyMap<number, ReadonlyMap<number, number>>>(new Map());

export type Connection = "connecting" | "online" | "reconnecting" | "offline";
export const connection = signal<Connection>("connecting");
/** True once the socket is up and every loaded room has been synced since. */
export const caughtUp = signal(false);

export interface Timeline {
  /** Ascending seq, no duplicates. */
  messages: readonly Message[];
  /** Whether older messages exist before the first one loaded. */
  hasMoreBefore: boolean;
  loaded: boolean;
  loadingOlder: boolean;
  /** Edits and deletions may have been missed (a reconnect while not on screen): reload on open. */
  stale?: boolean;
}

const timelines = new Map<number, Signal<Timeline>>();

export function timeline(roomId: number): Signal<Timeline> {
  let tl = timelines.get(roomId);
  if (!tl) {
    tl = signal<Timeline>({ messages: [], hasMoreBefore: true, loaded: false, loadingOlder: false });
    timelines.set(roomId, tl);
  }
  return tl;
}

export function loadedTimelines(): [number, Signal<Timeline>][] {
  return [...timelines].filter(([, tl]) => tl.value.loaded);
}

export function forgetTimeline(roomId: number): void {
  timelines.delete(roomId);
}

/** The highest seq up to which the loaded window has no gap: what `sync` asks after. */
export function contiguousSeq(messages: readonly Message[]): number {
  if (messages.length === 0) return 0;
  let seq = messages[0].seq;
  for (let i = 1; i < messages.length && messages[i].seq === seq + 1; i++) seq = messages[i].seq;
  return seq;
}

/** Merges messages into a timeline by seq; a later copy of the same seq (edit, reaction) wins. */
export function mergeMessages(current: readonly Message[], incoming: readonly Message[]): Message[] {
  if (incoming.length === 0) return current as Message[];
  // The common case, a new message at the end: no map, no sort.
  const last = current[current.length - 1];
  if (incoming.length === 1 && (!last || incoming[0].seq > last.seq)) return [...current, incoming[0]];
  const bySeq = new Map<number, Message>();
  for (const m of current) bySeq.set(m.seq, m);
  for (const m of incoming) bySeq.set(m.seq, m);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

export const currentRoomId = signal<number | null>(null);
export const currentRoom = computed(() =>
  currentRoomId.value === null ? null : (rooms.value.get(currentRoomId.value) ?? null),
);

/** Rooms changed locally while a full room list is being fetched (see loadRooms). */
export const touchedRooms = new Set<number>();

export function setRoom(room: Room): void {
  touchedRooms.add(room.id);
  const next = new Map(rooms.value);
  const old = next.get(room.id);
  // room:updated carries no per-caller fields; keep ours.
  // The read marker only moves forward: an answer computed before our last read is older.
  const readFresher = old !== undefined && (old.lastReadSeq ?? 0) > (room.lastReadSeq ?? 0);
  next.set(room.id, {
    ...old,
    ...room,
    role: room.role ?? old?.role,
    unread: readFresher ? old.unread : (room.unread ?? old?.unread),
    mentions: readFresher ? old.mentions : (room.mentions ?? old?.mentions),
    lastReadSeq: readFresher ? old.lastReadSeq : (room.lastReadSeq ?? old?.lastReadSeq),
    lastMessage: room.lastMessage ?? old?.lastMessage,
  });
  rooms.value = next;
}

export function patchRoom(roomId: number, patch: Partial<Room>): void {
  const old = rooms.value.get(roomId);
  if (!old) return;
  touchedRooms.add(roomId);
  const next = new Map(rooms.value);
  next.set(roomId, { ...old, ...patch });
  rooms.value = next;
}

export function removeRoom(roomId: number): void {
  touchedRooms.add(roomId);
  if (!rooms.value.has(roomId)) return;
  const next = new Map(rooms.value);
  next.delete(roomId);
  rooms.value = next;
  forgetTimeline(roomId);
}

export function putUsers(list: readonly User[]): void {
  if (list.length === 0) return;
  const next = new Map(users.value);
  for (const u of list) next.set(u.id, { ...next.get(u.id), ...u });
  users.value = next;
}

export function displayNameOf(userId: number): string {
  const u = users.value.get(userId);
  return u ? u.displayName || u.username : `User ${userId}`;
}

/** The other member of a direct room, when its members are known. */
export function directPeer(room: Room): User | undefined {
  const mine = me.value?.id;
  const roomMembers = members.value.get(room.id);
  if (roomMembers) {
    for (const id of roomMembers.keys()) if (id !== mine) return users.value.get(id);
  }
  for (const u of users.value.values()) if (u.username === room.name && u.id !== mine) return u;
  return undefined;
}

/** What the sidebar and the header call a room: a direct room by the other user's name. */
export function roomTitle(room: Room): string {
  if (room.kind !== "direct") return room.name;
  return directPeer(room)?.displayName ?? room.name;
}

export function lastActivity(room: Room): string {
  return room.lastMessage?.createdAt ?? room.createdAt;
}

export const sortedRooms = computed(() =>
  [...rooms.value.values()].sort(
    (a, b) => lastActivity(b).localeCompare(lastActivity(a)) || a.name.localeCompare(b.name),
  ),
);

export const totalUnread = computed(() => {
  let sum = 0;
  for (const r of rooms.value.values()) sum += r.unread ?? 0;
  return sum;
});

export const unseenCount = computed(() => notifications.value.filter((n) => !n.seen).length);

// ---- UI state ------------------------------------------------------------------------------------

export type DialogKind = "new-room" | "browse" | "direct" | "invite" | "settings" | "notifications";
export const openDialog = signal<DialogKind | null>(null);
export const drawerOpen = signal(false);
/** Wide screens show the member list beside the room; narrow ones open it on demand. */
const wide = window.matchMedia("(min-width: 1100px)");
export const membersOpen = signal(wide.matches);
wide.addEventListener("change", () => (membersOpen.value = wide.matches));
export const editing = signal<Message | null>(null);
/** Unsent text per room, kept while the page lives (cleared on sign-out). */
export const drafts = new Map<number, string>();
export const replyingTo = signal<Message | null>(null);
/** A short message shown at the bottom of the screen (role=alert), e.g. a failed edit. */
export const toast = signal<string | null>(null);

let toastTimer: ReturnType<typeof setTimeout> | undefined;
export function showToast(text: string): void {
  toast.value = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (toast.value = null), 6_000);
}

/** Clears everything of the signed-in user (sign out, session revoked). */
export function resetState(): void {
  me.value = null;
  rooms.value = new Map();
  users.value = knownUsers();
  members.value = new Map();
  notifications.value = [];
  typing.value = new Map();
  timelines.clear();
  drafts.clear();
  currentRoomId.value = null;
  openDialog.value = null;
  editing.value = null;
  replyingTo.value = null;
  caughtUp.value = false;
  connection.value = "connecting";
}
