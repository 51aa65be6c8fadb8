/**
 * ChatStore (src/chat/store.ts) on SQLite and MariaDB: rooms and memberships, messages with their
 * per-room seqs (also under concurrency), history pages, edits, reactions, deletes and read
 * markers, each change announced once in chat's outbox.
 */
import assert from "node:assert/strict";
import { before, it } from "node:test";
import { ChatStore } from "../../src/chat/store.js";
import { Outbox } from "../../src/infra/outbox.js";
import type { Sql } from "../../src/infra/sql.js";
import { rejectsWith } from "../support/errors.js";
import { onEachSqlEngine, outbox, TRACE, type OutboxRow } from "../support/sql-engines.js";

onEachSqlEngine("ChatStore", (sql) => {
  let db: Sql;
  let chat: ChatStore;
  let roomId: number;
  before(() => {
    db = sql.db;
    chat = new ChatStore(db, new Outbox("chat", "test-node"));
  });

  /** chat_outbox rows of a type whose data matches `where`. */
  const chatEvents = async (type: string, where: Record<string, unknown> = {}): Promise<OutboxRow[]> =>
    (await outbox(db, "chat", type)).filter((r) => Object.entries(where).every(([k, v]) => r.event.data[k] === v));

  it("createRoom makes the creator its owner", async () => {
    roomId = await chat.createRoom({ name: "general", kind: "public", createdBy: 1 }, TRACE);
    assert.ok(Number.isInteger(roomId) && roomId > 0);
    assert.equal((await chat.membership(roomId, 1))?.role, "owner");
    assert.equal(await chat.membership(roomId, 2), undefined);
    const room = await db("rooms").where({ id: roomId }).first();
    assert.equal(room.name, "general");
    assert.equal(room.topic, "");
    assert.equal(Number(room.last_seq), 0);

    const created = await chatEvents("room.created", { roomId });
    assert.equal(created.length, 1);
    assert.deepEqual(created[0].event.data, { roomId, userId: 1, kind: "public", name: "general", memberIds: [] });
    assert.equal(
      created[0].pending,
      "log",
      "room.created goes to the log only (members reach notify as room.member_changed)",
    );
    assert.equal(created[0].requestId, "req-sql-stores");
    assert.equal((await chatEvents("room.member_changed", { roomId })).length, 0, "no one was invited");
  });

  it("createRoom with members: each is a member and gets one invite event", async () => {
    const id = await chat.createRoom({ name: "team", kind: "private", createdBy: 1, members: [2, 3, 3, 1] }, TRACE);
    assert.deepEqual(await chat.members(id), [
      { userId: 1, role: "owner" },
      { userId: 2, role: "member" },
      { userId: 3, role: "member" },
    ]);
    const [created] = await chatEvents("room.created", { roomId: id });
    assert.deepEqual(created.event.data, { roomId: id, userId: 1, kind: "private", name: "team", memberIds: [2, 3] });
    assert.deepEqual(
      (await chatEvents("room.member_changed", { roomId: id })).map((r) => r.event.data),
      [2, 3].map((userId) => ({ roomId: id, userId, byUserId: 1, action: "invited", roomKind: "private" })),
    );
  });

  it("send gives seq 1, 2, 3; a repeated clientMsgId returns the original (created=false)", async () => {
    // Only members send: user 2 joins first (a public room).
    await chat.addMember({ roomId, userId: 2, byUserId: 2, action: "joined", roomKind: "public" }, TRACE);
    const a = await chat.send({ roomId, userId: 1, body: "one @Bob and @carol.", clientMsgId: "cmid-0001" }, TRACE);
    const b = await chat.send({ roomId, userId: 1, body: "two", clientMsgId: "cmid-0002" }, TRACE);
    const c = await chat.send(
      { roomId, userId: 2, body: "three", clientMsgId: "cmid-0001", replyTo: a.message.id },
      TRACE,
    );
    assert.deepEqual(
      [a, b, c].map((r) => [r.created, r.message.seq]),
      [
        [true, 1],
        [true, 2],
        [true, 3],
      ],
      "clientMsgId is per user: user 2 may use the same one",
    );
    assert.equal(c.message.replyTo, a.message.id);
    assert.equal(a.message.body, "one @Bob and @carol.");
    assert.equal(a.message.deleted, false);
    assert.equal(a.message.editedAt, null);
    assert.deepEqual(a.message.reactions, {});

    // Exactly one message.created per stored message, written with it.
    const first = await chatEvents("message.created", { messageId: a.message.id });
    assert.equal(first.length, 1);
    assert.deepEqual(first[0].event.data, {
      messageId: a.message.id,
      roomId,
      seq: 1,
      userId: 1,
      roomKind: "public",
      peerId: null,
      mentions: ["bob", "carol"],
      replyTo: null,
    });
    assert.equal(first[0].pending, "notify,log");
    assert.equal(first[0].event.requestId, "req-sql-stores");
    assert.ok(!JSON.stringify(first[0].event).includes("one @Bob"), "the body stays in chat");
    assert.equal(
      (await chatEvents("message.created", { messageId: c.message.id }))[0].event.data.replyTo,
      a.message.id,
    );

    const again = await chat.send({ roomId, userId: 1, body: "one, retried", clientMsgId: "cmid-0001" }, TRACE);
    assert.equal(again.created, false);
    assert.deepEqual(again.message, a.message, "the stored original, unchanged");
    assert.equal((await db("messages").where({ user_id: 1, client_msg_id: "cmid-0001" })).length, 1);
    assert.equal(Number((await db("rooms").where({ id: roomId }).first()).last_seq), 3, "no seq spent");
    assert.equal((await chatEvents("message.created", { roomId })).length, 3, "a repeat adds no event");
    assert.equal((await chat.membership(roomId, 1))?.lastReadSeq, 2, "sending moves the sender's read marker");
  });

  it("send to a missing room → NOT_FOUND, and nothing in the outbox", async () => {
    const before = (await outbox(db, "chat")).length;
    await rejectsWith(
      chat.send({ roomId: 999_999, userId: 1, body: "x", clientMsgId: "cmid-lost" }, TRACE),
      "NOT_FOUND",
    );
    assert.equal((await outbox(db, "chat")).length, before);
  });

  it("a direct room: message.created names the peer", async () => {
    const { id, created } = await chat.directRoom(5, 6, "five+six", TRACE);
    assert.equal(created, true);
    assert.deepEqual(await chat.directRoom(6, 5, "six+five", TRACE), { id, created: false });
    assert.equal((await chatEvents("room.created", { roomId: id })).length, 1, "created once");
    const { message } = await chat.send({ roomId: id, userId: 6, body: "hi", clientMsgId: "dm-00001" }, TRACE);
    const [event] = await chatEvents("message.created", { messageId: message.id });
    assert.equal(event.event.data.roomKind, "direct");
    assert.equal(event.event.data.peerId, 5);
  });

  it("only members send: NOT_FOUND for a private room, FORBIDDEN for a public one, also for a retry after leaving", async () => {
    const priv = await chat.createRoom({ name: "closed", kind: "private", createdBy: 7 }, TRACE);
    const pub = await chat.createRoom({ name: "open", kind: "public", createdBy: 7 }, TRACE);
    const send = (room: number, user: number, clientMsgId: string) =>
      chat.send({ roomId: room, userId: user, body: "hi", clientMsgId }, TRACE);
    await rejectsWith(send(priv, 8, "nm-000001"), "NOT_FOUND");
    await rejectsWith(send(pub, 8, "nm-000002"), "FORBIDDEN");
    assert.equal((await chat.after(pub, 0, 10)).messages.length, 0, "nothing stored");
    const first = await send(pub, 7, "nm-000003");
    const again = await send(pub, 7, "nm-000003");
    assert.equal(again.created, false);
    assert.equal(again.message.id, first.message.id, "the original, to a member");
    // The same clientMsgId in another room is a conflict, not the original.
    await rejectsWith(send(priv, 7, "nm-000003"), "CONFLICT");
    // Once the sender has left, a retry is refused like any send of a non-member (issue 10).
    await chat.removeMember({ roomId: pub, userId: 7, byUserId: 7, action: "left", roomKind: "public" }, TRACE);
    await rejectsWith(send(pub, 7, "nm-000003"), "FORBIDDEN");
  });

  it("30 concurrent sends in one room → seqs exactly 1..30, one event each", async () => {
    const room = await chat.createRoom({ name: "busy", kind: "public", createdBy: 1, members: [2, 3] }, TRACE);
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        chat.send(
          {
            roomId: room,
            userId: 1 + (i % 3),
            body: `m${i}`,
            clientMsgId: `busy-${String(i).padStart(4, "0")}`,
          },
          TRACE,
        ),
      ),
    );
    assert.ok(results.every((r) => r.created));
    const seqs = results.map((r) => r.message.seq).sort((x, y) => x - y);
    assert.deepEqual(
      seqs,
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    const { messages } = await chat.after(room, 0, 100);
    assert.deepEqual(
      messages.map((m) => m.seq),
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    const events = await chatEvents("message.created", { roomId: room });
    assert.deepEqual(
      events.map((e) => Number(e.event.data.seq)).sort((x, y) => x - y),
      seqs,
    );
  });

  it("10 concurrent sends with the same clientMsgId → one row, one event, all answer with it", async () => {
    const room = await chat.createRoom({ name: "retry", kind: "private", createdBy: 4 }, TRACE);
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        chat.send({ roomId: room, userId: 4, body: "once", clientMsgId: "same-cmid-1" }, TRACE),
      ),
    );
    assert.equal(results.filter((r) => r.created).length, 1, "exactly one send created the message");
    const ids = new Set(results.map((r) => r.message.id));
    assert.equal(ids.size, 1, "every caller got the same message");
    assert.ok(results.every((r) => r.message.seq === 1));
    assert.equal((await db("messages").where({ room_id: room })).length, 1);
    assert.equal((await chatEvents("message.created", { roomId: room })).length, 1);
    // The losers spent no seq: the next message is 2.
    const next = await chat.send({ roomId: room, userId: 4, body: "next", clientMsgId: "same-cmid-2" }, TRACE);
    assert.equal(next.message.seq, 2);
  });

  it("after: ascending from a seq, limited, with hasMore; before: the newest page, ascending", async () => {
    const all = await chat.after(roomId, 0, 100);
    assert.deepEqual(
      all.messages.map((m) => [m.seq, m.body]),
      [
        [1, "one @Bob and @carol."],
        [2, "two"],
        [3, "three"],
      ],
    );
    assert.equal(all.hasMore, false);
    assert.deepEqual(
      (await chat.after(roomId, 1, 100)).messages.map((m) => m.seq),
      [2, 3],
    );
    const page = await chat.after(roomId, 0, 2);
    assert.deepEqual(
      page.messages.map((m) => m.seq),
      [1, 2],
    );
    assert.equal(page.hasMore, true);
    assert.deepEqual(await chat.after(roomId, 3, 100), { messages: [], hasMore: false });
    assert.deepEqual(await chat.after(999_999, 0, 100), { messages: [], hasMore: false });

    const newest = await chat.before(roomId, undefined, 2);
    assert.deepEqual(
      newest.messages.map((m) => m.seq),
      [2, 3],
    );
    assert.equal(newest.hasMore, true);
    const older = await chat.before(roomId, 2, 2);
    assert.deepEqual(
      older.messages.map((m) => m.seq),
      [1],
    );
    assert.equal(older.hasMore, false);
  });

  it("edit, reaction toggle and delete each write one event", async () => {
    const { message } = await chat.send({ roomId, userId: 1, body: "draft", clientMsgId: "cmid-edit" }, TRACE);
    const edited = await chat.edit(message, "final", TRACE);
    assert.equal(edited.body, "final");
    assert.ok(edited.editedAt !== null);
    const reacted = await chat.toggleReaction(edited, 2, "👍", TRACE);
    assert.deepEqual(reacted.reactions, { "👍": [2] });
    const unreacted = await chat.toggleReaction(reacted, 2, "👍", TRACE);
    assert.deepEqual(unreacted.reactions, {});
    await chat.remove(unreacted, 1, TRACE);
    const gone = await chat.message(message.id);
    assert.equal(gone?.deleted, true);
    assert.equal(gone?.body, "");

    const ref = { messageId: message.id, roomId, seq: message.seq };
    assert.deepEqual(
      (await chatEvents("message.edited", { messageId: message.id })).map((r) => r.event.data),
      [{ ...ref, userId: 1 }],
    );
    assert.deepEqual(
      (await chatEvents("reaction.toggled", { messageId: message.id })).map((r) => r.event.data),
      [
        { messageId: message.id, roomId, userId: 2, emoji: "👍" },
        { messageId: message.id, roomId, userId: 2, emoji: "👍" },
      ],
    );
    assert.deepEqual(
      (await chatEvents("message.deleted", { messageId: message.id })).map((r) => [r.event.data, r.pending]),
      [[{ ...ref, userId: 1, authorId: 1 }, "log"]],
    );
  });

  it("addMember / removeMember: an event only when something changed", async () => {
    const change = { roomId, userId: 7, byUserId: 1, action: "invited" as const, roomKind: "public" as const };
    assert.equal(await chat.addMember(change, TRACE), true);
    assert.equal(await chat.addMember(change, TRACE), false, "already a member");
    assert.equal((await chat.membership(roomId, 7))?.role, "member");
    const kick = { ...change, action: "kicked" as const };
    assert.equal(await chat.removeMember(kick, TRACE), true);
    assert.equal(await chat.removeMember(kick, TRACE), false, "not a member any more");
    assert.equal(await chat.membership(roomId, 7), undefined);
    assert.deepEqual(
      (await chatEvents("room.member_changed", { roomId, userId: 7 })).map((r) => r.event.data.action),
      ["invited", "kicked"],
    );
  });

  it("markRead only moves the marker forward", async () => {
    await chat.addMember({ roomId, userId: 8, byUserId: 8, action: "joined", roomKind: "public" }, TRACE);
    assert.equal((await chat.membership(roomId, 8))?.lastReadSeq, 0);
    assert.equal(await chat.markRead(roomId, 8, 2), 2);
    assert.equal(await chat.markRead(roomId, 8, 1), 2, "never backwards");
    assert.equal(await chat.markRead(roomId, 8, 3), 3);
    assert.equal(await chat.markRead(roomId, 99, 3), 0, "not a member: no marker");
  });
});
