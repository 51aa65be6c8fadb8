/**
 * Abuse limits (issue 10, item 4), against one embedded node behind a pretend proxy (TRUST_PROXY=1,
 * so each request's X-Forwarded-For is its client address): per-address login and registration
 * throttles that cannot lock an account's owner out, per-socket event rates, caps on open sockets
 * per user and per address, and a bounded `sync`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Message, Room } from "../../src/contracts/objects.js";
import { api, PASSWORD, uniqueName, type Account } from "../support/accounts-helpers.js";
import { createRoom } from "../support/chat-helpers.js";
import { expectAckError, expectError } from "../support/errors.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { freePort } from "../support/servers.js";
import {
  call,
  connectChat,
  Inbox,
  okData,
  openSocket,
  type ChatSocket,
  type ConnectOutcome,
} from "../support/sockets.js";
import { sleep } from "../support/wait.js";

let nextAddress = 1;
/** A client address of its own (10.x.y.z), as the trusted proxy reports it. */
const newAddress = (): string => `10.${(nextAddress >> 16) & 255}.${(nextAddress >> 8) & 255}.${nextAddress++ & 255}`;
const from = (address: string) => ({ "x-forwarded-for": address });

describe("abuse limits (embedded node, TRUST_PROXY=1)", () => {
  let node: NodeHandle;
  let base = "";
  const sockets: { close(): unknown }[] = [];

  const registerFrom = async (address = newAddress(), username = uniqueName()): Promise<Account> => {
    const res = await api(base, "POST", "/api/auth/register", {
      body: { username, password: PASSWORD },
      headers: from(address),
    });
    assert.equal(res.status, 201, `register ${username} from ${address}: ${res.text}`);
    return { ...res.body, password: PASSWORD };
  };
  const loginFrom = (address: string, username: string, password: string) =>
    api(base, "POST", "/api/auth/login", { body: { username, password }, headers: from(address) });

  /** A socket from `address`, or its connect_error (message and data); closed at the end. */
  const openFrom = async (token: string, address: string): Promise<ConnectOutcome> => {
    const outcome = await openSocket(base, token, { extraHeaders: from(address) });
    if (outcome.ok) sockets.push(outcome.socket);
    return outcome;
  };

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    node = await startNode({
      env: {
        PORT: String(port),
        TRANSPORTER: undefined,
        DATABASE_URL: undefined,
        MONGO_URL: undefined,
        TRUST_PROXY: "1",
        LOGIN_FAILURES_PER_ADDRESS: "10",
        LOGIN_FAILURES_PER_USER_ADDRESS: "5",
        LOGIN_FAILURES_PER_USER: "8",
        REGISTRATIONS_PER_ADDRESS: "3",
        SOCKETS_PER_USER: "3",
        SOCKETS_PER_ADDRESS: "4",
        SOCKET_EVENTS_PER_SECOND: "10",
        SOCKET_EVENT_BURST: "20",
        SOCKET_TYPING_PER_SECOND: "5",
        SYNC_MAX_ROOMS: "5",
      },
      ready: { http: port },
    });
  });

  after(async () => {
    for (const s of sockets) s.close();
    await node?.stop();
  });

  it("registration: at most REGISTRATIONS_PER_ADDRESS per address per window; other addresses unaffected", async () => {
    const address = newAddress();
    for (let i = 0; i < 3; i++) await registerFrom(address);
    const refused = await api(base, "POST", "/api/auth/register", {
      body: { username: uniqueName(), password: PASSWORD },
      headers: from(address),
    });
    const error = expectError(refused, 429, "RATE_LIMITED", "4th registration from one address");
    assert.ok(Number(refused.headers.get("retry-after")) >= 1, "Retry-After header");
    assert.ok((error.retryAfter ?? 0) >= 1, "retryAfter in the body");
    await registerFrom(newAddress());
  });

  it("login: an address spraying passwords over many usernames is throttled", async () => {
    const victim = await registerFrom();
    const sprayer = newAddress();
    for (let i = 0; i < 10; i++) {
      const res = await loginFrom(sprayer, uniqueName("nobody"), "Password1");
      expectError(res, 401, "UNAUTHORIZED", `spray ${i + 1}`);
    }
    const blocked = await loginFrom(sprayer, victim.user.username, PASSWORD);
    expectError(blocked, 429, "RATE_LIMITED", "11th failure-free attempt from the spraying address");
    assert.ok(Number(blocked.headers.get("retry-after")) >= 1, "Retry-After header");
    const elsewhere = await loginFrom(newAddress(), victim.user.username, PASSWORD);
    assert.equal(elsewhere.status, 200, `the owner from another address: ${elsewhere.text}`);
  });

  it("login: failures from one address do not lock the account's owner out elsewhere", async () => {
    const victim = await registerFrom();
    const attacker = newAddress();
    for (let i = 0; i < 5; i++) {
      expectError(await loginFrom(attacker, victim.user.username, `wrong ${i}`), 401, "UNAUTHORIZED", `guess ${i}`);
    }
    expectError(
      await loginFrom(attacker, victim.user.username, PASSWORD),
      429,
      "RATE_LIMITED",
      "the attacker's address, even with the right password",
    );
    const owner = await loginFrom(newAddress(), victim.user.username, PASSWORD);
    assert.equal(owner.status, 200, `the owner from a new address still gets in: ${owner.text}`);
  });

  it("login: a distributed attack on one username stops addresses that failed, not new ones", async () => {
    const victim = await registerFrom();
    const attackers = Array.from({ length: 8 }, newAddress);
    for (const a of attackers) {
      expectError(await loginFrom(a, victim.user.username, "guess"), 401, "UNAUTHORIZED", `guess from ${a}`);
    }
    expectError(
      await loginFrom(attackers[0], victim.user.username, "guess again"),
      429,
      "RATE_LIMITED",
      "an address that already failed, once the username's limit is reached",
    );
    const owner = await loginFrom(newAddress(), victim.user.username, PASSWORD);
    assert.equal(owner.status, 200, `a new address with the right password: ${owner.text}`);
  });

  describe("sockets", () => {
    let alice: Account;
    let bob: Account;
    let room: Room;
    let message: Message;
    let aliceSocket: ChatSocket;
    let bobSocket: ChatSocket;

    before(async () => {
      alice = await registerFrom();
      bob = await registerFrom();
      room = await createRoom(base, alice, { name: uniqueName("limits"), kind: "private", members: [bob.user.id] });
      aliceSocket = await connectChat(base, alice.accessToken, { rooms: [room.id] });
      bobSocket = await connectChat(base, bob.accessToken, { rooms: [room.id] });
      sockets.push(aliceSocket, bobSocket);
      message = okData(
        await call(aliceSocket, "message:send", { roomId: room.id, body: "react to me", clientMsgId: "limits-msg-1" }),
        "send",
      );
      await sleep(1_100); // the buckets refill after the set-up's events
    });

    it("1,000 alternating typing events: refused past the rate, and few reach the other member", async () => {
      const bobInbox = new Inbox(bobSocket, "bob");
      const started = Date.now();
      const acks = await Promise.all(
        Array.from({ length: 1_000 }, (_, i) => call(aliceSocket, "typing", { roomId: room.id, typing: i % 2 === 0 })),
      );
      const elapsed = (Date.now() - started) / 1000;
      const ok = acks.filter((a) => a.ok).length;
      const refused = acks.filter((a) => !a.ok);
      assert.ok(ok <= 10 + Math.ceil(5 * elapsed) + 1, `${ok} typing events accepted in ${elapsed} s`);
      assert.ok(refused.length > 0);
      for (const ack of refused.slice(0, 5)) {
        const error = expectAckError(ack, "RATE_LIMITED", "typing flood");
        assert.ok((error.retryAfter ?? 0) >= 1, "retryAfter on the ack");
      }
      await sleep(1_000);
      const heard = bobInbox.of("typing").length;
      assert.ok(heard <= ok, `bob heard ${heard} typing broadcasts for ${ok} accepted events`);
      assert.ok(heard <= 30, `bob heard ${heard} typing broadcasts`);
    });

    it("300 reaction toggles at once: refused past the burst", async () => {
      await sleep(2_100);
      const started = Date.now();
      const acks = await Promise.all(
        Array.from({ length: 300 }, () => call(aliceSocket, "reaction:toggle", { messageId: message.id, emoji: "👍" })),
      );
      const elapsed = (Date.now() - started) / 1000;
      const ok = acks.filter((a) => a.ok).length;
      assert.ok(ok <= 20 + Math.ceil(10 * elapsed) + 1, `${ok} toggles accepted in ${elapsed} s`);
      const refused = acks.filter((a) => !a.ok);
      assert.ok(refused.length >= 200, `${refused.length} refused`);
      expectAckError(refused[0], "RATE_LIMITED", "reaction flood");
      // Other events have their own buckets: a read marker still goes through.
      okData(await call(aliceSocket, "room:read", { roomId: room.id, seq: message.seq }), "room:read after the flood");
    });

    it("sync: at most SYNC_MAX_ROOMS rooms per call", async () => {
      const rooms = Object.fromEntries([room.id, 9001, 9002, 9003, 9004, 9005].map((id) => [String(id), 0]));
      const error = expectAckError(await call(aliceSocket, "sync", { rooms }), "VALIDATION_ERROR", "6 rooms");
      assert.ok(error.fields?.some((f) => f.field === "rooms"));
      okData(await call(aliceSocket, "sync", { rooms: { [room.id]: 0 } }), "one room");
    });

    it("open sockets per user are capped; closing one makes room", async () => {
      const carol = await registerFrom();
      const open: ChatSocket[] = [];
      for (let i = 0; i < 3; i++) {
        const outcome = await openFrom(carol.accessToken, newAddress());
        assert.ok(outcome.ok, `socket ${i + 1} of 3: ${outcome.ok ? "" : outcome.message}`);
        open.push(outcome.socket);
      }
      const refused = await openFrom(carol.accessToken, newAddress());
      assert.ok(!refused.ok, "a 4th socket for one user is refused");
      assert.equal(refused.message, "RATE_LIMITED");
      const data = refused.data as { code?: string; message?: string; retryAfter?: number };
      assert.equal(data?.code, "RATE_LIMITED");
      assert.match(data?.message ?? "", /connections for this user/);
      assert.ok((data?.retryAfter ?? 0) >= 1);

      open[0].close();
      await sleep(300);
      const again = await openFrom(carol.accessToken, newAddress());
      assert.ok(again.ok, `after closing one: ${again.ok ? "" : again.message}`);
    });

    it("open sockets per client address are capped", async () => {
      const address = newAddress();
      const users = await Promise.all(Array.from({ length: 5 }, () => registerFrom()));
      for (let i = 0; i < 4; i++) {
        const outcome = await openFrom(users[i].accessToken, address);
        assert.ok(outcome.ok, `socket ${i + 1} of 4 from one address: ${outcome.ok ? "" : outcome.message}`);
      }
      const refused = await openFrom(users[4].accessToken, address);
      assert.ok(!refused.ok, "a 5th socket from one address is refused");
      assert.equal(refused.message, "RATE_LIMITED");
      assert.match((refused.data as { message?: string })?.message ?? "", /connections from this address/);
      const other = await openFrom(users[4].accessToken, newAddress());
      assert.ok(other.ok, "the same user from another address");
    });
  });
});
