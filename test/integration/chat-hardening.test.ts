/**
 * Findings of the hostile review (issue 10) in chat and users, against one embedded node (SQLite):
 *   - reaction emoji named like Object.prototype members (`__proto__`, `constructor`, `toString`)
 *     are plain keys: the message still reads, the reaction toggles off, the message deletes;
 *   - a non-member can't tell from `replyTo` which room a message is in (membership first); a
 *     replayed clientMsgId is re-checked against membership and answers CONFLICT in another room;
 *   - user text (display names, room names, topics, bodies, emoji): control characters, NUL,
 *     invisible-only text and bidi controls are refused (bodies: bidi controls stripped);
 *   - a user in over 1,000 rooms (inserted through the store) lists them;
 *   - others can put one user in at most ROOM_ADDS_PER_HOUR rooms an hour (here 3).
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies of a black-box HTTP API */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ChatStore } from "../../src/chat/store.js";
import type { Message, Room } from "../../src/contracts/objects.js";
import { openSql, releaseSql, type SqlTarget } from "../../src/infra/sql.js";
import { api, PASSWORD, register, uniqueName, type Account } from "../support/accounts-helpers.js";
import { createRoom, newClientMsgId, sendRest } from "../support/chat-helpers.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { freePort } from "../support/servers.js";
import { Outbox } from "../../src/infra/outbox.js";
import { expectAckError, expectError, expectValidation } from "../support/errors.js";
import { call, connectChat, okData } from "../support/sockets.js";

const ROOM_ADDS_PER_HOUR = 3;

describe("chat hardening (embedded node)", () => {
  let node: NodeHandle;
  let base = "";

  const get = (who: Account, path: string) => api(base, "GET", path, { token: who.accessToken });
  const post = (who: Account, path: string, body: unknown = {}) =>
    api(base, "POST", path, { token: who.accessToken, body });
  const patch = (who: Account, path: string, body: unknown) =>
    api(base, "PATCH", path, { token: who.accessToken, body });
  const del = (who: Account, path: string) => api(base, "DELETE", path, { token: who.accessToken });
  const users = (...prefixes: string[]) => Promise.all(prefixes.map((p) => register(base, uniqueName(p))));

  before(async () => {
    const port = await freePort();
    node = await startNode({
      name: "chat-hardening",
      env: { PORT: String(port), ROOM_ADDS_PER_HOUR: String(ROOM_ADDS_PER_HOUR) },
      ready: { http: port },
    });
    base = `http://127.0.0.1:${port}`;
  });
  after(() => node?.stop());

  describe("reaction emoji named like Object.prototype members", () => {
    const NAMES = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"];

    it("are stored and read as plain keys; every read of the message works; they toggle off; the message deletes", async () => {
      const [alice, bob] = await users("rxa", "rxb");
      const room = await createRoom(base, alice, { name: uniqueName("rx"), kind: "public" });
      assert.equal((await post(bob, `/api/rooms/${room.id}/join`)).status, 200);
      const m = await sendRest(base, alice, room.id, "react to me");
      const url = `/api/rooms/${room.id}/messages/${m.id}/reactions`;

      for (const emoji of NAMES) {
        const res = await post(bob, url, { emoji });
        assert.equal(res.status, 200, `${emoji}: ${res.text}`);
      }
      const expected = Object.fromEntries(NAMES.map((e) => [e, [bob.user.id]]));
      const check = (reactions: Record<string, number[]>, what: string) => {
        assert.equal(Object.getPrototypeOf(reactions), Object.prototype, `${what}: a plain JSON object`);
        assert.deepEqual(
          Object.entries(reactions).sort(),
          Object.entries(expected).sort(),
          `${what}: ${JSON.stringify(reactions)}`,
        );
      };

      const history = await get(alice, `/api/rooms/${room.id}/messages`);
      assert.equal(history.status, 200, history.text);
      check(history.body.messages.find((x: Message) => x.id === m.id).reactions, "history");
      const one = await get(alice, `/api/rooms/${room.id}`);
      assert.equal(one.status, 200, one.text);
      check(one.body.lastMessage.reactions, "GET /api/rooms/:id");
      const list = await get(alice, "/api/rooms");
      assert.equal(list.status, 200, list.text);
      check(list.body.rooms.find((r: Room) => r.id === room.id).lastMessage.reactions, "GET /api/rooms");

      // The same over the socket: a sync and a toggle.
      const socket = await connectChat(base, bob.accessToken, { rooms: [room.id] });
      try {
        const synced = okData(await call(socket, "sync", { rooms: { [room.id]: 0 } }), "sync");
        check(synced.rooms[room.id].messages[0].reactions, "sync");
        const toggled = okData(
          await call(socket, "reaction:toggle", { messageId: m.id, emoji: "__proto__" }),
          "toggle",
        );
        assert.equal(Object.hasOwn(toggled.reactions, "__proto__"), false, JSON.stringify(toggled.reactions));
        okData(await call(socket, "reaction:toggle", { messageId: m.id, emoji: "__proto__" }), "toggle back");
      } finally {
        socket.close();
      }

      // Toggled off one by one.
      let last: any;
      for (const emoji of NAMES) {
        last = await post(bob, url, { emoji });
        assert.equal(last.status, 200, `${emoji} off: ${last.text}`);
      }
      assert.deepEqual(Object.keys(last.body.reactions), []);

      // And a message carrying them deletes.
      assert.equal((await post(bob, url, { emoji: "constructor" })).status, 200);
      assert.equal((await del(alice, `/api/rooms/${room.id}/messages/${m.id}`)).status, 204);
      const after = await get(alice, `/api/rooms/${room.id}/messages`);
      assert.equal(after.status, 200, after.text);
      const tomb = after.body.messages.find((x: Message) => x.id === m.id);
      assert.equal(tomb.deleted, true);
      assert.deepEqual(tomb.reactions, {});
    });
  });

  describe("replyTo and replayed clientMsgId", () => {
    it("a non-member gets the same answer whichever room the replied-to message is in", async () => {
      const [alice, dave] = await users("rpa", "rpd");
      const secret = await createRoom(base, alice, { name: uniqueName("secret"), kind: "private" });
      const other = await createRoom(base, alice, { name: uniqueName("other"), kind: "private" });
      const pub = await createRoom(base, alice, { name: uniqueName("pub"), kind: "public" });
      const inSecret = await sendRest(base, alice, secret.id, "secret");
      const inOther = await sendRest(base, alice, other.id, "other");
      const send = (roomId: number, replyTo: number) =>
        post(dave, `/api/rooms/${roomId}/messages`, { body: "hi", clientMsgId: newClientMsgId(), replyTo });

      // Private room: NOT_FOUND, whether replyTo is in it, in another room or nowhere.
      expectError(await send(secret.id, inSecret.id), 404, "NOT_FOUND", "replyTo in the room");
      expectError(await send(secret.id, inOther.id), 404, "NOT_FOUND", "replyTo in another room");
      expectError(await send(secret.id, 99_999_999), 404, "NOT_FOUND", "replyTo unknown");
      // Public room: FORBIDDEN, likewise.
      expectError(await send(pub.id, inSecret.id), 403, "FORBIDDEN", "public, replyTo elsewhere");
      expectError(await send(pub.id, 99_999_999), 403, "FORBIDDEN", "public, replyTo unknown");
      // A member still gets the field error.
      expectValidation(
        await post(alice, `/api/rooms/${pub.id}/messages`, {
          body: "hi",
          clientMsgId: newClientMsgId(),
          replyTo: inSecret.id,
        }),
        "replyTo",
      );
    });

    it("a replayed clientMsgId: the original to a member, NOT_FOUND once removed, CONFLICT in another room", async () => {
      const [alice, bob] = await users("rca", "rcb");
      const secret = await createRoom(base, alice, {
        name: uniqueName("sec"),
        kind: "private",
        members: [bob.user.id],
      });
      const pub = await createRoom(base, bob, { name: uniqueName("bobs"), kind: "public" });
      const clientMsgId = newClientMsgId("replay");
      const first = await post(bob, `/api/rooms/${secret.id}/messages`, { body: "first", clientMsgId });
      assert.equal(first.status, 201, first.text);
      const again = await post(bob, `/api/rooms/${secret.id}/messages`, { body: "first", clientMsgId });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.id, first.body.id);

      // The same clientMsgId sent to another room (where bob is a member): CONFLICT, not the original.
      const elsewhere = await post(bob, `/api/rooms/${pub.id}/messages`, { body: "first", clientMsgId });
      expectError(elsewhere, 409, "CONFLICT", "replay into another room");
      assert.ok(!elsewhere.text.includes("first"), elsewhere.text);

      // Alice removes bob: his replay must not show him the room's message any more.
      assert.equal((await del(alice, `/api/rooms/${secret.id}/members/${bob.user.id}`)).status, 204);
      const removed = await post(bob, `/api/rooms/${secret.id}/messages`, { body: "first", clientMsgId });
      expectError(removed, 404, "NOT_FOUND", "replay after removal");

      // Over the socket too.
      const socket = await connectChat(base, bob.accessToken);
      try {
        const ack = await call(socket, "message:send", { roomId: secret.id, body: "first", clientMsgId });
        expectAckError(ack, "NOT_FOUND", "socket replay after removal");
        const ack2 = await call(socket, "message:send", { roomId: pub.id, body: "first", clientMsgId });
        expectAckError(ack2, "CONFLICT", "socket replay into another room");
      } finally {
        socket.close();
      }
    });
  });

  describe("user text", () => {
    const BAD_LINE: [string, string][] = [
      ["NUL", "ab\u0000cd"],
      ["a bell", "ab\u0007"],
      ["a line break", "two\nlines"],
      ["a tab", "a\tb"],
      ["DEL", "a\u007fb"],
      ["a C1 control", "a\u0085b"],
      ["right-to-left override", "abc\u202Egnp.exe"],
      ["left-to-right embedding", "\u202Aabc"],
      ["pop directional formatting", "abc\u202C"],
      ["first strong isolate", "\u2068abc\u2069"],
      ["zero-width spaces only", "\u200B\u200B"],
      ["zero-width joiner and word joiner only", "\u200D\u2060"],
      ["Hangul fillers only", "\u3164\u115F"],
      ["a lone surrogate", "ab\uD800"],
    ];

    it("display names: refused with VALIDATION_ERROR naming displayName (register and PATCH /users/me)", async () => {
      const [erin] = await users("txe");
      for (const [label, value] of BAD_LINE) {
        expectValidation(await patch(erin, "/api/users/me", { displayName: value }), "displayName", `PATCH: ${label}`);
      }
      // Registration shares the rule (a few cases: registrations are throttled per address).
      for (const value of ["ab\u0000cd", "abc\u202Egnp.exe", "\u200B\u200B"]) {
        const reg = await api(base, "POST", "/api/auth/register", {
          body: { username: uniqueName("txr"), password: PASSWORD, displayName: value },
        });
        expectValidation(reg, "displayName", `register: ${JSON.stringify(value)}`);
      }
      const fine = "Ünïcode 名前 עברית 👨‍👩‍👧";
      const ok = await patch(erin, "/api/users/me", { displayName: fine });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.displayName, fine);
    });

    it("room names and topics: refused with VALIDATION_ERROR naming the field (create and PATCH)", async () => {
      const [alice] = await users("txa");
      const room = await createRoom(base, alice, { name: uniqueName("tx"), kind: "public", topic: "fine" });
      for (const [label, value] of BAD_LINE) {
        expectValidation(await post(alice, "/api/rooms", { name: value, kind: "public" }), "name", `create: ${label}`);
        expectValidation(
          await post(alice, "/api/rooms", { name: uniqueName("t"), kind: "public", topic: value }),
          "topic",
          `create topic: ${label}`,
        );
        expectValidation(await patch(alice, `/api/rooms/${room.id}`, { name: value }), "name", `PATCH: ${label}`);
        expectValidation(
          await patch(alice, `/api/rooms/${room.id}`, { topic: value }),
          "topic",
          `PATCH topic: ${label}`,
        );
      }
      // An empty topic still clears it; a name in a right-to-left script is fine.
      const cleared = await patch(alice, `/api/rooms/${room.id}`, { name: "שלום world", topic: "" });
      assert.equal(cleared.status, 200, cleared.text);
      assert.equal(cleared.body.topic, "");
      assert.equal(cleared.body.name, "שלום world");
    });

    it("message bodies: controls and invisible-only text refused, bidi controls stripped, line breaks and tabs kept", async () => {
      const [alice] = await users("txm");
      const room = await createRoom(base, alice, { name: uniqueName("txm"), kind: "public" });
      const url = `/api/rooms/${room.id}/messages`;
      const send = (body: string) => post(alice, url, { body, clientMsgId: newClientMsgId() });
      for (const [label, body] of [
        ["NUL", "hello\u0000"],
        ["a bell", "ding\u0007"],
        ["an escape", "\u001b[31mred"],
        ["a C1 control", "a\u009bb"],
        ["zero-width only", "\u200B\u200C\u200D\uFEFF"],
        ["bidi controls only", "\u202E\u2066"],
        ["braille blanks and spaces", "\u2800 \u2800"],
        ["a lone surrogate", "x\uDC00"],
      ]) {
        expectValidation(await send(body), "body", label);
      }
      const kept = await send("line one\r\nline two\n\tindented");
      assert.equal(kept.status, 201, kept.text);
      assert.equal(kept.body.body, "line one\nline two\n\tindented");
      const stripped = await send("invoice \u202Efdp.exe\u202C and \u2067مرحبا\u2069 ok");
      assert.equal(stripped.status, 201, stripped.text);
      assert.equal(stripped.body.body, "invoice fdp.exe and مرحبا ok");
      // RLM/LRM marks and emoji sequences with joiners stay.
      const marks = await send("a\u200Fb 👨‍👩‍👧 ❤️");
      assert.equal(marks.status, 201, marks.text);
      assert.equal(marks.body.body, "a\u200Fb 👨‍👩‍👧 ❤️");

      // Edits, the socket and reaction emoji follow the same rules.
      expectValidation(await patch(alice, `${url}/${kept.body.id}`, { body: "x\u0000" }), "body", "edit NUL");
      const socket = await connectChat(base, alice.accessToken);
      try {
        const ack = await call(socket, "message:send", {
          roomId: room.id,
          body: "\u200B",
          clientMsgId: newClientMsgId(),
        });
        const error = expectAckError(ack, "VALIDATION_ERROR", "socket zero-width body");
        assert.ok(
          error.fields?.some((f) => f.field === "body"),
          JSON.stringify(error),
        );
      } finally {
        socket.close();
      }
      expectValidation(await post(alice, `${url}/${kept.body.id}/reactions`, { emoji: "\u202E👍" }), "emoji", "emoji");
      expectValidation(await post(alice, `${url}/${kept.body.id}/reactions`, { emoji: "\u200B" }), "emoji", "emoji");
    });
  });

  describe("a user in more than 1,000 rooms", () => {
    it("GET /api/rooms lists them all with their last messages (SQLite)", async () => {
      const ROOMS = 1_050;
      const [frank] = await users("many");
      const target: SqlTarget = { databaseUrl: undefined, dataDir: node.dataDir };
      const db = openSql(target);
      try {
        const store = new ChatStore(db, new Outbox("chat", "test-node"));
        const trace = { requestId: null };
        const started = Date.now();
        const ids: number[] = [];
        for (let i = 0; i < ROOMS; i++) {
          const id = await store.createRoom({ name: `bulk ${i}`, kind: "private", createdBy: frank.user.id }, trace);
          await store.send(
            { roomId: id, userId: frank.user.id, body: `last of ${i}`, clientMsgId: `bulk-${id}-1` },
            trace,
          );
          ids.push(id);
        }
        const [first] = (await store.after(ids[0], 0, 1)).messages;
        await store.toggleReaction(first, frank.user.id, "🎉", trace);
        console.log(`# ${ROOMS} rooms with a message each inserted in ${Date.now() - started} ms`);

        const t0 = Date.now();
        const res = await get(frank, "/api/rooms");
        assert.equal(res.status, 200, res.text.slice(0, 400));
        console.log(`# GET /api/rooms with ${ROOMS} rooms: ${Date.now() - t0} ms`);
        const rooms: Room[] = res.body.rooms;
        assert.equal(rooms.length, ROOMS);
        const byId = new Map(rooms.map((r) => [r.id, r]));
        ids.forEach((id, i) => {
          const room = byId.get(id);
          assert.ok(room, `room ${id} listed`);
          assert.equal(room.memberCount, 1);
          assert.equal(room.lastSeq, 1);
          assert.equal(room.unread, 0);
          assert.equal(room.lastMessage?.body, `last of ${i}`);
        });
        assert.deepEqual(byId.get(ids[0])?.lastMessage?.reactions, { "🎉": [frank.user.id] });
      } finally {
        await releaseSql(target);
      }
    });
  });

  describe("rooms others can put a user in", () => {
    it(`at most ROOM_ADDS_PER_HOUR (${ROOM_ADDS_PER_HOUR}) an hour: invites, initial members and direct rooms; RATE_LIMITED beyond`, async () => {
      const [gina, alice, bob, carol, dave] = await users("gina", "caa", "cab", "cac", "cad");

      // Three rooms by others: an initial membership, an invite, a direct room.
      await createRoom(base, alice, { name: uniqueName("c1"), kind: "private", members: [gina.user.id] });
      const bobs = await createRoom(base, bob, { name: uniqueName("c2"), kind: "public" });
      assert.equal((await post(bob, `/api/rooms/${bobs.id}/members`, { userId: gina.user.id })).status, 201);
      assert.equal((await post(carol, "/api/rooms/direct", { userId: gina.user.id })).status, 201);

      // A fourth, in every way: refused in the contract's shape, and nothing changes.
      const name = uniqueName("c4");
      const refused = expectError(
        await post(alice, "/api/rooms", { name, kind: "private", members: [dave.user.id, gina.user.id] }),
        429,
        "RATE_LIMITED",
        "create with gina",
      );
      assert.ok(refused.retryAfter && refused.retryAfter > 0 && refused.retryAfter <= 3600, JSON.stringify(refused));
      assert.match(refused.message, /rooms by others/);
      const alicesRooms = (await get(alice, "/api/rooms")).body.rooms as Room[];
      assert.ok(!alicesRooms.some((r) => r.name === name), "the refused room was not created");
      assert.equal(((await get(dave, "/api/rooms")).body.rooms as Room[]).length, 0, "nor dave added");

      const other = await createRoom(base, bob, { name: uniqueName("c5"), kind: "public" });
      expectError(await post(bob, `/api/rooms/${other.id}/members`, { userId: gina.user.id }), 429, "RATE_LIMITED");
      expectError(await post(dave, "/api/rooms/direct", { userId: gina.user.id }), 429, "RATE_LIMITED");
      assert.equal(((await get(gina, "/api/rooms")).body.rooms as Room[]).length, 3);

      // Gina herself is not limited, nor is anyone else.
      assert.equal((await post(gina, `/api/rooms/${other.id}/join`)).status, 200);
      await createRoom(base, gina, { name: uniqueName("own"), kind: "private", members: [dave.user.id] });
      assert.equal((await post(bob, `/api/rooms/${other.id}/members`, { userId: dave.user.id })).status, 201);
      // An existing direct room opens again.
      assert.equal((await post(carol, "/api/rooms/direct", { userId: gina.user.id })).status, 200);
    });
  });
});
