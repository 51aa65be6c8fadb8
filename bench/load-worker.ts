/**
 * A load-generator process of `npm run bench` (forked by bench/run.ts; commands in bench/protocol.ts).
 *
 * Each of its users has one socket.io-client socket (websocket) and one room; every member of a room
 * is in this worker, so it checks on its own that every acknowledged message reached every member
 * exactly once. Sends follow the socket contract (docs/API.md): `message:send` with a clientMsgId
 * and an acknowledgement; an error ack, a missing ack (ACK_TIMEOUT_MS) or a dropped socket is
 * retried with the same clientMsgId until it is acknowledged.
 *
 * Message bodies carry `<tag>|<sender id>|<intended send time>|padding`, so a receiver measures
 * send→receive latency itself (all processes read the same clock: performance.timeOrigin + now()).
 */
import { io, type Socket } from "socket.io-client";
import type { Message } from "../src/contracts/objects.js";
import { Histogram } from "./hist.js";
import { SLOT_MS, type FromWorker, type Progress, type Slots, type ToWorker, type WorkerUser } from "./protocol.js";

/** A send without an answer for this long is retried (NoChat's own request timeout is 10 s). */
const ACK_TIMEOUT_MS = 15_000;
const PROGRESS_MS = 1_000;

/** What the worker reads of a message: the part NoChat's contract and the baselines share. */
type WireMessage = Pick<Message, "id" | "roomId" | "seq" | "userId" | "body" | "clientMsgId">;
type Ack<T> = { ok: true; data: T } | { ok: false; error: { code: string; message: string; retryAfter?: number } };

interface User {
  u: WorkerUser;
  socket: Socket;
  /** seq → message id of what this user's socket received in its room. */
  seqs: Map<number, number>;
  sent: number;
}

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function send(msg: FromWorker): void {
  process.send?.(msg);
}

let worker = 0;
let gateways: string[] = [];
let users: User[] = [];
let canSync = false;
let padding = "";

const progress: Progress = { acked: 0, received: 0, inFlight: 0, failedAttempts: 0, disconnects: 0 };
let duplicates = 0;
let ackConflicts = 0;
const ackSlots: Slots = {};
const receiptSlots: Slots = {};
/** roomId → clientMsgId → the acknowledged message's id and seq. */
const acked = new Map<number, Map<string, { id: number; seq: number }>>();
/** Send→receive latency of open-loop messages, measured by the other members of the room. */
let e2e = new Histogram();
let openTag: string | undefined;

function bump(slots: Slots, at: number): void {
  const slot = String(Math.floor(at / SLOT_MS));
  slots[slot] = (slots[slot] ?? 0) + 1;
}

function onMessage(user: User, m: WireMessage): void {
  if (m.roomId !== user.u.roomId) return; // another room of the same user (the catch-up rooms)
  const at = now();
  if (user.seqs.has(m.seq)) {
    duplicates++;
    return;
  }
  user.seqs.set(m.seq, m.id);
  progress.received++;
  bump(receiptSlots, at);
  const [tag, from, sentAt] = m.body.split("|", 3);
  if (openTag !== undefined && tag === openTag && Number(from) !== user.u.userId) e2e.record(at - Number(sentAt));
}

function openSocket(url: string, token: string, reconnection: boolean): Socket {
  return io(url, {
    path: "/socket.io",
    transports: ["websocket"],
    forceNew: true,
    reconnection,
    reconnectionDelay: 200,
    timeout: 20_000,
    auth: { token },
  });
}

function connected(socket: Socket, timeoutMs = 30_000): Promise<void> {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no connect within ${timeoutMs} ms`)), timeoutMs);
    const onConnect = (): void => done();
    const onError = (err: Error): void => {
      // With reconnection on, socket.io-client tries again by itself; without it, this is final.
      if (!socket.io.opts.reconnection) done(err);
    };
    const done = (err?: Error): void => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
      if (err) reject(err);
      else resolve();
    };
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/** Sends one message, retrying with the same clientMsgId until it is acknowledged; resolves with the ack time. */
async function sendUntilAcked(user: User, tag: string, intendedAt: number): Promise<number> {
  const n = ++user.sent;
  const clientMsgId = `bench-${worker}-${user.u.userId}-${n}`;
  const body = `${tag}|${user.u.userId}|${intendedAt.toFixed(3)}|${padding}`;
  const payload = { roomId: user.u.roomId, body, clientMsgId };
  progress.inFlight++;
  try {
    for (;;) {
      let wait = 100;
      try {
        const ack = (await user.socket
          .timeout(ACK_TIMEOUT_MS)
          .emitWithAck("message:send", payload)) as Ack<WireMessage>;
        if (ack.ok) {
          const at = now();
          const room = acked.get(user.u.roomId) ?? new Map<string, { id: number; seq: number }>();
          acked.set(user.u.roomId, room);
          const before = room.get(clientMsgId);
          if (before && before.id !== ack.data.id) ackConflicts++;
          if (!before) {
            room.set(clientMsgId, { id: ack.data.id, seq: ack.data.seq });
            progress.acked++;
            bump(ackSlots, at);
          }
          return at;
        }
        if (ack.error.retryAfter) wait = Math.min(2_000, ack.error.retryAfter * 1000);
      } catch {
        // no ack in time: the socket may be reconnecting; the retry goes out once it is back
      }
      progress.failedAttempts++;
      await sleep(wait);
    }
  } finally {
    progress.inFlight--;
  }
}

// ---- closed loop ------------------------------------------------------------------------------

let closedRunning = false;
let closedLoops: Promise<void>[] = [];

function closedStart(tag: string): void {
  closedRunning = true;
  closedLoops = users.map(async (user) => {
    while (closedRunning) await sendUntilAcked(user, tag, now());
  });
}

async function closedStop(): Promise<void> {
  closedRunning = false;
  await Promise.all(closedLoops);
  closedLoops = [];
  send({
    type: "closedStopped",
    acks: { ...ackSlots },
    receipts: { ...receiptSlots },
    failedAttempts: progress.failedAttempts,
  });
}

// ---- open loop --------------------------------------------------------------------------------

async function openLoop(startAt: number, durationMs: number, ratePerSec: number): Promise<void> {
  const tag = `o${startAt}`;
  openTag = tag;
  e2e = new Histogram();
  const ackHist = new Histogram();
  const failedBefore = progress.failedAttempts;
  const total = Math.round((durationMs / 1000) * ratePerSec);
  const interval = 1000 / ratePerSec;
  const pending: Promise<void>[] = [];
  let k = 0;
  let maxLagMs = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const t = now();
      while (k < total && startAt + k * interval <= t) {
        const intendedAt = startAt + k * interval;
        maxLagMs = Math.max(maxLagMs, t - intendedAt);
        const user = users[k % users.length];
        k++;
        pending.push(sendUntilAcked(user, tag, intendedAt).then((at) => ackHist.record(at - intendedAt)));
      }
      if (k >= total) return resolve();
      setTimeout(tick, Math.max(0, Math.min(5, startAt + k * interval - now())));
    };
    setTimeout(tick, Math.max(0, startAt - now()));
  });
  await Promise.all(pending);
  send({
    type: "openDone",
    scheduled: total,
    acked: ackHist.count,
    maxLagMs,
    ack: ackHist.toJSON(),
    e2e: e2e.toJSON(),
    failedAttempts: progress.failedAttempts - failedBefore,
  });
}

// ---- settle: did every member get every acknowledged message? --------------------------------

function missingOf(user: User): number {
  let missing = 0;
  for (const { id, seq } of acked.get(user.u.roomId)?.values() ?? []) if (user.seqs.get(seq) !== id) missing++;
  return missing;
}

/** The highest seq up to which the user holds every message of its room. */
function contiguous(user: User): number {
  let n = 0;
  while (user.seqs.has(n + 1)) n++;
  return n;
}

async function syncUser(user: User): Promise<void> {
  for (let round = 0; round < 10_000; round++) {
    const ack = (await user.socket
      .timeout(ACK_TIMEOUT_MS)
      .emitWithAck("sync", { rooms: { [user.u.roomId]: contiguous(user) } })) as Ack<{
      rooms: Record<string, { messages: WireMessage[]; hasMore: boolean }>;
    }>;
    if (!ack.ok) {
      await sleep(500);
      continue;
    }
    const room = ack.data.rooms[String(user.u.roomId)];
    for (const m of room?.messages ?? []) if (!user.seqs.has(m.seq)) user.seqs.set(m.seq, m.id);
    if (!room?.hasMore) return;
  }
}

async function settle(timeoutMs: number): Promise<void> {
  const started = now();
  const totalMissing = (): number => users.reduce((n, user) => n + missingOf(user), 0);
  while (totalMissing() > 0 && now() - started < timeoutMs) await sleep(100);
  const waitedMs = now() - started;
  const missedLive = totalMissing();
  if (canSync && missedLive > 0) {
    await Promise.all(users.filter((user) => missingOf(user) > 0).map(syncUser));
  }
  const lost = totalMissing();
  let expected = 0;
  for (const user of users) expected += acked.get(user.u.roomId)?.size ?? 0;
  send({
    type: "settled",
    expected,
    held: expected - lost,
    missedLive,
    recoveredBySync: missedLive - lost,
    lost,
    duplicates,
    ackConflicts,
    rooms: [...acked].map(([roomId, byId]) => ({ roomId, ids: [...byId.values()].map((v) => v.id) })),
    waitedMs,
  });
}

// ---- idle sockets -----------------------------------------------------------------------------

let idle: Socket[] = [];

async function idleOpen(gateway: string, count: number, concurrency: number): Promise<void> {
  const started = now();
  let next = 0;
  let ok = 0;
  let failed = 0;
  let error: string | undefined;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const socket = openSocket(gateway, users[i % users.length].u.token, false);
      idle.push(socket);
      try {
        await connected(socket);
        ok++;
      } catch (err) {
        failed++;
        error ??= (err as Error).message;
        socket.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
  send({ type: "idleOpened", connected: ok, failed, ms: now() - started, error });
}

function idleClose(): void {
  for (const socket of idle) socket.close();
  idle = [];
  send({ type: "idleClosed" });
}

// ---- commands ---------------------------------------------------------------------------------

async function handle(cmd: ToWorker): Promise<void> {
  switch (cmd.type) {
    case "init":
      worker = cmd.worker;
      gateways = cmd.gateways;
      canSync = cmd.canSync;
      padding = "x".repeat(Math.max(0, cmd.bodyChars - 40));
      users = cmd.users.map((u, i) => {
        const socket = openSocket(gateways[i % gateways.length], u.token, true);
        const user: User = { u, socket, seqs: new Map(), sent: 0 };
        socket.on("message:new", (m: WireMessage) => onMessage(user, m));
        socket.on("disconnect", () => progress.disconnects++);
        return user;
      });
      send({ type: "ready" });
      return;
    case "connect": {
      const results = await Promise.allSettled(users.map((user) => connected(user.socket)));
      const failed = results.filter((r) => r.status === "rejected");
      send({
        type: "connected",
        ok: results.length - failed.length,
        failed: failed.length,
        error: failed.length ? String((failed[0] as PromiseRejectedResult).reason) : undefined,
      });
      return;
    }
    case "closedStart":
      closedStart(cmd.tag);
      return;
    case "closedStop":
      await closedStop();
      return;
    case "open":
      await openLoop(cmd.startAt, cmd.durationMs, cmd.ratePerSec);
      return;
    case "settle":
      await settle(cmd.timeoutMs);
      return;
    case "idleOpen":
      await idleOpen(cmd.gateway, cmd.count, cmd.concurrency);
      return;
    case "idleClose":
      idleClose();
      return;
    case "exit":
      for (const user of users) user.socket.close();
      idleClose();
      setTimeout(() => process.exit(0), 50);
      return;
  }
}

process.on("message", (cmd: ToWorker) => {
  handle(cmd).catch((err: unknown) => send({ type: "error", message: (err as Error)?.stack ?? String(err) }));
});
// The orchestrator went away: so does its load.
process.on("disconnect", () => process.exit(0));
setInterval(() => send({ type: "progress", worker, progress: { ...progress } }), PROGRESS_MS).unref();
