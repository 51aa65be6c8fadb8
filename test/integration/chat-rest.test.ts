/**
 * Rooms and messages over REST against one embedded node (all services in one process, SQLite):
 * every endpoint of docs/API.md for rooms and messages, with its success status and shape, and
 * the permission edges (member / non-member, public / private, owner / member).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Message, Room, User } from "../../src/contracts/objects.js";
import { api, register, uniqueName, type Account } from "../support/accounts-helpers.js";
import {
  assertMessageShape,
  assertRoomShape,
  createRoom,
  newClientMsgId,
  range,
  sendRest,
} from "../support/chat-helpers.js";
import { expectError, expectValidation } from "../support/errors.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { freePort } from "../support/servers.js";

describe("chat over REST (embedded node)", () => {
  let node: NodeHandle;
  let base = "";
  let alice: Account;
  let bob: Account;
  let carol: Account;
  let dave: Account;

  const get = (who: Account, path: string) => api(base, "GET", path, { token: who.accessToken });
  const post = (who: Account, path: string, body: unknown = {}) =>
    api(base, "POST", path, { token: who.accessToken, body });
  const patch = (who: Account, path: string, body: unknown) =>
    api(base, "PATCH", path, { token: who.accessToken, body });
  const del = (who: Account, path: string) => api(base, "DELETE", path, { token: who.accessToken });
  const myRooms = async (who: Account): Promise<Room[]> => {
    const res = await get(who, "/api/rooms");
    assert.equal(res.status, 200, res.text);
    return res.body.rooms;
  };

  before(async () => {
    const port = await freePort();
    node = await startNode({ name: "chat-rest", env: { PORT: String(port) }, ready: { http: port } });
    base = `http://127.0.0.1:${port}`;
    [alice, bob, carol, dave] = await Promise.all(
      ["alice", "bob", "carol", "dave"].map((p) => register(base, uniqueName(p))),
    );
  });
  after(() => node?.stop());

  describe("rooms", () => {
    it("POST /api/rooms creates a public room: 201, Location, the caller is owner", async () => {
      const name = uniqueName("pub");
      const res = await post(alice, "/api/rooms", { name, kind: "public", topic: "general talk" });
      assert.equal(res.status, 201, res.text);
      const room: Room = res.body;
      assertRoomShape(room);
      assert.equal(res.headers.get("location"), `/api/rooms/${room.id}`);
      assert.equal(room.name, name);
      assert.equal(room.kind, "public");
      assert.equal(room.topic, "general talk");
      assert.equal(room.createdBy, alice.user.id);
      assert.equal(room.memberCount, 1);
      assert.equal(room.lastSeq, 0);
      assert.equal(room.role, "owner");
      assert.equal(room.unread, 0);
      assert.equal(room.lastReadSeq, 0);
    });

    it("POST /api/rooms creates a private room with initial members", async () => {
      const res = await post(alice, "/api/rooms", {
        name: uniqueName("priv"),
        kind: "private",
        members: [bob.user.id],
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.kind, "private");
      assert.equal(res.body.memberCount, 2);
      assert.equal(res.body.topic, "");
      const forBob = await get(bob, `/api/rooms/${res.body.id}`);
      assert.equal(forBob.status, 200, forBob.text);
      assert.equal(forBob.body.role, "member");
    });

    it("POST /api/rooms rejects bad input with 422 and the field", async () => {
      expectValidation(await post(alice, "/api/rooms", { kind: "public" }), "name");
      expectValidation(await post(alice, "/api/rooms", { name: "x", kind: "direct" }), "kind");
      expectValidation(await post(alice, "/api/rooms", { name: "   ", kind: "public" }), "name");
      expectValidation(await post(alice, "/api/rooms", { name: "x".repeat(81), kind: "public" }), "name");
      expectValidation(await post(alice, "/api/rooms", { name: "x", kind: "public", topic: "t".repeat(251) }), "topic");
      expectValidation(
        await post(alice, "/api/rooms", { name: "x", kind: "private", members: [99_999_999] }),
        "members",
      );
      expectError(await api(base, "POST", "/api/rooms", { body: { name: "x", kind: "public" } }), 401, "UNAUTHORIZED");
    });

    it("POST /api/rooms/direct: 201 then 200 with the same room, named after the other user on each side", async () => {
      const first = await post(alice, "/api/rooms/direct", { userId: bob.user.id });
      assert.equal(first.status, 201, first.text);
      const room: Room = first.body;
      assertRoomShape(room);
      assert.equal(room.kind, "direct");
      assert.equal(room.name, bob.user.username);
      assert.equal(room.memberCount, 2);
      assert.equal(first.headers.get("location"), `/api/rooms/${room.id}`);

      const again = await post(alice, "/api/rooms/direct", { userId: bob.user.id });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.id, room.id);
      assert.equal(again.body.name, bob.user.username);

      const fromBob = await post(bob, "/api/rooms/direct", { userId: alice.user.id });
      assert.equal(fromBob.status, 200, fromBob.text);
      assert.equal(fromBob.body.id, room.id);
      assert.equal(fromBob.body.name, alice.user.username);

      assert.equal((await get(alice, `/api/rooms/${room.id}`)).body.name, bob.user.username);
      assert.equal((await get(bob, `/api/rooms/${room.id}`)).body.name, alice.user.username);
      assert.equal((await myRooms(alice)).find((r) => r.id === room.id)?.name, bob.user.username);
      assert.equal((await myRooms(bob)).find((r) => r.id === room.id)?.name, alice.user.username);

      // Not visible to a third user; not joinable, not leavable.
      expectError(await get(carol, `/api/rooms/${room.id}`), 404, "NOT_FOUND");
      expectError(await post(alice, `/api/rooms/${room.id}/leave`), 403, "FORBIDDEN");
      expectError(await post(alice, "/api/rooms/direct", { userId: 99_999_999 }), 404, "NOT_FOUND");
      expectValidation(await post(alice, "/api/rooms/direct", { userId: "abc" }), "userId");
    });

    it("GET /api/rooms/public browses public rooms only, with a prefix and a limit", async () => {
      const prefix = uniqueName("brw");
      const pub1 = await createRoom(base, alice, { name: `${prefix}-one`, kind: "public" });
      const pub2 = await createRoom(base, bob, { name: `${prefix}-two`, kind: "public" });
      await createRoom(base, alice, { name: `${prefix}-secret`, kind: "private" });

      const res = await get(carol, `/api/rooms/public?q=${prefix}`);
      assert.equal(res.status, 200, res.text);
      const rooms: Room[] = res.body.rooms;
      assert.deepEqual(
        rooms.map((r) => r.id),
        [pub1.id, pub2.id],
      );
      for (const r of rooms) {
        assertRoomShape(r);
        assert.equal(r.kind, "public");
        assert.equal(r.role, undefined, "a non-member has no role");
      }
      const mine = await get(alice, `/api/rooms/public?q=${prefix}`);
      assert.equal(mine.body.rooms.find((r: Room) => r.id === pub1.id).role, "owner");

      const limited = await get(carol, `/api/rooms/public?q=${prefix}&limit=1`);
      assert.equal(limited.status, 200, limited.text);
      assert.equal(limited.body.rooms.length, 1);
      expectValidation(await get(carol, "/api/rooms/public?limit=0"), "limit");
    });

    it("GET /api/rooms/:id: members and anyone for a public room; 404 for a private room's non-member", async () => {
      const pub = await createRoom(base, alice, { name: uniqueName("g"), kind: "public" });
      const priv = await createRoom(base, alice, { name: uniqueName("g"), kind: "private" });
      const asOwner = await get(alice, `/api/rooms/${pub.id}`);
      assert.equal(asOwner.status, 200, asOwner.text);
      assert.equal(asOwner.body.role, "owner");
      const asStranger = await get(bob, `/api/rooms/${pub.id}`);
      assert.equal(asStranger.status, 200, asStranger.text);
      assert.equal(asStranger.body.role, undefined);
      assert.equal(asStranger.body.unread, undefined);
      expectError(await get(bob, `/api/rooms/${priv.id}`), 404, "NOT_FOUND");
      expectError(await get(bob, "/api/rooms/99999999"), 404, "NOT_FOUND");
      expectValidation(await get(bob, "/api/rooms/abc"), "id");
    });

    it("join: public 200 (idempotent), private 403; leave: 204", async () => {
      const pub = await createRoom(base, alice, { name: uniqueName("j"), kind: "public" });
      const priv = await createRoom(base, alice, { name: uniqueName("j"), kind: "private" });

      const joined = await post(bob, `/api/rooms/${pub.id}/join`);
      assert.equal(joined.status, 200, joined.text);
      assertRoomShape(joined.body);
      assert.equal(joined.body.id, pub.id);
      assert.equal(joined.body.role, "member");
      assert.equal(joined.body.memberCount, 2);
      const again = await post(bob, `/api/rooms/${pub.id}/join`);
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.memberCount, 2);
      assert.ok((await myRooms(bob)).some((r) => r.id === pub.id));

      expectError(await post(bob, `/api/rooms/${priv.id}/join`), 403, "FORBIDDEN", "join a private room");
      expectError(
        await post(alice, `/api/rooms/${priv.id}/join`),
        403,
        "FORBIDDEN",
        "join a private room as its owner",
      );
      expectError(await post(bob, "/api/rooms/99999999/join"), 404, "NOT_FOUND");

      const left = await post(bob, `/api/rooms/${pub.id}/leave`);
      assert.equal(left.status, 204, left.text);
      assert.equal(left.text, "");
      assert.ok(!(await myRooms(bob)).some((r) => r.id === pub.id));
      assert.equal((await get(alice, `/api/rooms/${pub.id}`)).body.memberCount, 1);
      expectError(await post(bob, `/api/rooms/${pub.id}/leave`), 403, "FORBIDDEN", "leave twice");
      expectError(
        await post(bob, `/api/rooms/${priv.id}/leave`),
        404,
        "NOT_FOUND",
        "leave a private room one is not in",
      );
    });

    it("GET /api/rooms/:id/members lists users with their role", async () => {
      const priv = await createRoom(base, alice, { name: uniqueName("m"), kind: "private", members: [bob.user.id] });
      const res = await get(bob, `/api/rooms/${priv.id}/members`);
      assert.equal(res.status, 200, res.text);
      const members: (User & { role: string })[] = res.body.members;
      const byId = (a: [number, ...unknown[]], b: [number, ...unknown[]]) => a[0] - b[0];
      assert.deepEqual(
        members.map((m): [number, string, string] => [m.id, m.username, m.role]).sort(byId),
        (
          [
            [alice.user.id, alice.user.username, "owner"],
            [bob.user.id, bob.user.username, "member"],
          ] as [number, string, string][]
        ).sort(byId),
      );
      for (const m of members) {
        assert.ok(["online", "away", "offline"].includes(m.status), JSON.stringify(m));
        assert.equal(typeof m.displayName, "string");
        assert.ok(!("passwordHash" in m) && !("password" in m) && !("roles" in m), JSON.stringify(m));
      }
      expectError(await get(carol, `/api/rooms/${priv.id}/members`), 404, "NOT_FOUND");
      const pub = await createRoom(base, alice, { name: uniqueName("m"), kind: "public" });
      const browse = await get(carol, `/api/rooms/${pub.id}/members`);
      assert.equal(browse.status, 200, browse.text);
      assert.deepEqual(
        browse.body.members.map((m: User & { role: string }) => [m.id, m.role]),
        [[alice.user.id, "owner"]],
      );
    });

    it("invite: 201, 409 when already a member, 403 for a plain member of a private room", async () => {
      const pub = await createRoom(base, alice, { name: uniqueName("i"), kind: "public" });
      assert.equal((await post(bob, `/api/rooms/${pub.id}/join`)).status, 200);
      const byMember = await post(bob, `/api/rooms/${pub.id}/members`, { userId: carol.user.id });
      assert.equal(byMember.status, 201, `any member of a public room invites: ${byMember.text}`);
      assert.deepEqual(byMember.body, { roomId: pub.id, userId: carol.user.id });
      expectError(await post(alice, `/api/rooms/${pub.id}/members`, { userId: carol.user.id }), 409, "CONFLICT");

      const priv = await createRoom(base, alice, { name: uniqueName("i"), kind: "private" });
      const byOwner = await post(alice, `/api/rooms/${priv.id}/members`, { userId: carol.user.id });
      assert.equal(byOwner.status, 201, byOwner.text);
      assert.equal((await get(carol, `/api/rooms/${priv.id}`)).body.role, "member");
      expectError(await post(alice, `/api/rooms/${priv.id}/members`, { userId: carol.user.id }), 409, "CONFLICT");
      expectError(await post(carol, `/api/rooms/${priv.id}/members`, { userId: dave.user.id }), 403, "FORBIDDEN");
      expectError(await post(dave, `/api/rooms/${priv.id}/members`, { userId: dave.user.id }), 404, "NOT_FOUND");
      expectError(await post(alice, `/api/rooms/${priv.id}/members`, { userId: 99_999_999 }), 404, "NOT_FOUND");
      expectValidation(await post(alice, `/api/rooms/${priv.id}/members`, {}), "userId");
      expectError(await get(dave, `/api/rooms/${priv.id}`), 404, "NOT_FOUND", "dave was not invited");
    });

    it("kick: 204 by the owner, 403 by a member; the kicked user loses access", async () => {
      const priv = await createRoom(base, alice, {
        name: uniqueName("k"),
        kind: "private",
        members: [bob.user.id, carol.user.id],
      });
      expectError(await del(bob, `/api/rooms/${priv.id}/members/${carol.user.id}`), 403, "FORBIDDEN");
      expectError(await del(bob, `/api/rooms/${priv.id}/members/${alice.user.id}`), 403, "FORBIDDEN");
      const kicked = await del(alice, `/api/rooms/${priv.id}/members/${carol.user.id}`);
      assert.equal(kicked.status, 204, kicked.text);
      assert.equal(kicked.text, "");
      expectError(await get(carol, `/api/rooms/${priv.id}`), 404, "NOT_FOUND");
      expectError(await get(carol, `/api/rooms/${priv.id}/messages`), 404, "NOT_FOUND");
      assert.ok(!(await myRooms(carol)).some((r) => r.id === priv.id));
      expectError(await del(alice, `/api/rooms/${priv.id}/members/${carol.user.id}`), 404, "NOT_FOUND", "kick twice");
      assert.equal((await get(alice, `/api/rooms/${priv.id}`)).body.memberCount, 2);
    });

    it("PATCH /api/rooms/:id: 200 for the owner, 403 for a member", async () => {
      const pub = await createRoom(base, alice, { name: uniqueName("p"), kind: "public" });
      assert.equal((await post(bob, `/api/rooms/${pub.id}/join`)).status, 200);
      const res = await patch(alice, `/api/rooms/${pub.id}`, { name: "renamed", topic: "new topic" });
      assert.equal(res.status, 200, res.text);
      assertRoomShape(res.body);
      assert.equal(res.body.name, "renamed");
      assert.equal(res.body.topic, "new topic");
      assert.equal(res.body.role, "owner");
      expectError(await patch(bob, `/api/rooms/${pub.id}`, { topic: "hijack" }), 403, "FORBIDDEN");
      expectError(await patch(carol, `/api/rooms/${pub.id}`, { topic: "hijack" }), 403, "FORBIDDEN");
      expectValidation(await patch(alice, `/api/rooms/${pub.id}`, { name: "" }), "name");
      assert.equal((await get(bob, `/api/rooms/${pub.id}`)).body.topic, "new topic");
    });
  });

  describe("messages", () => {
    let room: Room; // public: alice owner, bob and carol members
    let priv: Room; // private: alice owner, bob member
    let other: Room; // another public room of alice's

    before(async () => {
      room = await createRoom(base, alice, { name: uniqueName("msg"), kind: "public" });
      priv = await createRoom(base, alice, { name: uniqueName("msg"), kind: "private", members: [bob.user.id] });
      other = await createRoom(base, alice, { name: uniqueName("msg"), kind: "public" });
      for (const who of [bob, carol]) assert.equal((await post(who, `/api/rooms/${room.id}/join`)).status, 200);
    });

    it("POST messages: 201 Message; a repeated clientMsgId 200 with the same message", async () => {
      const clientMsgId = newClientMsgId();
      const res = await post(bob, `/api/rooms/${room.id}/messages`, { body: "  hello world  ", clientMsgId });
      assert.equal(res.status, 201, res.text);
      const m: Message = res.body;
      assertMessageShape(m);
      assert.equal(m.roomId, room.id);
      assert.equal(m.userId, bob.user.id);
      assert.equal(m.body, "hello world", "the body is trimmed");
      assert.equal(m.clientMsgId, clientMsgId);
      assert.equal(m.replyTo, null);
      assert.equal(m.editedAt, null);
      assert.equal(m.deleted, false);
      assert.deepEqual(m.reactions, {});

      const repeat = await post(bob, `/api/rooms/${room.id}/messages`, { body: "something else", clientMsgId });
      assert.equal(repeat.status, 200, repeat.text);
      assert.deepEqual(repeat.body, m);
      const history = await get(bob, `/api/rooms/${room.id}/messages?after=${m.seq - 1}`);
      assert.deepEqual(
        history.body.messages.filter((x: Message) => x.clientMsgId === clientMsgId).map((x: Message) => x.id),
        [m.id],
      );
      // The same clientMsgId from another user is another message.
      const fromCarol = await post(carol, `/api/rooms/${room.id}/messages`, { body: "hi", clientMsgId });
      assert.equal(fromCarol.status, 201, fromCarol.text);
      assert.notEqual(fromCarol.body.id, m.id);
      assert.equal(fromCarol.body.seq, m.seq + 1);
    });

    it("POST messages: body limits (4000 ok, 4001 → 413, empty or blank → 422), bad clientMsgId → 422", async () => {
      const url = `/api/rooms/${room.id}/messages`;
      const max = await post(bob, url, { body: "a".repeat(4000), clientMsgId: newClientMsgId() });
      assert.equal(max.status, 201, max.text.slice(0, 300));
      assert.equal(max.body.body.length, 4000);
      const emoji = await post(bob, url, { body: "😀".repeat(4000), clientMsgId: newClientMsgId() });
      assert.equal(emoji.status, 201, `4000 emoji are 4000 characters: ${emoji.text.slice(0, 300)}`);
      expectError(
        await post(bob, url, { body: "a".repeat(4001), clientMsgId: newClientMsgId() }),
        413,
        "PAYLOAD_TOO_LARGE",
      );
      expectError(
        await post(bob, url, { body: "😀".repeat(4001), clientMsgId: newClientMsgId() }),
        413,
        "PAYLOAD_TOO_LARGE",
      );
      expectValidation(await post(bob, url, { body: "", clientMsgId: newClientMsgId() }), "body");
      expectValidation(await post(bob, url, { body: " \n\t  ", clientMsgId: newClientMsgId() }), "body");
      expectValidation(await post(bob, url, { clientMsgId: newClientMsgId() }), "body");
      expectValidation(await post(bob, url, { body: 42, clientMsgId: newClientMsgId() }), "body");
      for (const bad of ["short", "has spaces in it", "bad!chars#here", "x".repeat(65), 12345678, ""]) {
        expectValidation(await post(bob, url, { body: "hi", clientMsgId: bad }), "clientMsgId", `clientMsgId ${bad}`);
      }
      expectValidation(await post(bob, url, { body: "hi" }), "clientMsgId");
      // 8 and 64 characters are fine.
      assert.equal((await post(bob, url, { body: "hi", clientMsgId: newClientMsgId().slice(-8) })).status, 201);
      assert.equal((await post(bob, url, { body: "hi", clientMsgId: newClientMsgId().padEnd(64, "_") })).status, 201);
      expectValidation(await post(bob, url, { body: "hi", clientMsgId: newClientMsgId(), replyTo: -1 }), "replyTo");
    });

    it("POST messages: replyTo must be a message of the same room", async () => {
      const original = await sendRest(base, alice, room.id, "original");
      const elsewhere = await sendRest(base, alice, other.id, "elsewhere");
      const reply = await post(bob, `/api/rooms/${room.id}/messages`, {
        body: "a reply",
        clientMsgId: newClientMsgId(),
        replyTo: original.id,
      });
      assert.equal(reply.status, 201, reply.text);
      assert.equal(reply.body.replyTo, original.id);
      expectValidation(
        await post(alice, `/api/rooms/${room.id}/messages`, {
          body: "cross-room",
          clientMsgId: newClientMsgId(),
          replyTo: elsewhere.id,
        }),
        "replyTo",
      );
      expectValidation(
        await post(alice, `/api/rooms/${room.id}/messages`, {
          body: "dangling",
          clientMsgId: newClientMsgId(),
          replyTo: 99_999_999,
        }),
        "replyTo",
      );
    });

    it("GET messages: newest page ascending, before/after paging with hasMore, limit ≤ 100", async () => {
      const hist = await createRoom(base, alice, { name: uniqueName("h"), kind: "private", members: [bob.user.id] });
      for (let i = 1; i <= 120; i++) await sendRest(base, i % 2 ? alice : bob, hist.id, `m${i}`);
      const url = `/api/rooms/${hist.id}/messages`;
      const seqs = (res: { body: { messages: Message[] } }) => res.body.messages.map((m) => m.seq);

      const newest = await get(bob, url);
      assert.equal(newest.status, 200, newest.text.slice(0, 300));
      assert.deepEqual(seqs(newest), range(50, 71));
      assert.equal(newest.body.hasMore, true);
      for (const m of newest.body.messages) assertMessageShape(m);
      assert.deepEqual(
        newest.body.messages.map((m: Message) => m.body),
        range(50, 71).map((i) => `m${i}`),
      );

      const older = await get(bob, `${url}?before=71&limit=100`);
      assert.deepEqual(seqs(older), range(70));
      assert.equal(older.body.hasMore, false);
      const olderPage = await get(bob, `${url}?before=71&limit=20`);
      assert.deepEqual(seqs(olderPage), range(20, 51));
      assert.equal(olderPage.body.hasMore, true);

      const forward = await get(bob, `${url}?after=0&limit=100`);
      assert.deepEqual(seqs(forward), range(100));
      assert.equal(forward.body.hasMore, true);
      const rest = await get(bob, `${url}?after=100&limit=100`);
      assert.deepEqual(seqs(rest), range(20, 101));
      assert.equal(rest.body.hasMore, false);
      const exact = await get(bob, `${url}?after=110&limit=10`);
      assert.deepEqual(seqs(exact), range(10, 111));
      assert.equal(exact.body.hasMore, false);
      const none = await get(bob, `${url}?after=120`);
      assert.deepEqual(seqs(none), []);
      assert.equal(none.body.hasMore, false);

      assert.equal((await get(bob, `${url}?limit=100`)).body.messages.length, 100);
      expectValidation(await get(bob, `${url}?limit=101`), "limit");
      expectValidation(await get(bob, `${url}?limit=0`), "limit");
      expectValidation(await get(bob, `${url}?limit=abc`), "limit");
      expectValidation(await get(bob, `${url}?before=abc`), "before");
      expectValidation(await get(bob, `${url}?after=-1`), "after");
      expectValidation(await get(bob, `${url}?before=10&after=5`), "after");
    });

    it("PATCH a message: 200 for its author, 403 for anyone else", async () => {
      const m = await sendRest(base, bob, room.id, "first draft");
      const url = `/api/rooms/${room.id}/messages/${m.id}`;
      const edited = await patch(bob, url, { body: "second draft" });
      assert.equal(edited.status, 200, edited.text);
      assertMessageShape(edited.body);
      assert.equal(edited.body.id, m.id);
      assert.equal(edited.body.seq, m.seq);
      assert.equal(edited.body.body, "second draft");
      assert.ok(edited.body.editedAt !== null);
      expectError(await patch(alice, url, { body: "owner edit" }), 403, "FORBIDDEN", "even the owner cannot edit");
      expectError(await patch(carol, url, { body: "nope" }), 403, "FORBIDDEN");
      expectError(await patch(dave, url, { body: "nope" }), 403, "FORBIDDEN", "a non-member of the public room");
      expectValidation(await patch(bob, url, { body: "  " }), "body");
      expectError(await patch(bob, url, { body: "b".repeat(4001) }), 413, "PAYLOAD_TOO_LARGE");
      expectError(await patch(bob, `/api/rooms/${other.id}/messages/${m.id}`, { body: "x" }), 404, "NOT_FOUND");
      expectError(await patch(bob, `/api/rooms/${room.id}/messages/99999999`, { body: "x" }), 404, "NOT_FOUND");
      const seen = await get(carol, `/api/rooms/${room.id}/messages?after=${m.seq - 1}&limit=1`);
      assert.equal(seen.body.messages[0].body, "second draft");
    });

    it("DELETE a message: 204 by its author or the room owner, 403 by another member; tombstone keeps id and seq", async () => {
      const byAuthor = await sendRest(base, bob, room.id, "mine to delete");
      const byOwner = await sendRest(base, bob, room.id, "the owner deletes this");
      const protectedMsg = await sendRest(base, bob, room.id, "carol cannot delete this");
      await api(base, "POST", `/api/rooms/${room.id}/messages/${byAuthor.id}/reactions`, {
        token: alice.accessToken,
        body: { emoji: "👍" },
      });

      const d1 = await del(bob, `/api/rooms/${room.id}/messages/${byAuthor.id}`);
      assert.equal(d1.status, 204, d1.text);
      assert.equal(d1.text, "");
      const d2 = await del(alice, `/api/rooms/${room.id}/messages/${byOwner.id}`);
      assert.equal(d2.status, 204, d2.text);
      expectError(await del(carol, `/api/rooms/${room.id}/messages/${protectedMsg.id}`), 403, "FORBIDDEN");
      expectError(await del(dave, `/api/rooms/${room.id}/messages/${protectedMsg.id}`), 403, "FORBIDDEN");
      expectError(await del(bob, `/api/rooms/${room.id}/messages/99999999`), 404, "NOT_FOUND");

      const res = await get(carol, `/api/rooms/${room.id}/messages?after=${byAuthor.seq - 1}&limit=3`);
      const [t1, t2, kept] = res.body.messages as Message[];
      for (const [tomb, orig] of [
        [t1, byAuthor],
        [t2, byOwner],
      ] as const) {
        assertMessageShape(tomb);
        assert.equal(tomb.id, orig.id);
        assert.equal(tomb.seq, orig.seq);
        assert.equal(tomb.userId, orig.userId);
        assert.equal(tomb.body, "");
        assert.equal(tomb.deleted, true);
        assert.deepEqual(tomb.reactions, {});
      }
      assert.equal(kept.id, protectedMsg.id);
      assert.equal(kept.deleted, false);
      assert.equal(kept.body, "carol cannot delete this");

      expectError(
        await patch(bob, `/api/rooms/${room.id}/messages/${byAuthor.id}`, { body: "revive" }),
        404,
        "NOT_FOUND",
      );
      expectError(
        await post(alice, `/api/rooms/${room.id}/messages/${byAuthor.id}/reactions`, { emoji: "👍" }),
        404,
        "NOT_FOUND",
      );
      const again = await del(bob, `/api/rooms/${room.id}/messages/${byAuthor.id}`);
      assert.equal(again.status, 204, `deleting a tombstone again: ${again.text}`);
    });

    it("reactions toggle on and off per user", async () => {
      const m = await sendRest(base, carol, room.id, "react to me");
      const url = `/api/rooms/${room.id}/messages/${m.id}/reactions`;
      const on = await post(alice, url, { emoji: "👍" });
      assert.equal(on.status, 200, on.text);
      assertMessageShape(on.body);
      assert.deepEqual(on.body.reactions, { "👍": [alice.user.id] });
      const two = await post(bob, url, { emoji: "👍" });
      assert.deepEqual(two.body.reactions, { "👍": [alice.user.id, bob.user.id] });
      const heart = await post(bob, url, { emoji: "❤️" });
      assert.deepEqual(heart.body.reactions, { "👍": [alice.user.id, bob.user.id], "❤️": [bob.user.id] });
      const off = await post(alice, url, { emoji: "👍" });
      assert.equal(off.status, 200, off.text);
      assert.deepEqual(off.body.reactions, { "👍": [bob.user.id], "❤️": [bob.user.id] });
      await post(bob, url, { emoji: "👍" });
      const last = await post(bob, url, { emoji: "❤️" });
      assert.deepEqual(last.body.reactions, {});
      expectValidation(await post(bob, url, { emoji: "" }), "emoji");
      expectValidation(await post(bob, url, { emoji: "x".repeat(33) }), "emoji");
      expectValidation(await post(bob, url, {}), "emoji");
      expectError(await post(dave, url, { emoji: "👍" }), 403, "FORBIDDEN", "a non-member of the public room");
      expectError(
        await post(bob, `/api/rooms/${other.id}/messages/${m.id}/reactions`, { emoji: "👍" }),
        404,
        "NOT_FOUND",
      );
    });

    it("read marker moves forward only; GET /api/rooms shows unread", async () => {
      const r = await createRoom(base, alice, { name: uniqueName("rd"), kind: "private", members: [bob.user.id] });
      for (let i = 0; i < 10; i++) await sendRest(base, alice, r.id, `n${i}`);
      const unreadOf = async (who: Account) => {
        const found = (await myRooms(who)).find((x) => x.id === r.id);
        assert.ok(found, "room in the list");
        assertRoomShape(found);
        return {
          unread: found.unread,
          lastReadSeq: found.lastReadSeq,
          lastSeq: found.lastSeq,
          last: found.lastMessage,
        };
      };
      const start = await unreadOf(bob);
      assert.deepEqual(
        { unread: start.unread, lastReadSeq: start.lastReadSeq, lastSeq: start.lastSeq },
        { unread: 10, lastReadSeq: 0, lastSeq: 10 },
      );
      assert.equal(start.last?.seq, 10);
      assert.equal(start.last?.body, "n9");
      const senderView = await unreadOf(alice);
      assert.equal(senderView.unread, 0, "the sender has read what they sent");

      const read = await post(bob, `/api/rooms/${r.id}/read`, { seq: 4 });
      assert.equal(read.status, 204, read.text);
      assert.equal(read.text, "");
      assert.deepEqual((await unreadOf(bob)).unread, 6);
      assert.equal((await post(bob, `/api/rooms/${r.id}/read`, { seq: 2 })).status, 204);
      const still = await unreadOf(bob);
      assert.equal(still.lastReadSeq, 4, "the marker does not move back");
      assert.equal(still.unread, 6);
      assert.equal((await post(bob, `/api/rooms/${r.id}/read`, { seq: 1000 })).status, 204);
      const all = await unreadOf(bob);
      assert.equal(all.lastReadSeq, 10, "clamped to the room's last seq");
      assert.equal(all.unread, 0);
      await sendRest(base, alice, r.id, "one more");
      assert.equal((await unreadOf(bob)).unread, 1);
      expectValidation(await post(bob, `/api/rooms/${r.id}/read`, { seq: -1 }), "seq");
      expectValidation(await post(bob, `/api/rooms/${r.id}/read`, {}), "seq");
      expectError(await post(carol, `/api/rooms/${r.id}/read`, { seq: 1 }), 404, "NOT_FOUND");
    });

    it("a private room's non-member gets 404 on the room, its history and sending", async () => {
      await sendRest(base, alice, priv.id, "secret");
      expectError(await get(carol, `/api/rooms/${priv.id}`), 404, "NOT_FOUND");
      expectError(await get(carol, `/api/rooms/${priv.id}/messages`), 404, "NOT_FOUND");
      expectError(await get(carol, `/api/rooms/${priv.id}/messages?after=0`), 404, "NOT_FOUND");
      expectError(
        await post(carol, `/api/rooms/${priv.id}/messages`, { body: "let me in", clientMsgId: newClientMsgId() }),
        404,
        "NOT_FOUND",
      );
      const [secret] = (await get(alice, `/api/rooms/${priv.id}/messages?limit=1`)).body.messages as Message[];
      expectError(await patch(carol, `/api/rooms/${priv.id}/messages/${secret.id}`, { body: "x" }), 404, "NOT_FOUND");
      expectError(await del(carol, `/api/rooms/${priv.id}/messages/${secret.id}`), 404, "NOT_FOUND");
      expectError(
        await post(carol, `/api/rooms/${priv.id}/messages/${secret.id}/reactions`, { emoji: "👀" }),
        404,
        "NOT_FOUND",
      );
    });

    it("a public room's non-member gets 403 on history and sending", async () => {
      const pub = await createRoom(base, alice, { name: uniqueName("np"), kind: "public" });
      await sendRest(base, alice, pub.id, "public talk");
      expectError(await get(dave, `/api/rooms/${pub.id}/messages`), 403, "FORBIDDEN");
      expectError(
        await post(dave, `/api/rooms/${pub.id}/messages`, { body: "hi", clientMsgId: newClientMsgId() }),
        403,
        "FORBIDDEN",
      );
      expectError(await post(dave, `/api/rooms/${pub.id}/read`, { seq: 1 }), 403, "FORBIDDEN");
    });

    it("every room endpoint wants a token", async () => {
      for (const [method, path] of [
        ["GET", "/api/rooms"],
        ["GET", "/api/rooms/public"],
        ["GET", `/api/rooms/${room.id}`],
        ["GET", `/api/rooms/${room.id}/messages`],
        ["POST", `/api/rooms/${room.id}/join`],
        ["POST", `/api/rooms/${room.id}/messages`],
      ]) {
        expectError(await api(base, method, path, {}), 401, "UNAUTHORIZED", `${method} ${path}`);
      }
    });
  });

  describe("limits (a node with the default send limit: burst 10, 10/s, 100/min)", () => {
    it("REST sends share the per-user send limit: a burst gets 429 RATE_LIMITED with Retry-After", async (t) => {
      const port = await freePort();
      await startNode({
        name: "chat-limits",
        env: { PORT: String(port), SEND_BURST: "10", SEND_PER_SECOND: "10", SEND_PER_MINUTE: "100" },
        ready: { http: port },
        t,
      });
      const url = `http://127.0.0.1:${port}`;
      const sender = await register(url, uniqueName("burst"));
      const pub = await createRoom(url, sender, { name: uniqueName("burst"), kind: "public" });
      const results = await Promise.all(
        range(25).map(() =>
          api(url, "POST", `/api/rooms/${pub.id}/messages`, {
            token: sender.accessToken,
            body: { body: "burst", clientMsgId: newClientMsgId() },
          }),
        ),
      );
      const accepted = results.filter((r) => r.status === 201);
      const refused = results.filter((r) => r.status === 429);
      assert.equal(accepted.length + refused.length, results.length, results.map((r) => r.status).join(","));
      assert.ok(accepted.length >= 10 && accepted.length < 25, `accepted ${accepted.length}`);
      for (const r of refused) {
        expectError(r, 429, "RATE_LIMITED");
        assert.ok(Number(r.headers.get("retry-after")) >= 1, "Retry-After header");
      }
      const history = await api(url, "GET", `/api/rooms/${pub.id}/messages?limit=100`, { token: sender.accessToken });
      assert.equal(history.body.messages.length, accepted.length, "exactly the accepted sends are stored");
    });
  });
});
