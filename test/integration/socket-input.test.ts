/**
 * Malformed input on the real-time channel, against one embedded node: every client event gets
 * bad payloads of every kind and must answer `{ ok:false, error:{ code, message, fields? } }` in
 * the contract's shape (VALIDATION_ERROR naming the field, NOT_FOUND / FORBIDDEN otherwise); the
 * node keeps serving. An oversized packet costs only the sending socket its connection, and the
 * handshake refuses foreign origins.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Socket } from "socket.io-client";
import type { ErrorCode } from "../../src/contracts/errors.js";
import type { Message, Room } from "../../src/contracts/objects.js";
import { api, register, uniqueName, type Account } from "../support/accounts-helpers.js";
import { createRoom, newClientMsgId, sendRest } from "../support/chat-helpers.js";
import { expectAckError } from "../support/errors.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { freePort } from "../support/servers.js";
import {
  call,
  connectChat,
  Inbox,
  okData,
  openSocket,
  rawCall,
  type AckOf,
  type ChatSocket,
} from "../support/sockets.js";
import { sleep, withTimeout } from "../support/wait.js";

type Case = [label: string, payload: unknown, code: ErrorCode | ErrorCode[], field?: string];

describe("socket input validation (embedded node)", () => {
  let node: NodeHandle;
  let base = "";
  let alice: Account;
  let bob: Account;
  let room: Room; // public, alice owner, bob member
  let stranger: Room; // public, bob's, alice not a member
  let secret: Room; // private, bob's
  let bobsMessage: Message;
  let secretMessage: Message;
  let socket: ChatSocket;
  let lastMessageSendAt = 0;

  /**
   * message:send passes the per-user rate limit (10/s) before anything else, so its cases are
   * spaced out to keep the limiter out of the answers.
   */
  async function ask(event: string, args: unknown[]): Promise<unknown> {
    if (event === "message:send") {
      const wait = lastMessageSendAt + 120 - Date.now();
      if (wait > 0) await sleep(wait);
      lastMessageSendAt = Date.now();
    }
    return rawCall(socket, event, args, 5_000);
  }

  async function runCases(event: string, cases: Case[]): Promise<void> {
    for (const [label, payload, code, field] of cases) {
      const what = `${event} ${label}`;
      const ack = await ask(event, [payload]);
      const error = expectAckError(ack, code, what);
      if (field !== undefined) {
        assert.ok(
          error.fields?.some((f) => f.field === field || f.field.startsWith(`${field}.`)),
          `${what}: expected a field error for "${field}", got ${JSON.stringify(error.fields)}`,
        );
      }
    }
    await assertStillServing(`after bad ${event} payloads`);
  }

  /** A valid send still succeeds and is delivered, on the same socket. */
  async function assertStillServing(what: string): Promise<void> {
    assert.equal(node.exitStatus(), undefined, `${what}: the node exited`);
    assert.ok(socket.connected, `${what}: the socket was disconnected`);
    const wait = lastMessageSendAt + 120 - Date.now();
    if (wait > 0) await sleep(wait);
    lastMessageSendAt = Date.now();
    const ack = await call(socket, "message:send", {
      roomId: room.id,
      body: "still here",
      clientMsgId: newClientMsgId(),
    });
    const m = okData(ack, what);
    assert.equal(m.roomId, room.id);
  }

  before(async () => {
    const port = await freePort();
    node = await startNode({ name: "socket-input", env: { PORT: String(port) }, ready: { http: port } });
    base = `http://127.0.0.1:${port}`;
    [alice, bob] = await Promise.all([register(base, uniqueName("alice")), register(base, uniqueName("bob"))]);
    room = await createRoom(base, alice, { name: uniqueName("in"), kind: "public" });
    assert.equal((await api(base, "POST", `/api/rooms/${room.id}/join`, { token: bob.accessToken })).status, 200);
    stranger = await createRoom(base, bob, { name: uniqueName("st"), kind: "public" });
    secret = await createRoom(base, bob, { name: uniqueName("se"), kind: "private" });
    bobsMessage = await sendRest(base, bob, room.id, "bob's words");
    secretMessage = await sendRest(base, bob, secret.id, "bob's secret");
    socket = await connectChat(base, alice.accessToken, { rooms: [room.id] });
  });
  after(async () => {
    socket?.close();
    await node?.stop();
  });

  // Payloads that are not an object at all, for every event.
  const notObjects: [string, unknown][] = [
    ["a string", "hello"],
    ["a number", 42],
    ["an array", [1, 2, 3]],
    ["null", null],
    ["true", true],
  ];
  const allEvents = [
    "message:send",
    "message:edit",
    "message:delete",
    "reaction:toggle",
    "room:read",
    "sync",
    "typing",
  ];

  it("a payload that is not an object is a VALIDATION_ERROR on every event", async () => {
    for (const event of allEvents) {
      await runCases(
        event,
        notObjects.map(([label, payload]) => [label, payload, "VALIDATION_ERROR"]),
      );
    }
  });

  it("an ack callback without any payload is answered (not left hanging)", async () => {
    for (const event of allEvents) {
      const ack = await ask(event, []);
      expectAckError(ack, "VALIDATION_ERROR", `${event} with only a callback`);
    }
    await assertStillServing("after callback-only events");
  });

  it("an unknown event with a callback is answered NOT_FOUND", async () => {
    const ack = await ask("no-such-event", [{ hello: "world" }]);
    expectAckError(ack, "NOT_FOUND", "an unknown event");
    await assertStillServing("after an unknown event");
  });

  it("extra arguments before the callback do not swallow the ack: the first argument is the payload", async () => {
    const clientMsgId = newClientMsgId();
    const ack = await ask("message:send", [
      { roomId: room.id, body: "with an extra argument", clientMsgId },
      "unexpected",
    ]);
    const sent = okData(ack as AckOf<"message:send">, "message:send with an extra argument");
    assert.deepEqual(
      [sent.roomId, sent.body, sent.clientMsgId, sent.userId],
      [room.id, "with an extra argument", clientMsgId, alice.user.id],
    );
    // An extra argument on a refused call is answered with the refusal, not ignored.
    expectAckError(
      await ask("message:send", [{ roomId: secret.id, body: "x", clientMsgId: newClientMsgId() }, 42, "more"]),
      "NOT_FOUND",
      "message:send to a private room of others, with extra arguments",
    );
  });

  it("message:send", async () => {
    const ok = () => ({ roomId: room.id, body: "hi", clientMsgId: newClientMsgId() });
    await runCases("message:send", [
      ["empty object", {}, "VALIDATION_ERROR", "roomId"],
      ["missing roomId", { body: "hi", clientMsgId: newClientMsgId() }, "VALIDATION_ERROR", "roomId"],
      ["roomId a word", { ...ok(), roomId: "abc" }, "VALIDATION_ERROR", "roomId"],
      ["roomId negative", { ...ok(), roomId: -1 }, "VALIDATION_ERROR", "roomId"],
      ["roomId zero", { ...ok(), roomId: 0 }, "VALIDATION_ERROR", "roomId"],
      ["roomId fractional", { ...ok(), roomId: 1.5 }, "VALIDATION_ERROR", "roomId"],
      ["roomId null", { ...ok(), roomId: null }, "VALIDATION_ERROR", "roomId"],
      ["roomId an object", { ...ok(), roomId: { id: room.id } }, "VALIDATION_ERROR", "roomId"],
      ["roomId an empty string", { ...ok(), roomId: "" }, "VALIDATION_ERROR", "roomId"],
      ["roomId huge", { ...ok(), roomId: 1e300 }, ["NOT_FOUND", "VALIDATION_ERROR"]],
      ["unknown room", { ...ok(), roomId: 99_999_999 }, "NOT_FOUND"],
      ["a private room of others", { ...ok(), roomId: secret.id }, "NOT_FOUND"],
      ["a public room one is not in", { ...ok(), roomId: stranger.id }, "FORBIDDEN"],
      ["missing body", { roomId: room.id, clientMsgId: newClientMsgId() }, "VALIDATION_ERROR", "body"],
      ["body a number", { ...ok(), body: 123 }, "VALIDATION_ERROR", "body"],
      ["body null", { ...ok(), body: null }, "VALIDATION_ERROR", "body"],
      ["body an array", { ...ok(), body: ["hi"] }, "VALIDATION_ERROR", "body"],
      ["body an object", { ...ok(), body: { text: "hi" } }, "VALIDATION_ERROR", "body"],
      ["body empty", { ...ok(), body: "" }, "VALIDATION_ERROR", "body"],
      ["body blank", { ...ok(), body: "   \n " }, "VALIDATION_ERROR", "body"],
      ["body 4001 characters", { ...ok(), body: "x".repeat(4001) }, "PAYLOAD_TOO_LARGE"],
      ["body 15,000 characters", { ...ok(), body: "x".repeat(15_000) }, "PAYLOAD_TOO_LARGE"],
      ["missing clientMsgId", { roomId: room.id, body: "hi" }, "VALIDATION_ERROR", "clientMsgId"],
      ["clientMsgId a number", { ...ok(), clientMsgId: 12345678 }, "VALIDATION_ERROR", "clientMsgId"],
      ["clientMsgId too short", { ...ok(), clientMsgId: "abc" }, "VALIDATION_ERROR", "clientMsgId"],
      ["clientMsgId bad characters", { ...ok(), clientMsgId: "abc def ghi" }, "VALIDATION_ERROR", "clientMsgId"],
      [
        "clientMsgId 10,000 characters",
        { ...ok(), clientMsgId: "a".repeat(10_000) },
        "VALIDATION_ERROR",
        "clientMsgId",
      ],
      ["replyTo a word", { ...ok(), replyTo: "abc" }, "VALIDATION_ERROR", "replyTo"],
      ["replyTo negative", { ...ok(), replyTo: -3 }, "VALIDATION_ERROR", "replyTo"],
      ["replyTo an object", { ...ok(), replyTo: {} }, "VALIDATION_ERROR", "replyTo"],
      ["replyTo unknown", { ...ok(), replyTo: 99_999_999 }, "VALIDATION_ERROR", "replyTo"],
      ["replyTo in another room", { ...ok(), replyTo: secretMessage.id }, "VALIDATION_ERROR", "replyTo"],
    ]);
  });

  // The shared id/seq rules accept numbers and digit strings only: `[5]` or `true` is not 5 or 1.
  it("ids and seqs are not coerced from arrays or booleans", async () => {
    const own = okData(
      (await ask("message:send", [{ roomId: room.id, body: "own", clientMsgId: newClientMsgId() }])) as never,
      "send",
    ) as Message;
    const cases: [string, string, unknown, string][] = [
      ["message:send", "roomId an array", { roomId: [room.id], body: "hi", clientMsgId: newClientMsgId() }, "roomId"],
      ["message:send", "roomId a boolean", { roomId: true, body: "hi", clientMsgId: newClientMsgId() }, "roomId"],
      ["message:edit", "messageId an array", { messageId: [own.id], body: "x" }, "messageId"],
      ["room:read", "seq an array", { roomId: room.id, seq: [1] }, "seq"],
      ["room:read", "seq a boolean", { roomId: room.id, seq: true }, "seq"],
    ];
    const wrong: string[] = [];
    for (const [event, label, payload, field] of cases) {
      const ack = (await ask(event, [payload])) as {
        ok: boolean;
        error?: { code: string; fields?: { field: string }[] };
      };
      if (ack.ok || ack.error?.code !== "VALIDATION_ERROR" || !ack.error.fields?.some((f) => f.field === field)) {
        wrong.push(`${event} ${label} → ${JSON.stringify(ack).slice(0, 120)}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("message:edit", async () => {
    const mine = okData(
      (await ask("message:send", [{ roomId: room.id, body: "mine", clientMsgId: newClientMsgId() }])) as never,
      "send",
    ) as Message;
    await runCases("message:edit", [
      ["empty object", {}, "VALIDATION_ERROR", "messageId"],
      ["messageId a word", { messageId: "abc", body: "x" }, "VALIDATION_ERROR", "messageId"],
      ["messageId negative", { messageId: -7, body: "x" }, "VALIDATION_ERROR", "messageId"],
      ["missing body", { messageId: mine.id }, "VALIDATION_ERROR", "body"],
      ["body a number", { messageId: mine.id, body: 5 }, "VALIDATION_ERROR", "body"],
      ["body blank", { messageId: mine.id, body: "  " }, "VALIDATION_ERROR", "body"],
      ["body too long", { messageId: mine.id, body: "y".repeat(4001) }, "PAYLOAD_TOO_LARGE"],
      ["unknown message", { messageId: 99_999_999, body: "x" }, "NOT_FOUND"],
      ["a message of a private room of others", { messageId: secretMessage.id, body: "x" }, "NOT_FOUND"],
      ["someone else's message", { messageId: bobsMessage.id, body: "x" }, "FORBIDDEN"],
      ["roomId not the message's room", { messageId: mine.id, roomId: stranger.id, body: "x" }, "NOT_FOUND"],
    ]);
  });

  it("message:delete", async () => {
    await runCases("message:delete", [
      ["empty object", {}, "VALIDATION_ERROR", "messageId"],
      ["messageId a word", { messageId: "x" }, "VALIDATION_ERROR", "messageId"],
      ["messageId negative", { messageId: -5 }, "VALIDATION_ERROR", "messageId"],
      ["messageId null", { messageId: null }, "VALIDATION_ERROR", "messageId"],
      ["messageId a huge string", { messageId: "9".repeat(10_000) }, ["VALIDATION_ERROR", "NOT_FOUND"]],
      ["unknown message", { messageId: 99_999_999 }, "NOT_FOUND"],
      ["a message of a private room of others", { messageId: secretMessage.id }, "NOT_FOUND"],
    ]);
  });

  it("reaction:toggle", async () => {
    await runCases("reaction:toggle", [
      ["empty object", {}, "VALIDATION_ERROR", "messageId"],
      ["missing emoji", { messageId: bobsMessage.id }, "VALIDATION_ERROR", "emoji"],
      ["emoji a number", { messageId: bobsMessage.id, emoji: 1 }, "VALIDATION_ERROR", "emoji"],
      ["emoji empty", { messageId: bobsMessage.id, emoji: "" }, "VALIDATION_ERROR", "emoji"],
      ["emoji huge", { messageId: bobsMessage.id, emoji: "🙂".repeat(5_000) }, "VALIDATION_ERROR", "emoji"],
      ["emoji an array", { messageId: bobsMessage.id, emoji: ["👍"] }, "VALIDATION_ERROR", "emoji"],
      ["messageId a word", { messageId: "abc", emoji: "👍" }, "VALIDATION_ERROR", "messageId"],
      ["unknown message", { messageId: 99_999_999, emoji: "👍" }, "NOT_FOUND"],
      ["a message of a private room of others", { messageId: secretMessage.id, emoji: "👍" }, "NOT_FOUND"],
    ]);
  });

  it("room:read", async () => {
    await runCases("room:read", [
      ["empty object", {}, "VALIDATION_ERROR", "roomId"],
      ["missing seq", { roomId: room.id }, "VALIDATION_ERROR", "seq"],
      ["roomId a word", { roomId: "abc", seq: 1 }, "VALIDATION_ERROR", "roomId"],
      ["seq a word", { roomId: room.id, seq: "abc" }, "VALIDATION_ERROR", "seq"],
      ["seq negative", { roomId: room.id, seq: -1 }, "VALIDATION_ERROR", "seq"],
      ["seq fractional", { roomId: room.id, seq: 2.5 }, "VALIDATION_ERROR", "seq"],
      ["unknown room", { roomId: 99_999_999, seq: 1 }, "NOT_FOUND"],
      ["a private room of others", { roomId: secret.id, seq: 1 }, "NOT_FOUND"],
      ["a public room one is not in", { roomId: stranger.id, seq: 1 }, "FORBIDDEN"],
    ]);
  });

  it("sync", async () => {
    const many = Object.fromEntries(Array.from({ length: 501 }, (_, i) => [String(i + 1), 0]));
    await runCases("sync", [
      ["empty object", {}, "VALIDATION_ERROR", "rooms"],
      ["rooms a string", { rooms: "abc" }, "VALIDATION_ERROR", "rooms"],
      ["rooms a number", { rooms: 5 }, "VALIDATION_ERROR", "rooms"],
      ["rooms null", { rooms: null }, "VALIDATION_ERROR", "rooms"],
      ["rooms an array", { rooms: [room.id] }, "VALIDATION_ERROR", "rooms"],
      ["a key that is not a number", { rooms: { abc: 0 } }, "VALIDATION_ERROR", "rooms"],
      ["a negative seq", { rooms: { [room.id]: -1 } }, "VALIDATION_ERROR", "rooms"],
      ["a seq that is a word", { rooms: { [room.id]: "x" } }, "VALIDATION_ERROR", "rooms"],
      ["a seq that is an object", { rooms: { [room.id]: {} } }, "VALIDATION_ERROR", "rooms"],
      ["a negative room id", { rooms: { "-1": 0 } }, ["VALIDATION_ERROR", "NOT_FOUND"]],
      ["a fractional room id", { rooms: { "1.5": 0 } }, ["VALIDATION_ERROR", "NOT_FOUND"]],
      ["unknown room", { rooms: { "99999999": 0 } }, "NOT_FOUND"],
      ["a private room of others", { rooms: { [secret.id]: 0 } }, "NOT_FOUND"],
      ["a public room one is not in", { rooms: { [room.id]: 0, [stranger.id]: 0 } }, "FORBIDDEN"],
      ["501 rooms", { rooms: many }, "VALIDATION_ERROR", "rooms"],
    ]);
    const good = okData(await call(socket, "sync", { rooms: { [room.id]: 0 } }), "a valid sync");
    assert.ok(good.rooms[room.id].messages.some((m) => m.id === bobsMessage.id));
  });

  it("typing", async () => {
    await runCases("typing", [
      ["empty object", {}, "VALIDATION_ERROR", "roomId"],
      ["roomId a word", { roomId: "abc", typing: true }, "VALIDATION_ERROR", "roomId"],
      ["roomId negative", { roomId: -2, typing: true }, "VALIDATION_ERROR", "roomId"],
      ["missing typing", { roomId: room.id }, "VALIDATION_ERROR", "typing"],
      ["typing a string", { roomId: room.id, typing: "yes" }, "VALIDATION_ERROR", "typing"],
      ["typing a number", { roomId: room.id, typing: 1 }, "VALIDATION_ERROR", "typing"],
      ["unknown room", { roomId: 99_999_999, typing: true }, ["FORBIDDEN", "NOT_FOUND"]],
      ["a private room of others", { roomId: secret.id, typing: true }, ["FORBIDDEN", "NOT_FOUND"]],
      ["a public room one is not in", { roomId: stranger.id, typing: true }, "FORBIDDEN"],
    ]);
  });

  it("events without an ack callback are handled quietly and the node keeps working", async () => {
    const raw = socket as unknown as Socket;
    for (const event of allEvents) {
      for (const [, payload] of notObjects) raw.emit(event, payload);
      raw.emit(event, {});
      raw.emit(event, { roomId: "abc", messageId: -1, rooms: "x", typing: "y" });
    }
    raw.emit("message:send");
    raw.emit("no-such-event", { hello: "world" });
    // A valid send without a callback is still stored.
    const clientMsgId = newClientMsgId("noack");
    await sleep(150);
    raw.emit("message:send", { roomId: room.id, body: "sent without a callback", clientMsgId });
    await sleep(300);
    await assertStillServing("after events without callbacks");
    const history = await api(base, "GET", `/api/rooms/${room.id}/messages?limit=10`, { token: alice.accessToken });
    assert.ok(
      (history.body.messages as Message[]).some((m) => m.clientMsgId === clientMsgId),
      "the send without a callback was stored",
    );
  });

  it("a valid 4,000-character body of 4-byte characters fits through the socket", async () => {
    await sleep(150);
    lastMessageSendAt = Date.now();
    const ack = await call(socket, "message:send", {
      roomId: room.id,
      body: "😀".repeat(4000),
      clientMsgId: newClientMsgId(),
    });
    const m = okData(ack, "4000 emoji");
    assert.equal([...m.body].length, 4000);
  });

  it("a packet over the size limit disconnects only that socket; the server stays up", async () => {
    for (const transport of ["websocket", "polling"] as const) {
      const victim = await connectChat(base, bob.accessToken, { transports: [transport], rooms: [room.id] });
      const watcher = await connectChat(base, bob.accessToken, { rooms: [room.id] });
      const watcherInbox = new Inbox(watcher, "watcher");
      const victimInbox = new Inbox(victim, `victim (${transport})`);
      let acked = false;
      victim.emit("message:send", { roomId: room.id, body: "z".repeat(200_000), clientMsgId: newClientMsgId() }, () => {
        acked = true;
      });
      await withTimeout(
        victimInbox.disconnected,
        10_000,
        `${transport}: the oversized packet did not disconnect the socket`,
      );
      assert.equal(acked, false, `${transport}: the oversized send was acknowledged`);
      assert.ok(watcher.connected, `${transport}: another socket of the same user was dropped too`);

      assert.equal(node.exitStatus(), undefined, "the node exited");
      const health = await api(base, "GET", "/api/health");
      assert.equal(health.status, 200, health.text);
      const again = await connectChat(base, bob.accessToken, { rooms: [room.id] });
      const clientMsgId = newClientMsgId();
      const ack = await call(again, "message:send", { roomId: room.id, body: `after ${transport}`, clientMsgId });
      okData(ack, "a send on a new socket");
      await watcherInbox.waitFor("message:new", (m) => m.clientMsgId === clientMsgId);
      assert.ok(
        !watcherInbox.of("message:new").some((m) => m.body.startsWith("zzz")),
        "the oversized message went out",
      );
      for (const s of [victim, watcher, again]) s.close();
    }
  });

  describe("handshake origin", () => {
    /** Connects (and closes again) with the given Origin header. */
    async function tryConnect(
      transport: "websocket" | "polling",
      origin: string | undefined,
    ): Promise<{ ok: true } | { ok: false; message: string }> {
      const outcome = await openSocket(base, alice.accessToken, {
        transports: [transport],
        timeoutMs: 5_000,
        extraHeaders: origin === undefined ? undefined : { origin },
      });
      if (!outcome.ok) return { ok: false, message: outcome.message };
      outcome.socket.close();
      return { ok: true };
    }

    for (const transport of ["websocket", "polling"] as const) {
      it(`refuses a foreign Origin (${transport})`, async () => {
        const outcome = await tryConnect(transport, "http://evil.example");
        assert.equal(outcome.ok, false, `${transport}: a foreign origin was accepted`);
      });
      it(`allows the same origin and no origin (${transport})`, async () => {
        const port = new URL(base).port;
        assert.deepEqual(await tryConnect(transport, `http://127.0.0.1:${port}`), { ok: true });
        assert.deepEqual(await tryConnect(transport, undefined), { ok: true });
      });
    }

    it("refuses a look-alike origin on another port or scheme-less host", async () => {
      const port = Number(new URL(base).port);
      for (const origin of [`http://127.0.0.1:${port + 1}`, `http://127.0.0.1:${port}.evil.example`, "null"]) {
        const outcome = await tryConnect("websocket", origin);
        assert.equal(outcome.ok, false, `origin ${origin} was accepted`);
      }
    });
  });
});
