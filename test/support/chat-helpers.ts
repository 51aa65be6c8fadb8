/**
 * Helpers for the chat integration tests (test/integration/chat-*.test.ts, realtime-cluster,
 * socket-input): typed socket.io clients built on the contract's event maps, acknowledged calls,
 * an inbox that records every server → client event, and small REST shortcuts for rooms and
 * messages. REST answers go through accounts-helpers' `api`, which fails on leaked internals.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies of a black-box HTTP API */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { io, type Socket } from "socket.io-client";
import type { Message, Room } from "../../src/contracts/objects.js";
import type { ClientToServerEvents, ServerToClientEvents } from "../../src/contracts/socket.js";
import { api, assertNoLeak, type Account } from "./accounts-helpers.js";
import { eventually } from "./wait.js";

export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
export type ClientEvent = keyof ClientToServerEvents;
export type ServerEvent = keyof ServerToClientEvents;
export type PayloadOf<E extends ClientEvent> = Parameters<ClientToServerEvents[E]>[0];
type AckFn<E extends ClientEvent> = NonNullable<Parameters<ClientToServerEvents[E]>[1]>;
export type AckOf<E extends ClientEvent> = Parameters<AckFn<E>>[0];
export type ServerPayload<E extends ServerEvent> = Parameters<ServerToClientEvents[E]>[0];

/** A fresh clientMsgId (8–64 of [A-Za-z0-9_-]). */
export function newClientMsgId(prefix = "c"): string {
  return `${prefix}-${randomBytes(8).toString("hex")}`;
}

// ---- sockets ------------------------------------------------------------------------------------

export interface ConnectOptions {
  /** Closed in `t.after()` when given. */
  t?: { after(fn: () => unknown): void };
  timeoutMs?: number;
  /** Resolve only once the server has subscribed the socket to these rooms (see waitSubscribed). */
  rooms?: number[];
  transports?: ("websocket" | "polling")[];
  extraHeaders?: Record<string, string>;
}

/** Opens a typed socket (websocket, no reconnection); rejects on connect_error or timeout. */
export async function connectChat(base: string, token: string, opts: ConnectOptions = {}): Promise<ChatSocket> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const socket: ChatSocket = io(base, {
    path: "/socket.io",
    transports: opts.transports ?? ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: timeoutMs,
    auth: { token },
    extraHeaders: opts.extraHeaders,
  });
  opts.t?.after(() => socket.close());
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`socket: no connect within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("connect_error", (err: Error) => {
      clearTimeout(timer);
      socket.close();
      reject(new Error(`socket connect_error: ${err.message}`));
    });
  });
  for (const roomId of opts.rooms ?? []) await waitSubscribed(socket, roomId);
  return socket;
}

/**
 * Emits a client event with an acknowledgement and resolves with the ack; rejects when none comes
 * within `timeoutMs`. Every ack is checked for leaked internals.
 */
export function call<E extends ClientEvent>(
  socket: ChatSocket,
  event: E,
  payload: PayloadOf<E>,
  timeoutMs = 10_000,
): Promise<AckOf<E>> {
  return rawCall(socket, event, [payload], timeoutMs) as Promise<AckOf<E>>;
}

/** Like call() but with any arguments before the ack callback (for malformed-input tests). */
export function rawCall(socket: Socket | ChatSocket, event: string, args: unknown[], timeoutMs = 10_000): Promise<any> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for "${event}" within ${timeoutMs} ms`)), timeoutMs);
    (socket as unknown as Socket).emit(event, ...args, (res: unknown) => {
      clearTimeout(timer);
      assertNoLeak(JSON.stringify(res ?? null), `ack of ${event}`);
      resolve(res);
    });
  });
}

/** The data of an ok ack; fails the test with the error otherwise. */
export function okData<T>(ack: { ok: true; data: T } | { ok: false; error: unknown }, what: string): T {
  if (!ack.ok) assert.fail(`${what}: expected ok, got ${JSON.stringify(ack)}`);
  return ack.data;
}

/**
 * Waits until the gateway has put the socket in the room's channel. The gateway joins a socket to
 * its rooms only after the connect packet was sent (it asks chat for the rooms first), so a test
 * that needs deliveries right after connecting waits for this: `typing false` is acknowledged ok
 * exactly when the socket is in the room's channel (FORBIDDEN before), and publishes nothing when
 * the user was not typing.
 */
export async function waitSubscribed(socket: ChatSocket, roomId: number, timeoutMs = 10_000): Promise<void> {
  await eventually(
    `the socket in room ${roomId}'s channel`,
    async () => {
      const ack = await call(socket, "typing", { roomId, typing: false });
      assert.ok(ack.ok, JSON.stringify(ack));
      return true;
    },
    { timeoutMs, intervalMs: 25 },
  );
}

export interface Received {
  name: string;
  payload: any;
  at: number;
}

/** Records every server → client event a socket receives. */
export class Inbox {
  readonly events: Received[] = [];
  private waiters: { check: () => boolean; resolve: () => void }[] = [];

  constructor(
    readonly socket: ChatSocket,
    readonly label = "socket",
  ) {
    socket.onAny((name: string, payload: unknown) => {
      this.events.push({ name, payload, at: Date.now() });
      this.waiters = this.waiters.filter((w) => {
        if (!w.check()) return true;
        w.resolve();
        return false;
      });
    });
  }

  of<E extends ServerEvent>(name: E, filter?: (p: ServerPayload<E>) => boolean): ServerPayload<E>[] {
    return this.events
      .filter((e) => e.name === name && (!filter || filter(e.payload as ServerPayload<E>)))
      .map((e) => e.payload as ServerPayload<E>);
  }

  /** message:new payloads of one room. */
  messages(roomId: number): Message[] {
    return this.of("message:new", (m) => m.roomId === roomId);
  }

  /** Resolves once `count` events named `name` (matching `filter`) were received. */
  async waitFor<E extends ServerEvent>(
    name: E,
    filter: (p: ServerPayload<E>) => boolean = () => true,
    count = 1,
    timeoutMs = 10_000,
  ): Promise<ServerPayload<E>[]> {
    const matching = () => this.of(name, filter);
    if (matching().length >= count) return matching();
    await new Promise<void>((resolve, reject) => {
      const waiter = { check: () => matching().length >= count, resolve: () => undefined as void };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `${this.label}: ${matching().length}/${count} "${name}" events within ${timeoutMs} ms; ` +
              `received: ${JSON.stringify(this.events.map((e) => [e.name, e.payload]).slice(-20))}`,
          ),
        );
      }, timeoutMs);
      waiter.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(waiter);
    });
    return matching();
  }

  clear(): void {
    this.events.length = 0;
  }
}

// ---- REST shortcuts -----------------------------------------------------------------------------

export async function createRoom(
  base: string,
  who: Account,
  body: { name: string; kind: "public" | "private"; topic?: string; members?: number[] },
): Promise<Room> {
  const res = await api<Room>(base, "POST", "/api/rooms", { token: who.accessToken, body });
  assert.equal(res.status, 201, `create room: ${res.status} ${res.text}`);
  return res.body;
}

export async function restSend(
  base: string,
  who: Account,
  roomId: number,
  body: string,
  clientMsgId = newClientMsgId("r"),
): Promise<Message> {
  const res = await api<Message>(base, "POST", `/api/rooms/${roomId}/messages`, {
    token: who.accessToken,
    body: { body, clientMsgId },
  });
  assert.ok(res.status === 201 || res.status === 200, `send: ${res.status} ${res.text}`);
  return res.body;
}

/** Every message of a room (paging forward with ?after=), ascending. */
export async function fullHistory(base: string, who: Account, roomId: number): Promise<Message[]> {
  const all: Message[] = [];
  let after = 0;
  for (;;) {
    const res = await api<{ messages: Message[]; hasMore: boolean }>(
      base,
      "GET",
      `/api/rooms/${roomId}/messages?after=${after}&limit=100`,
      { token: who.accessToken },
    );
    assert.equal(res.status, 200, `history: ${res.status} ${res.text}`);
    all.push(...res.body.messages);
    if (!res.body.hasMore || res.body.messages.length === 0) return all;
    after = res.body.messages[res.body.messages.length - 1].seq;
  }
}

/** 1..n */
export function range(n: number, from = 1): number[] {
  return Array.from({ length: n }, (_, i) => i + from);
}

/** Asserts the shape of a Message object of the contract. */
export function assertMessageShape(m: Message, what = "message"): void {
  const label = `${what}: ${JSON.stringify(m)}`;
  assert.ok(Number.isInteger(m.id) && m.id > 0, label);
  assert.ok(Number.isInteger(m.roomId) && m.roomId > 0, label);
  assert.ok(Number.isInteger(m.seq) && m.seq > 0, label);
  assert.ok(Number.isInteger(m.userId) && m.userId > 0, label);
  assert.equal(typeof m.body, "string", label);
  assert.equal(typeof m.clientMsgId, "string", label);
  assert.ok(m.replyTo === null || (Number.isInteger(m.replyTo) && m.replyTo > 0), label);
  assert.ok(!Number.isNaN(Date.parse(m.createdAt)) && m.createdAt.endsWith("Z"), label);
  assert.ok(m.editedAt === null || !Number.isNaN(Date.parse(m.editedAt)), label);
  assert.equal(typeof m.deleted, "boolean", label);
  assert.ok(m.reactions && typeof m.reactions === "object" && !Array.isArray(m.reactions), label);
}

/** Asserts the shape of a Room object of the contract. */
export function assertRoomShape(r: Room, what = "room"): void {
  const label = `${what}: ${JSON.stringify(r)}`;
  assert.ok(Number.isInteger(r.id) && r.id > 0, label);
  assert.equal(typeof r.name, "string", label);
  assert.ok(["public", "private", "direct"].includes(r.kind), label);
  assert.equal(typeof r.topic, "string", label);
  assert.ok(Number.isInteger(r.createdBy), label);
  assert.ok(!Number.isNaN(Date.parse(r.createdAt)), label);
  assert.ok(Number.isInteger(r.memberCount) && r.memberCount >= 0, label);
  assert.ok(Number.isInteger(r.lastSeq) && r.lastSeq >= 0, label);
}
