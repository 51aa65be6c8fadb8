/**
 * chat's batched send path (ChatStore.sendMany, fed by the service's group commit) on both
 * engines: a batch keeps every promise of a single send — gap-free seq per room, one message per
 * (sender, clientMsgId), membership before anything else, the sender's read marker moved, one
 * `message.created` per message in the same transaction — and each send is answered alone.
 * Several stores on one database stand for several chat instances.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { chatMigrations } from "../../src/chat/migrations.js";
import { ChatStore, type SendRequest } from "../../src/chat/store.js";
import { AppError } from "../../src/errors.js";
import { Outbox, outboxTable } from "../../src/infra/outbox.js";
import { migrate, openSql, releaseSql, type Sql, type SqlTarget } from "../../src/infra/sql.js";
import type { Message, Room } from "../../src/contracts/objects.js";
import { register, uniqueName, type Account } from "../support/accounts-helpers.js";
import { createRoom, fullHistory, newClientMsgId } from "../support/chat-helpers.js";
import { expectAckError } from "../support/errors.js";
import { connectChat, okData, rawCall, type ChatSocket } from "../support/sockets.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { createTestDatabase, freePort, serverSkip } from "../support/servers.js";

const trace = { requestId: "req-batch" };
const send = (roomId: number, userId: number, clientMsgId: string, extra: Partial<SendRequest> = {}): SendRequest => ({
  roomId,
  userId,
  body: `m ${clientMsgId}`,
  clientMsgId,
  trace,
  ...extra,
});

function errorOf(outcome: { ok: boolean; error?: unknown } | undefined): AppError {
  assert.ok(outcome && !outcome.ok, "expected a refused send");
  assert.ok(outcome.error instanceof AppError, `expected an AppError, got ${String(outcome.error)}`);
  return outcome.error;
}

function batchSuite(setup: () => Promise<{ target: SqlTarget; cleanup(): Promise<void> }>): void {
  let target: SqlTarget;
  let cleanup: () => Promise<void>;
  let db: Sql;
  let stores: ChatStore[];
  let roomA: number;
  let roomB: number;
  let privateRoom: number;
  let publicRoom: number;

  before(async () => {
    ({ target, cleanup } = await setup());
    db = openSql(target);
    await migrate(db, "chat", chatMigrations);
    // Three instances of chat on one database.
    stores = [1, 2, 3].map((n) => new ChatStore(db, new Outbox("chat", `node-${n}`)));
    const members = Array.from({ length: 10 }, (_, i) => 100 + i);
    roomA = await stores[0].createRoom({ name: "a", kind: "private", createdBy: 100, members }, trace);
    roomB = await stores[0].createRoom({ name: "b", kind: "private", createdBy: 100, members }, trace);
    privateRoom = await stores[0].createRoom({ name: "closed", kind: "private", createdBy: 500 }, trace);
    publicRoom = await stores[0].createRoom({ name: "open", kind: "public", createdBy: 500 }, trace);
  });
  after(async () => {
    await releaseSql(target);
    await cleanup();
  });

  it("concurrent batches from several instances into two rooms: seqs 1…n with no gap, every clientMsgId once", async () => {
    const batches = Array.from({ length: 12 }, (_, b) =>
      Array.from({ length: 20 }, (_, k) => send(k % 2 ? roomA : roomB, 100 + (k % 10), `c-${b}-${k}`)),
    );
    const outcomes = await Promise.all(batches.map((batch, b) => stores[b % 3].sendMany(batch)));
    const stored = outcomes.flat();
    assert.ok(
      stored.every((o) => o.ok && o.value.created),
      "every send stored",
    );
    for (const roomId of [roomA, roomB]) {
      const seqs = (
        await db("messages").where({ room_id: roomId }).orderBy("seq").select<{ seq: number }[]>("seq")
      ).map((r) => Number(r.seq));
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => i + 1),
        `room ${roomId}: gap-free`,
      );
      const room = await db("rooms").where({ id: roomId }).first<{ last_seq: number }>("last_seq");
      assert.equal(Number(room?.last_seq), seqs.length, "the room's counter matches its messages");
    }
    // Each answer is the message stored for that send.
    batches.flat().forEach((s, i) => {
      const o = stored[i];
      assert.ok(o.ok);
      assert.equal(o.value.message.clientMsgId, s.clientMsgId);
      assert.equal(o.value.message.roomId, s.roomId);
    });
    const events = await db(outboxTable("chat")).where({ type: "message.created" }).count<{ n: number }[]>("* as n");
    assert.equal(Number(events[0].n), 240, "one message.created per message");
  });

  it("one batch, every kind of answer: each send fails or succeeds alone", async () => {
    const [first] = await stores[0].sendMany([send(roomA, 101, "reply-target")]);
    assert.ok(first.ok);
    const [otherRoomMessage] = await stores[0].sendMany([send(roomB, 101, "in-b")]);
    assert.ok(otherRoomMessage.ok);
    const before = Number((await db("messages").count<{ n: number }[]>("* as n"))[0].n);

    const outcomes = await stores[1].sendMany([
      send(roomA, 102, "fine-1"),
      send(privateRoom, 102, "not-a-member"), // a private room they are not in: NOT_FOUND
      send(publicRoom, 102, "join-first"), // a public room they are not in: FORBIDDEN
      send(999_999, 102, "no-room"), // NOT_FOUND
      send(roomA, 101, "reply-target"), // a retry: the original, nothing stored
      send(roomB, 101, "in-b", { roomId: roomA }), // the same clientMsgId sent to another room: CONFLICT
      send(roomA, 102, "bad-reply", { replyTo: otherRoomMessage.value.message.id }), // replyTo of another room
      send(roomA, 102, "good-reply", { replyTo: first.value.message.id }),
      send(roomA, 103, "twice"),
      send(roomA, 103, "twice"), // the same send twice in one batch: stored once, both answered with it
      send(roomB, 103, "twice"), // and once more to another room: CONFLICT
      send(privateRoom, 102, "no-leak", { replyTo: first.value.message.id }), // membership before replyTo
    ]);

    assert.ok(outcomes[0].ok && outcomes[0].value.created);
    assert.equal(errorOf(outcomes[1]).type, "NOT_FOUND");
    assert.equal(errorOf(outcomes[2]).type, "FORBIDDEN");
    assert.equal(errorOf(outcomes[3]).type, "NOT_FOUND");
    assert.ok(outcomes[4].ok && !outcomes[4].value.created);
    assert.equal(outcomes[4].value.message.id, first.value.message.id);
    assert.equal(errorOf(outcomes[5]).type, "CONFLICT");
    assert.equal(errorOf(outcomes[6]).type, "VALIDATION_ERROR");
    assert.ok(outcomes[7].ok && outcomes[7].value.created);
    assert.equal(outcomes[7].value.message.replyTo, first.value.message.id);
    assert.ok(outcomes[8].ok && outcomes[8].value.created);
    assert.ok(outcomes[9].ok && !outcomes[9].value.created);
    assert.equal(outcomes[9].value.message.id, outcomes[8].value.message.id);
    assert.equal(errorOf(outcomes[10]).type, "CONFLICT");
    assert.equal(errorOf(outcomes[11]).type, "NOT_FOUND");

    const after = Number((await db("messages").count<{ n: number }[]>("* as n"))[0].n);
    assert.equal(after - before, 3, "fine-1, good-reply and twice: nothing else stored");
  });

  it("moves each sender's read marker to their newest message", async () => {
    const outcomes = await stores[2].sendMany([
      send(roomB, 104, "r-1"),
      send(roomB, 105, "r-2"),
      send(roomB, 104, "r-3"),
    ]);
    const seqOf = (i: number) => {
      const o = outcomes[i];
      assert.ok(o.ok);
      return o.value.message.seq;
    };
    const marker = async (userId: number) =>
      Number(
        (
          await db("room_members")
            .where({ room_id: roomB, user_id: userId })
            .first<{ last_read_seq: number }>("last_read_seq")
        )?.last_read_seq,
      );
    assert.equal(await marker(104), seqOf(2));
    assert.equal(await marker(105), seqOf(1));
  });

  it("a clientMsgId stored by another instance while the batch ran: that send gets the original, the others are stored", async () => {
    // Instance 1 stores "raced" between instance 2's reads and its transaction: simulated by a
    // send whose pre-read cannot see it yet — two concurrent batches with the same clientMsgId.
    const [x, y] = await Promise.all([
      stores[0].sendMany([send(roomA, 106, "raced"), send(roomA, 106, "solo-1")]),
      stores[1].sendMany([send(roomA, 106, "raced"), send(roomA, 106, "solo-2")]),
    ]);
    for (const o of [...x, ...y]) assert.ok(o.ok, `answered: ${o.ok ? "" : String(o.error)}`);
    const rows = await db("messages").where({ user_id: 106, client_msg_id: "raced" }).select("id");
    assert.equal(rows.length, 1, "stored once");
    assert.ok(x[0].ok && y[0].ok);
    assert.equal(x[0].value.message.id, y[0].value.message.id, "both answered with the one message");
    assert.equal([x[0], y[0]].filter((o) => o.ok && o.value.created).length, 1, "exactly one of them created it");
  });
}

describe("batched sends on SQLite", () => {
  batchSuite(async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-batch-"));
    return {
      target: { databaseUrl: undefined, dataDir },
      async cleanup() {
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  });
});

describe("batched sends on MariaDB", async () => {
  const skip = await serverSkip("mariadb");
  if (skip) {
    it("MariaDB", { skip }, () => {});
    return;
  }
  batchSuite(async () => {
    const database = await createTestDatabase();
    return { target: { databaseUrl: database.url, dataDir: os.tmpdir() }, cleanup: () => database.drop() };
  });
});

describe("a gateway's sends of one tick, as one batch (embedded node)", () => {
  let node: NodeHandle;
  let base = "";
  let alice: Account;
  let room: Room;
  let secret: Room;
  let socket: ChatSocket;

  before(async () => {
    const port = await freePort();
    node = await startNode({ name: "send-batching", env: { PORT: String(port) }, ready: { http: port } });
    base = `http://127.0.0.1:${port}`;
    alice = await register(base, uniqueName("ba"));
    const bob = await register(base, uniqueName("bb"));
    room = await createRoom(base, alice, { name: uniqueName("r"), kind: "public" });
    secret = await createRoom(base, bob, { name: uniqueName("s"), kind: "private" });
    socket = await connectChat(base, alice.accessToken, { rooms: [room.id] });
  });
  after(async () => {
    socket?.close();
    await node?.stop();
  });

  it("answers every send of the tick alone, in the contract's shape, and stores only the good ones", async () => {
    const good = newClientMsgId("g");
    const acks = await Promise.all([
      rawCall(socket, "message:send", [{ roomId: room.id, body: "first", clientMsgId: good }]),
      rawCall(socket, "message:send", [{ roomId: room.id, body: "no id" }]),
      rawCall(socket, "message:send", [{ roomId: secret.id, body: "hidden", clientMsgId: newClientMsgId("h") }]),
      rawCall(socket, "message:send", [{ roomId: room.id, body: "x".repeat(4001), clientMsgId: newClientMsgId("l") }]),
      rawCall(socket, "message:send", [{ roomId: room.id, body: "again", clientMsgId: good }]),
      rawCall(socket, "message:send", [{ roomId: room.id, body: "second", clientMsgId: newClientMsgId("g") }]),
    ]);
    const first = okData(acks[0] as { ok: true; data: Message }, "the first send");
    const invalid = expectAckError(acks[1], "VALIDATION_ERROR", "a send without clientMsgId");
    assert.ok(
      invalid.fields?.some((f) => f.field === "clientMsgId"),
      "the field is named",
    );
    expectAckError(acks[2], "NOT_FOUND", "a send to a private room of someone else");
    expectAckError(acks[3], "PAYLOAD_TOO_LARGE", "an over-long body");
    assert.equal(okData(acks[4] as { ok: true; data: Message }, "the repeat").id, first.id, "the repeat: the original");
    const second = okData(acks[5] as { ok: true; data: Message }, "the second send");
    const history = await fullHistory(base, alice, room.id);
    assert.deepEqual(
      history.map((m) => [m.seq, m.body]),
      [
        [first.seq, "first"],
        [second.seq, "second"],
      ],
    );
    assert.equal(second.seq, first.seq + 1, "gap-free");
  });
});
