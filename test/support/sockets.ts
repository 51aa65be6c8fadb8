/**
 * The real-time channel as a test client sees it, typed from the contract's event maps
 * (src/contracts/socket.ts), one helper per job:
 *
 *   const socket = await connectChat(base, token, { t, rooms: [room.id] });  connected, or the test fails
 *   const outcome = await openSocket(base, token, { extraHeaders });          connected or refused
 *   await expectSocketRefused(base, token, what);                            refused UNAUTHORIZED
 *   const ack = await call(socket, "message:send", { roomId, body, clientMsgId });
 *   const message = okData(ack, "send");                                     (expectAckError for a refusal)
 *   await rawCall(socket, "message:send", [42, "extra"]);                    malformed input, untyped
 *   const inbox = new Inbox(socket, "bob");                                  every event the socket receives
 *   await inbox.waitFor("message:new", (m) => m.roomId === room.id);
 *
 * Every ack is checked for leaked internals.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- payloads of arbitrary received events */
import assert from "node:assert/strict";
import { io, type Socket } from "socket.io-client";
import type { Message } from "../../src/contracts/objects.js";
import type { ClientToServerEvents, ServerToClientEvents } from "../../src/contracts/socket.js";
import { assertNoLeak } from "./accounts-helpers.js";
import { eventually } from "./wait.js";

export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
export type ClientEvent = keyof ClientToServerEvents;
export type ServerEvent = keyof ServerToClientEvents;
export type PayloadOf<E extends ClientEvent> = Parameters<ClientToServerEvents[E]>[0];
type AckFn<E extends ClientEvent> = NonNullable<Parameters<ClientToServerEvents[E]>[1]>;
export type AckOf<E extends ClientEvent> = Parameters<AckFn<E>>[0];
export type ServerPayload<E extends ServerEvent> = Parameters<ServerToClientEvents[E]>[0];

// ---- connecting ---------------------------------------------------------------------------------

export interface OpenOptions {
  timeoutMs?: number;
  transports?: ("websocket" | "polling")[];
  extraHeaders?: Record<string, string>;
}

export type ConnectOutcome =
  | { ok: true; socket: ChatSocket }
  | { ok: false; message: string; /** connect_error's data, if the server sent any. */ data?: unknown };

/**
 * Opens a typed socket (websocket unless told, no reconnection) and resolves once it connected or
 * was refused (connect_error, or nothing within `timeoutMs`). `token: undefined` sends no auth.
 */
export function openSocket(base: string, token: string | undefined, opts: OpenOptions = {}): Promise<ConnectOutcome> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const socket: ChatSocket = io(base, {
    path: "/socket.io",
    transports: opts.transports ?? ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: timeoutMs,
    extraHeaders: opts.extraHeaders,
    ...(token === undefined ? {} : { auth: { token } }),
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve({ ok: false, message: `no connect or connect_error within ${timeoutMs} ms` });
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve({ ok: true, socket });
    });
    socket.once("connect_error", (err: Error & { data?: unknown }) => {
      clearTimeout(timer);
      socket.close();
      resolve({ ok: false, message: err.message, data: err.data });
    });
  });
}

export interface ConnectOptions extends OpenOptions {
  /** Closed in `t.after()` when given. */
  t?: { after(fn: () => unknown): void };
  /** Resolve only once the server has subscribed the socket to these rooms (see waitSubscribed). */
  rooms?: number[];
}

/** openSocket() that must connect: fails the test otherwise. */
export async function connectChat(base: string, token: string, opts: ConnectOptions = {}): Promise<ChatSocket> {
  const outcome = await openSocket(base, token, opts);
  if (!outcome.ok) assert.fail(`socket connect failed: ${outcome.message}`);
  const { socket } = outcome;
  opts.t?.after(() => socket.close());
  for (const roomId of opts.rooms ?? []) await waitSubscribed(socket, roomId);
  return socket;
}

/** Asserts the handshake is refused with connect_error "UNAUTHORIZED". */
export async function expectSocketRefused(base: string, token: string | undefined, what: string): Promise<void> {
  const outcome = await openSocket(base, token);
  if (outcome.ok) {
    outcome.socket.close();
    assert.fail(`${what}: the socket handshake was accepted`);
  }
  assert.equal(outcome.message, "UNAUTHORIZED", `${what}: connect_error message`);
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

// ---- calls --------------------------------------------------------------------------------------

/**
 * Emits a client event of the contract with an acknowledgement and resolves with the ack; rejects
 * when none comes within `timeoutMs`.
 */
export function call<E extends ClientEvent>(
  socket: ChatSocket,
  event: E,
  payload: PayloadOf<E>,
  timeoutMs = 10_000,
): Promise<AckOf<E>> {
  return rawCall(socket, event, [payload], timeoutMs) as Promise<AckOf<E>>;
}

/** Like call() with any event and arguments before the ack callback (for malformed-input tests). */
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

// ---- what a socket receives ---------------------------------------------------------------------

export interface Received {
  /** A server → client event of the contract, or "disconnect" (payload: the reason), always last. */
  name: string;
  payload: any;
  at: number;
  /** What `tag` (the Inbox's third argument) said when it arrived, e.g. the step a test was at. */
  tag?: number;
}

/** Records every server → client event a socket receives, and its disconnect. */
export class Inbox {
  readonly events: Received[] = [];
  /** Settles when the socket disconnects. */
  readonly disconnected: Promise<{ reason: string; at: number }>;
  private waiters: { check: () => boolean; resolve: () => void }[] = [];

  constructor(
    readonly socket: ChatSocket,
    readonly label = "socket",
    tag?: () => number,
  ) {
    const record = (name: string, payload: unknown) => {
      this.events.push({ name, payload, at: Date.now(), ...(tag ? { tag: tag() } : {}) });
      this.waiters = this.waiters.filter((w) => {
        if (!w.check()) return true;
        w.resolve();
        return false;
      });
    };
    socket.onAny(record);
    this.disconnected = new Promise((resolve) => {
      socket.once("disconnect", (reason: string) => {
        record("disconnect", reason);
        resolve({ reason, at: Date.now() });
      });
    });
  }

  /** The payloads of one event (matching `filter`), in the order received. */
  of<E extends ServerEvent>(name: E, filter?: (p: ServerPayload<E>) => boolean): ServerPayload<E>[] {
    return this.events
      .filter((e) => e.name === name && (!filter || filter(e.payload as ServerPayload<E>)))
      .map((e) => e.payload as ServerPayload<E>);
  }

  /** message:new payloads of one room. */
  messages(roomId: number): Message[] {
    return this.of("message:new", (m) => m.roomId === roomId);
  }

  /** The names of the events received, of the given names only when given. */
  names(only?: string[]): string[] {
    return this.events.map((e) => e.name).filter((name) => !only || only.includes(name));
  }

  /** Resolves with every matching payload once `count` events named `name` (matching `filter`) arrived. */
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

  /** Forgets the events received so far (only those named `name`, when given). */
  clear(name?: ServerEvent): void {
    const kept = name === undefined ? [] : this.events.filter((e) => e.name !== name);
    this.events.splice(0, this.events.length, ...kept);
  }
}
