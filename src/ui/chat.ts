/**
 * The client's engine: loads state over REST, keeps it live over socket.io, catches up after every
 * reconnect with `sync`, and delivers the outbox. Components call the exported actions and read
 * the signals in state.ts; nothing here renders.
 */
import { io, type Socket } from "socket.io-client";
import type { ErrorBody } from "../contracts/errors.js";
import type { MemberRole, Message, Notification, Room, User, UserStatus } from "../contracts/objects.js";
import type { Ack, ClientToServerEvents, ServerToClientEvents } from "../contracts/socket.js";
import { api, ApiError, NetworkError } from "./api.js";
import { cacheChanged, clearSnapshot, noteRoomOpened, restoreSnapshot } from "./cache.js";
import {
  addToOutbox,
  dropFromOutbox,
  newClientMsgId,
  openOutbox,
  outbox,
  removeFromOutbox,
  updateOutbox,
} from "./outbox.js";
import { dropSession, refreshSession, session } from "./session.js";
import {
  caughtUp,
  connection,
  contiguousSeq,
  currentRoomId,
  displayNameOf,
  loadedTimelines,
  me,
  members,
  mergeMessages,
  notifications,
  patchRoom,
  putUsers,
  removeRoom,
  resetState,
  roomTitle,
  rooms,
  setRoom,
  showToast,
  timeline,
  touchedRooms,
  typing,
  users,
} from "./state.js";

type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
type CallEvent = Exclude<keyof ClientToServerEvents, "typing">;
type PayloadOf<E extends CallEvent> = Parameters<ClientToServerEvents[E]>[0];
type ResultOf<E extends CallEvent> = Parameters<ClientToServerEvents[E]>[1] extends (res: Ack<infer R>) => void
  ? R
  : never;

const ACK_TIMEOUT_MS = 15_000;
const TYPING_TTL_MS = 6_000;
const PAGE = 50;
/** Sync pages per room on reconnect; past that the room restarts from its newest page. */
const MAX_SYNC_ROUNDS = 3;
const SYNC_ROOMS_PER_CALL = 50;
/** Read markers are sent at most this often per room (scrolling through history asks many times). */
const READ_EVERY_MS = 500;

let socket: ChatSocket | null = null;

// ---- socket calls --------------------------------------------------------------------------------

/** No ack in time: the outcome is unknown (safe to repeat for sends, which carry a clientMsgId). */
class AckTimeout extends Error {}

function call<E extends CallEvent>(event: E, payload: PayloadOf<E>, timeoutMs = ACK_TIMEOUT_MS): Promise<ResultOf<E>> {
  return new Promise((resolve, reject) => {
    if (!socket?.connected) {
      reject(new NetworkError("You're offline. Try again once the connection is back."));
      return;
    }
    // socket.io's typed emit does not model `timeout()` acks with our Call<> signature.
    const emitter = socket.timeout(timeoutMs) as unknown as {
      emit(event: string, payload: unknown, cb: (err: Error | null, res: Ack<unknown>) => void): void;
    };
    emitter.emit(event, payload, (err, res) => {
      if (err) reject(new AckTimeout("The server did not answer in time."));
      else if (res.ok) resolve(res.data as ResultOf<E>);
      else reject(new ApiError(res.error, 0));
    });
  });
}

// ---- loading -------------------------------------------------------------------------------------

/** We are no longer in the room: its timeline, and sends that can no longer go there, go. */
function forgetRoom(roomId: number): void {
  removeRoom(roomId); // its timeline too
  dropFromOutbox((e) => e.roomId !== roomId);
}

let roomsLoad: Promise<void> | null = null;

export function loadRooms(): Promise<void> {
  roomsLoad ??= (async () => {
    try {
      touchedRooms.clear();
      const { rooms: list } = await api<{ rooms: Room[] }>("GET", "/rooms");
      const next = new Map(list.map((r) => [r.id, r]));
      // What changed here while the list was on its way (a join, an unread event) is newer.
      for (const id of touchedRooms) {
        const local = rooms.value.get(id);
        if (local) next.set(id, local);
        else next.delete(id);
      }
      // Nor does an answer computed before our latest read move the read marker back.
      for (const [id, room] of next) {
        const local = rooms.value.get(id);
        if (local && (local.lastReadSeq ?? 0) > (room.lastReadSeq ?? 0))
          next.set(id, { ...room, unread: local.unread, mentions: local.mentions, lastReadSeq: local.lastReadSeq });
      }
      for (const id of rooms.value.keys()) if (!next.has(id)) forgetRoom(id);
      rooms.value = next;
      ensureUsers(list.flatMap((r) => (r.lastMessage ? [r.lastMessage.userId] : [])));
      // Direct rooms are named after the other user: learn who that is, a few at a time.
      const direct = list.filter((r) => r.kind === "direct" && !members.value.has(r.id)).slice(0, 30);
      void runLimited(direct, 4, (r) => loadMembers(r.id).catch(() => undefined));
    } finally {
      roomsLoad = null;
    }
  })();
  return roomsLoad;
}

async function loadMe(): Promise<void> {
  const user = await api<User>("GET", "/users/me");
  me.value = user;
  putUsers([user]);
}

async function loadNotifications(): Promise<void> {
  const { notifications: list } = await api<{ notifications: Notification[] }>("GET", "/notifications?limit=50");
  notifications.value = list;
  ensureUsers(list.map((n) => n.fromUserId));
}

export async function loadMembers(roomId: number): Promise<void> {
  const { members: list } = await api<{ members: (User & { role: MemberRole })[] }>("GET", `/rooms/${roomId}/members`);
  putUsers(list.map(({ role: _role, ...user }) => user));
  const next = new Map(members.value);
  next.set(roomId, new Map(list.map((m) => [m.id, m.role])));
  members.value = next;
}

const usersInFlight = new Set<number>();

/** Fetches the profiles of authors we have not met (e.g. people who left the room). */
export function ensureUsers(ids: readonly number[]): void {
  const missing = [...new Set(ids)].filter((id) => !users.value.has(id) && !usersInFlight.has(id));
  if (missing.length === 0) return;
  for (const id of missing) usersInFlight.add(id);
  void runLimited(missing, 4, async (id) => {
    try {
      putUsers([await api<User>("GET", `/users/${id}`)]);
    } catch {
      // Shown as "User N" until a later attempt.
    } finally {
      usersInFlight.delete(id);
    }
  });
}

async function runLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Puts messages into their room's timeline (any order, duplicates welcome) and settles the outbox. */
function receiveMessages(roomId: number, incoming: readonly Message[]): void {
  if (incoming.length === 0) return;
  const tl = timeline(roomId);
  tl.value = { ...tl.value, messages: mergeMessages(tl.value.messages, incoming) };
  const mine = me.value?.id;
  removeFromOutbox(incoming.filter((m) => m.userId === mine).map((m) => m.clientMsgId));
  ensureUsers(incoming.map((m) => m.userId));
  cacheChanged();
}

export async function loadLatest(roomId: number): Promise<void> {
  const page = await api<{ messages: Message[]; hasMore: boolean }>("GET", `/rooms/${roomId}/messages?limit=${PAGE}`);
  const tl = timeline(roomId);
  const current = tl.value;
  // A window that does not reach the newest page has a hole in between: start over from here.
  const joins =
    current.loaded && page.messages.length > 0 && contiguousSeq(current.messages) >= page.messages[0].seq - 1;
  tl.value = {
    messages: joins ? mergeMessages(current.messages, page.messages) : page.messages,
    hasMoreBefore: joins ? current.hasMoreBefore : page.hasMore,
    loaded: true,
    loadingOlder: false,
  };
  removeFromOutbox(page.messages.filter((m) => m.userId === me.value?.id).map((m) => m.clientMsgId));
  ensureUsers(page.messages.map((m) => m.userId));
  cacheChanged();
  // A message:new that arrived while the page was on its way was not kept: fetch what is missing.
  const newest = page.messages[page.messages.length - 1]?.seq ?? 0;
  if ((rooms.value.get(roomId)?.lastSeq ?? 0) > newest) syncSoon(roomId);
}

export async function loadOlder(roomId: number): Promise<void> {
  const tl = timeline(roomId);
  const current = tl.value;
  if (!current.loaded || current.loadingOlder || !current.hasMoreBefore) return;
  const first = current.messages[0];
  if (!first || first.seq <= 1) {
    tl.value = { ...current, hasMoreBefore: false };
    return;
  }
  tl.value = { ...current, loadingOlder: true };
  try {
    const page = await api<{ messages: Message[]; hasMore: boolean }>(
      "GET",
      `/rooms/${roomId}/messages?before=${first.seq}&limit=${PAGE}`,
    );
    tl.value = {
      ...tl.value,
      messages: mergeMessages(tl.value.messages, page.messages),
      hasMoreBefore: page.hasMore,
      loadingOlder: false,
    };
    ensureUsers(page.messages.map((m) => m.userId));
  } catch (err) {
    tl.value = { ...tl.value, loadingOlder: false };
    throw err;
  }
}

/** `#/rooms/<id>` is the open room. */
export function applyRoute(): void {
  const match = /^#\/rooms\/(\d+)$/.exec(location.hash);
  if (match && session.value) openRoom(Number(match[1]));
  else currentRoomId.value = null;
}

export function openRoom(roomId: number): void {
  currentRoomId.value = roomId;
  noteRoomOpened(roomId);
  const tl = timeline(roomId).value;
  if (!tl.loaded || tl.stale) loadLatest(roomId).catch(reportQuietly);
  loadMembers(roomId).catch(reportQuietly);
}

// ---- catching up ---------------------------------------------------------------------------------

/** Asks for everything after the last contiguous seq of each room, page by page. */
async function syncRooms(roomIds: readonly number[]): Promise<void> {
  let want = new Map<number, number>();
  for (const id of roomIds) want.set(id, contiguousSeq(timeline(id).value.messages));
  for (let round = 0; want.size > 0; round++) {
    if (round === MAX_SYNC_ROUNDS) {
      // Far behind: jump to the newest page; older ones load on scroll.
      for (const id of want.keys()) timeline(id).value = { ...timeline(id).value, loaded: false, messages: [] };
      await Promise.all([...want.keys()].map((id) => loadLatest(id)));
      return;
    }
    const next = new Map<number, number>();
    // The server bounds the rooms per call (SYNC_MAX_ROOMS): ask in slices well under it.
    const entries = [...want];
    for (let i = 0; i < entries.length; i += SYNC_ROOMS_PER_CALL) {
      const slice = entries.slice(i, i + SYNC_ROOMS_PER_CALL);
      const res = await call("sync", { rooms: Object.fromEntries(slice.map(([id, seq]) => [String(id), seq])) });
      for (const [id, { messages, hasMore }] of Object.entries(res.rooms)) {
        const roomId = Number(id);
        receiveMessages(roomId, messages);
        if (hasMore && messages.length > 0) next.set(roomId, messages[messages.length - 1].seq);
      }
    }
    want = next;
  }
}

const pendingSync = new Set<number>();

/** A message skipped ahead: fetch what lies between (once per burst). */
function syncSoon(roomId: number): void {
  if (pendingSync.has(roomId)) return;
  pendingSync.add(roomId);
  setTimeout(() => {
    pendingSync.delete(roomId);
    if (timeline(roomId).value.loaded) syncRooms([roomId]).catch(reportQuietly);
  }, 100);
}

let catchUpRun = 0;

async function catchUp(): Promise<void> {
  const run = ++catchUpRun;
  caughtUp.value = false;
  try {
    await Promise.all([loadMe(), loadRooms(), loadNotifications()]);
    const loaded = loadedTimelines()
      .map(([id]) => id)
      .filter((id) => rooms.value.has(id));
    await syncRooms(loaded);
    const current = currentRoomId.value;
    for (const id of loaded) {
      if (id !== current) timeline(id).value = { ...timeline(id).value, stale: true };
    }
    if (current !== null && rooms.value.has(current)) {
      // Edits, deletions and presence changes while away are not in `sync`: refresh what is on screen.
      await Promise.all([loadLatest(current), loadMembers(current)]);
    }
    if (run === catchUpRun) caughtUp.value = true;
  } catch (err) {
    if (run !== catchUpRun || !socket?.connected) return;
    if (err instanceof ApiError && err.status === 401) return;
    setTimeout(() => {
      if (run === catchUpRun && socket?.connected) void catchUp();
    }, 3_000);
  }
  void pump();
}

// ---- live events ---------------------------------------------------------------------------------

function onMessageNew(message: Message): void {
  const room = rooms.value.get(message.roomId);
  if (room) {
    // The server announces unread counts on reads and mentions, not per message: count new ones
    // here (a seq seen for the first time, from someone else, past the read marker).
    const fresh =
      message.seq > room.lastSeq && message.userId !== me.value?.id && message.seq > (room.lastReadSeq ?? 0);
    patchRoom(message.roomId, {
      lastMessage: message,
      lastSeq: Math.max(room.lastSeq, message.seq),
      ...(fresh ? { unread: (room.unread ?? 0) + 1 } : {}),
    });
  }
  const tl = timeline(message.roomId).value;
  if (!tl.loaded) {
    if (message.userId === me.value?.id) removeFromOutbox([message.clientMsgId]);
    return;
  }
  const last = contiguousSeq(tl.messages);
  receiveMessages(message.roomId, [message]);
  if (message.seq > last + 1) syncSoon(message.roomId);
}

function onMessageChanged(message: Message): void {
  const tl = timeline(message.roomId);
  if (!tl.value.loaded || !tl.value.messages.some((m) => m.seq === message.seq)) return;
  tl.value = { ...tl.value, messages: mergeMessages(tl.value.messages, [message]) };
  const room = rooms.value.get(message.roomId);
  if (room?.lastMessage?.id === message.id) patchRoom(room.id, { lastMessage: message });
  cacheChanged();
}

function setTyping(roomId: number, userId: number, on: boolean): void {
  const next = new Map(typing.value);
  const inRoom = new Map(next.get(roomId));
  if (on) inRoom.set(userId, Date.now() + TYPING_TTL_MS);
  else inRoom.delete(userId);
  if (inRoom.size > 0) next.set(roomId, inRoom);
  else next.delete(roomId);
  typing.value = next;
}

// Typing flags expire by themselves, like the server's.
setInterval(() => {
  const now = Date.now();
  for (const [roomId, inRoom] of typing.value) {
    for (const [userId, until] of inRoom) if (until <= now) setTyping(roomId, userId, false);
  }
}, 1_000);

function setPresence(userId: number, status: UserStatus, lastSeenAt: string | null): void {
  const user = users.value.get(userId);
  if (user) putUsers([{ ...user, status, lastSeenAt }]);
  if (me.value?.id === userId) me.value = { ...me.value, status, lastSeenAt };
}

async function onMember(change: { roomId: number; userId: number; action: "joined" | "left" | "invited" | "kicked" }) {
  const { roomId, userId, action } = change;
  const added = action === "joined" || action === "invited";
  if (userId === me.value?.id) {
    if (added) {
      setRoom(await api<Room>("GET", `/rooms/${roomId}`));
      return;
    }
    const room = rooms.value.get(roomId);
    forgetRoom(roomId);
    if (room && currentRoomId.value === roomId) {
      if (action === "kicked") showToast(`You were removed from ${roomTitle(room)}.`);
      location.hash = "";
    }
    return;
  }
  const roomMembers = members.value.get(roomId);
  if (roomMembers) {
    const next = new Map(members.value);
    const updated = new Map(roomMembers);
    if (added) updated.set(userId, "member");
    else updated.delete(userId);
    next.set(roomId, updated);
    members.value = next;
  }
  if (added) ensureUsers([userId]);
  const room = rooms.value.get(roomId);
  if (room) patchRoom(roomId, { memberCount: Math.max(0, room.memberCount + (added ? 1 : -1)) });
}

function onNotification(notification: Notification): void {
  if (notifications.value.some((n) => n.id === notification.id)) return;
  notifications.value = [notification, ...notifications.value];
  ensureUsers([notification.fromUserId]);
  showDesktopNotification(notification);
}

export function notificationText(n: Notification): string {
  const who = displayNameOf(n.fromUserId);
  const room = rooms.value.get(n.roomId);
  const where = room ? (room.kind === "direct" ? "" : ` in ${roomTitle(room)}`) : "";
  if (n.kind === "mention") return `${who} mentioned you${where}`;
  if (n.kind === "direct") return `${who} sent you a direct message`;
  return `${who} added you${where ? ` to ${where.slice(4)}` : ""}`;
}

function showDesktopNotification(n: Notification): void {
  if (!document.hidden || typeof Notification === "undefined" || Notification.permission !== "granted") return;
  // Give the author's name a moment to load.
  setTimeout(() => {
    const message = timeline(n.roomId).value.messages.find((m) => m.id === n.messageId);
    const shown = new Notification(notificationText(n), {
      body: message && !message.deleted ? message.body.slice(0, 200) : undefined,
      tag: `nochat-${n.id}`,
    });
    shown.onclick = () => {
      window.focus();
      location.hash = `#/rooms/${n.roomId}`;
      shown.close();
    };
  }, 300);
}

// ---- connection ----------------------------------------------------------------------------------

function connectSocket(): void {
  const s: ChatSocket = io({
    auth: (cb) => cb({ token: session.value?.accessToken ?? "" }),
    transports: ["websocket", "polling"],
    reconnectionDelay: 500,
    reconnectionDelayMax: 5_000,
  });
  socket = s;
  const down = () => {
    caughtUp.value = false;
    connection.value = navigator.onLine ? "reconnecting" : "offline";
  };

  s.on("connect", () => {
    connection.value = "online";
    void catchUp();
  });
  s.on("disconnect", (reason) => {
    down();
    if (reason === "io server disconnect") {
      // Refused by the server: reconnect only if the session still stands (a 401 here signs out).
      setTimeout(() => {
        if (socket !== s) return;
        api<User>("GET", "/users/me")
          .then(() => socket === s && s.connect())
          .catch(() => socket === s && setTimeout(() => s.connect(), 3_000));
      }, 300);
    }
  });
  s.on("connect_error", (err: Error & { data?: { retryAfter?: number } }) => {
    down();
    if (err.message !== "UNAUTHORIZED") {
      // Refused by the server (e.g. RATE_LIMITED: too many open sockets) rather than unreachable:
      // socket.io does not retry those by itself.
      if (!s.active) {
        const wait = (err.data?.retryAfter ?? 5) * 1000;
        setTimeout(() => socket === s && !s.connected && s.connect(), wait);
      }
      return;
    }
    const used = session.value?.accessToken ?? "";
    refreshSession(used)
      .then((fresh) => {
        if (fresh && socket === s && !s.active) s.connect();
      })
      .catch(() => {
        if (socket === s && !s.active) setTimeout(() => s.connect(), 3_000);
      });
  });

  s.on("message:new", onMessageNew);
  s.on("message:updated", onMessageChanged);
  s.on("message:deleted", ({ id, roomId, seq }) => {
    const existing = timeline(roomId).value.messages.find((m) => m.seq === seq);
    if (existing) onMessageChanged({ ...existing, id, body: "", deleted: true, reactions: {} });
  });
  s.on("typing", ({ roomId, userId, typing: on }) => setTyping(roomId, userId, on));
  s.on("presence", ({ userId, status, lastSeenAt }) => setPresence(userId, status, lastSeenAt));
  s.on("room:updated", (room) => {
    if (rooms.value.has(room.id)) setRoom(room);
  });
  s.on("room:member", (change) => void onMember(change).catch(reportQuietly));
  s.on("unread", ({ roomId, unread, mentions, lastReadSeq }) => {
    // Events of this user's reads can arrive out of order with newer ones: keep the furthest.
    if (lastReadSeq >= (rooms.value.get(roomId)?.lastReadSeq ?? 0))
      patchRoom(roomId, { unread, mentions, lastReadSeq });
  });
  s.on("notification", onNotification);
  s.on("session:revoked", () => endSession("Your session was ended. Please sign in again."));
}

window.addEventListener("online", () => {
  if (connection.value === "offline") connection.value = "reconnecting";
  if (socket && !socket.connected && !socket.active) socket.connect();
});
window.addEventListener("offline", () => {
  if (socket && !socket.connected) connection.value = "offline";
});

let startedFor: number | null = null;

/** Starts the signed-in client for the session's user: cached state first, then live. */
export function startClient(userId: number): void {
  if (startedFor === userId) return;
  stopClient();
  startedFor = userId;
  openOutbox(userId);
  restoreSnapshot(userId);
  connection.value = "connecting";
  connectSocket();
  applyRoute();
  // First paint does not wait for the socket; catchUp refreshes all of it once connected.
  Promise.all([loadMe(), loadRooms(), loadNotifications()]).catch(reportQuietly);
}

export function stopClient(): void {
  if (startedFor === null) return;
  socket?.removeAllListeners();
  socket?.disconnect();
  socket = null;
  startedFor = null;
  readSent.clear();
  for (const { timer } of readWanted.values()) clearTimeout(timer);
  readWanted.clear();
  pendingSync.clear();
  internalFailures.clear();
  resetState();
  openOutbox(null);
}

/** Local end of a session that the server ended (revoked, expired). */
export function endSession(reason: string): void {
  const userId = me.value?.id ?? session.value?.userId;
  // The unsent outbox stays for when this user signs in again; the cached history does not.
  if (userId !== undefined) clearSnapshot(userId);
  stopClient();
  dropSession(reason);
  history.replaceState(null, "", location.pathname);
}

export async function signOut(): Promise<void> {
  const userId = me.value?.id ?? session.value?.userId;
  await api("POST", "/auth/logout", {}).catch(() => undefined);
  if (userId !== undefined) clearSnapshot(userId);
  // Signing out on a shared computer leaves nothing of the user behind, unsent messages included.
  dropFromOutbox(() => false);
  stopClient();
  dropSession(null);
  history.replaceState(null, "", location.pathname);
}

// ---- actions -------------------------------------------------------------------------------------

function reportQuietly(err: unknown): void {
  if (err instanceof NetworkError || err instanceof AckTimeout) return;
  if (err instanceof ApiError && err.status === 401) return;
  showToast(err instanceof Error ? err.message : "Something went wrong.");
}

/** Queues a message; it shows as pending at once and is delivered as soon as possible. */
export function sendMessage(roomId: number, body: string, replyTo: number | null): void {
  addToOutbox({
    clientMsgId: newClientMsgId(),
    roomId,
    body,
    replyTo,
    createdAt: new Date().toISOString(),
    state: "pending",
  });
  void pump();
}

export function retrySend(clientMsgId: string): void {
  updateOutbox(clientMsgId, { state: "pending", error: undefined });
  void pump();
}

export function discardSend(clientMsgId: string): void {
  removeFromOutbox([clientMsgId]);
}

/** Errors after which repeating the same send is safe and may succeed. */
const TRANSIENT = new Set<ErrorBody["code"]>(["UNAVAILABLE", "RATE_LIMITED", "INTERNAL"]);
const MAX_INTERNAL_RETRIES = 3;
const internalFailures = new Map<string, number>();
let pumping = false;
let pumpTimer: ReturnType<typeof setTimeout> | undefined;

/** Sends the outbox one message at a time, in the order written, while connected. */
async function pump(): Promise<void> {
  if (pumping) return;
  pumping = true;
  clearTimeout(pumpTimer);
  try {
    while (socket?.connected) {
      const entry = outbox.value.find((e) => e.state === "pending");
      if (!entry) break;
      try {
        const message = await call("message:send", {
          roomId: entry.roomId,
          body: entry.body,
          clientMsgId: entry.clientMsgId,
          replyTo: entry.replyTo ?? undefined,
        });
        internalFailures.delete(entry.clientMsgId);
        onMessageNew(message);
        removeFromOutbox([entry.clientMsgId]);
      } catch (err) {
        if (err instanceof ApiError && !TRANSIENT.has(err.code)) {
          updateOutbox(entry.clientMsgId, { state: "failed", error: err.message });
          continue;
        }
        if (err instanceof ApiError && err.code === "INTERNAL") {
          const failures = (internalFailures.get(entry.clientMsgId) ?? 0) + 1;
          internalFailures.set(entry.clientMsgId, failures);
          if (failures >= MAX_INTERNAL_RETRIES) {
            updateOutbox(entry.clientMsgId, { state: "failed", error: err.message });
            continue;
          }
        }
        // Unknown outcome or a passing condition: the same clientMsgId goes again later, in order.
        const wait = err instanceof ApiError && err.body.retryAfter ? err.body.retryAfter * 1000 : 2_000;
        pumpTimer = setTimeout(() => void pump(), wait);
        break;
      }
    }
  } finally {
    pumping = false;
  }
}

export async function editMessage(message: Message, body: string): Promise<void> {
  onMessageChanged(await call("message:edit", { messageId: message.id, body }));
}

export async function deleteMessage(message: Message): Promise<void> {
  await call("message:delete", { messageId: message.id });
  onMessageChanged({ ...message, body: "", deleted: true, reactions: {} });
}

export async function toggleReaction(message: Message, emoji: string): Promise<void> {
  onMessageChanged(await call("reaction:toggle", { messageId: message.id, emoji }));
}

/** Read markers on their way, per room: one request per seq, however often the view asks. */
const readSent = new Map<number, number>();

const readWanted = new Map<number, { seq: number; timer: ReturnType<typeof setTimeout> }>();

/** Moves the read marker (forward only), sending the furthest seq asked for every READ_EVERY_MS. */
export function markRead(roomId: number, seq: number): void {
  const pending = readWanted.get(roomId);
  if (pending) {
    pending.seq = Math.max(pending.seq, seq);
    return;
  }
  const entry = {
    seq,
    timer: setTimeout(() => {
      readWanted.delete(roomId);
      sendRead(roomId, entry.seq);
    }, READ_EVERY_MS),
  };
  readWanted.set(roomId, entry);
}

function sendRead(roomId: number, seq: number): void {
  const room = rooms.value.get(roomId);
  if (!room || seq <= (room.lastReadSeq ?? 0) || seq <= (readSent.get(roomId) ?? 0) || !socket?.connected) return;
  readSent.set(roomId, seq);
  const settle = () => {
    if (readSent.get(roomId) === seq) readSent.delete(roomId);
  };
  call("room:read", { roomId, seq })
    .then((state) => {
      settle();
      const now = rooms.value.get(roomId);
      if (now && state.lastReadSeq >= (now.lastReadSeq ?? 0))
        patchRoom(roomId, { unread: state.unread, mentions: state.mentions, lastReadSeq: state.lastReadSeq });
    })
    .catch(settle);
}

let typingSentAt = 0;
let typingRoom: number | null = null;

/** Tells the room we type (renewed every 3 s while typing; the server expires it after 6 s). */
export function sendTyping(roomId: number, on: boolean): void {
  if (!socket?.connected) return;
  const now = Date.now();
  if (on) {
    if (typingRoom === roomId && now - typingSentAt < 3_000) return;
    if (typingRoom !== null && typingRoom !== roomId) socket.emit("typing", { roomId: typingRoom, typing: false });
    typingRoom = roomId;
    typingSentAt = now;
    socket.emit("typing", { roomId, typing: true });
  } else if (typingRoom === roomId) {
    typingRoom = null;
    typingSentAt = 0;
    socket.emit("typing", { roomId, typing: false });
  }
}

export async function setMyStatus(status: "online" | "away"): Promise<void> {
  const user = await api<User>("PATCH", "/users/me", { status });
  me.value = user;
  putUsers([user]);
}

export async function markNotificationsSeen(): Promise<void> {
  await api("POST", "/notifications/seen", { all: true });
  notifications.value = notifications.value.map((n) => ({ ...n, seen: true }));
}

/** Adds a room we just created or joined and opens it. */
export function adoptRoom(room: Room): void {
  setRoom(room);
  location.hash = `#/rooms/${room.id}`;
}

export async function leaveRoom(roomId: number): Promise<void> {
  await api("POST", `/rooms/${roomId}/leave`, {});
  forgetRoom(roomId);
  if (currentRoomId.value === roomId) location.hash = "";
}

export async function kickMember(roomId: number, userId: number): Promise<void> {
  // The member list follows the room:member event every member gets.
  await api("DELETE", `/rooms/${roomId}/members/${userId}`);
}
