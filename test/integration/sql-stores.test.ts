/**
 * The SQL stores (users, auth, chat, notify) on both engines NoChat supports: SQLite under a temp
 * DATA_DIR and MariaDB in a fresh test database. The same suite body runs for each engine.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { authMigrations } from "../../src/auth/migrations.js";
import { AuthStore, throttleKeys } from "../../src/auth/store.js";
import { chatMigrations } from "../../src/chat/migrations.js";
import { ChatStore } from "../../src/chat/store.js";
import type { DomainEvent } from "../../src/contracts/domain-events.js";
import { Outbox, outboxTable, type Trace } from "../../src/infra/outbox.js";
import { isMysql, migrate, openSql, releaseSql, type Sql, type SqlTarget } from "../../src/infra/sql.js";
import { notifyMigrations } from "../../src/notify/migrations.js";
import { NotifyStore } from "../../src/notify/store.js";
import { usersMigrations } from "../../src/users/migrations.js";
import { UserStore } from "../../src/users/store.js";
import { rejectsWith } from "../support/errors.js";
import { createTestDatabase, serverSkip } from "../support/servers.js";

const REFRESH_TTL_MS = 30 * 24 * 3600 * 1000;
const TRACE: Trace = { requestId: "req-sql-stores" };
const NO_TRACE: Trace = { requestId: null };

const MIGRATIONS = [
  ["users", usersMigrations],
  ["auth", authMigrations],
  ["chat", chatMigrations],
  ["notify", notifyMigrations],
] as const;

interface Engine {
  /** Creates the database; returns where it is and how to remove it. */
  setup(): Promise<{ target: SqlTarget; cleanup(): Promise<void> }>;
  expectMysql: boolean;
}

interface OutboxRow {
  /** The event as delivered; `data` loosely typed, since rows of several types are compared. */
  event: Omit<DomainEvent, "data"> & { data: Record<string, unknown> };
  pending: string;
  requestId: string | null;
}

/** A producer's outbox rows of one type (all types when omitted), oldest first. */
async function outbox(db: Sql, owner: string, type?: string): Promise<OutboxRow[]> {
  const q = db(outboxTable(owner)).orderBy("id");
  if (type) q.where({ type });
  const rows = await q.select<{ payload: string; pending: string; request_id: string | null }[]>(
    "payload",
    "pending",
    "request_id",
  );
  return rows.map((r) => ({
    event: JSON.parse(r.payload) as OutboxRow["event"],
    pending: r.pending,
    requestId: r.request_id,
  }));
}

/** The one suite body, run once per engine. */
function storeSuite(engine: Engine): void {
  let target: SqlTarget;
  let cleanup: () => Promise<void>;
  let db: Sql;
  let released = false;

  before(async () => {
    ({ target, cleanup } = await engine.setup());
    db = openSql(target);
  });
  after(async () => {
    if (!released) await releaseSql(target);
    await cleanup?.();
  });

  it("opens the expected engine", () => {
    assert.equal(isMysql(db), engine.expectMysql);
  });

  it("runs every service's migrations, and again without effect (idempotent)", async () => {
    for (const [owner, migrations] of MIGRATIONS) await migrate(db, owner, migrations);
    for (const [owner, migrations] of MIGRATIONS) await migrate(db, owner, migrations);
    for (const table of ["users", "auth_credentials", "auth_sessions", "auth_refresh_tokens", "auth_login_throttle"]) {
      assert.ok(await db.schema.hasTable(table), `table ${table}`);
    }
    for (const table of [
      "rooms",
      "room_members",
      "messages",
      "message_reactions",
      "notifications",
      "notify_processed",
      "notify_room_prefs",
      "users_outbox",
      "auth_outbox",
      "chat_outbox",
    ]) {
      assert.ok(await db.schema.hasTable(table), `table ${table}`);
    }
    for (const [owner, migrations] of MIGRATIONS) {
      const rows = await db(`migrations_${owner}`).select("name");
      assert.deepEqual(
        rows.map((r: { name: string }) => r.name),
        migrations.map((m) => m.name),
        `migrations_${owner} records each migration once`,
      );
    }
  });

  it("openSql shares one connection pool per database; releaseSql counts users", async () => {
    const again = openSql(target);
    assert.equal(again, db);
    await releaseSql(target); // back to one user: still open
    assert.equal(Number((await db.raw("select 1 as one").then(firstRow)).one), 1);
  });

  describe("UserStore", () => {
    let users: UserStore;
    before(() => {
      users = new UserStore(db, new Outbox("users", "test-node"));
    });

    it("create → get → getByUsername (case-insensitive)", async () => {
      const alice = await users.create({ username: "Alice", displayName: "Alice A.", roles: [] }, TRACE);
      assert.ok(Number.isInteger(alice.id) && alice.id > 0);
      assert.equal(alice.username, "alice", "usernames are stored lower-cased");
      assert.equal(alice.displayName, "Alice A.");
      assert.equal(alice.status, "offline", "no socket yet: presence says offline");
      assert.equal((await db("users").where({ id: alice.id }).first()).status, "online", "the chosen status");
      assert.equal(alice.lastSeenAt, null);
      assert.deepEqual(alice.roles, []);
      assert.ok(Math.abs(Date.parse(alice.createdAt) - Date.now()) < 60_000, `createdAt ${alice.createdAt}`);

      assert.deepEqual(await users.get(alice.id), alice);
      assert.deepEqual(await users.getByUsername("alice"), alice);
      assert.deepEqual(await users.getByUsername("ALICE"), alice);
      assert.equal(await users.getByUsername("alicia"), undefined);
      assert.equal(await users.get(999_999), undefined);

      const admin = await users.create({ username: "root_admin", displayName: "Root", roles: ["admin"] }, NO_TRACE);
      assert.deepEqual(admin.roles, ["admin"]);

      // Each account is announced once, in the transaction that created it, for the log only.
      const registered = await outbox(db, "users", "user.registered");
      assert.deepEqual(
        registered.map((r) => r.event.data),
        [
          { userId: alice.id, username: "alice", admin: false },
          { userId: admin.id, username: "root_admin", admin: true },
        ],
      );
      assert.deepEqual(
        registered.map((r) => [r.pending, r.requestId, r.event.requestId, r.event.source]),
        [
          ["log", "req-sql-stores", "req-sql-stores", "users"],
          ["log", null, null, "users"],
        ],
      );
      assert.match(registered[0].event.id, /^[0-9a-f-]{36}$/);
      assert.notEqual(registered[0].event.id, registered[1].event.id);
    });

    it("a duplicate username in any case → CONFLICT", async () => {
      const before = (await outbox(db, "users")).length;
      await rejectsWith(users.create({ username: "alice", displayName: "x", roles: [] }, TRACE), "CONFLICT");
      const err = await rejectsWith(
        users.create({ username: "ALICE", displayName: "x", roles: [] }, TRACE),
        "CONFLICT",
      );
      assert.equal(err.code, 409);
      assert.equal((await db("users").where({ username: "alice" })).length, 1);
      assert.equal((await outbox(db, "users")).length, before, "a refused account announces nothing");
    });

    it("search by prefix, sorted, escaping LIKE wildcards", async () => {
      for (const username of ["ab", "abc", "a_b", "a_c", "a%z", "zed"]) {
        await users.create({ username, displayName: username, roles: [] }, NO_TRACE);
      }
      const names = async (q: string, limit = 50): Promise<string[]> =>
        (await users.search(q, limit)).map((u) => u.username);
      assert.deepEqual(await names("a_"), ["a_b", "a_c"], '"_" is a literal, not "any character"');
      assert.deepEqual(await names("A_"), ["a_b", "a_c"], "case-insensitive");
      assert.deepEqual(await names("a%"), ["a%z"], '"%" is a literal');
      assert.deepEqual(await names("ab"), ["ab", "abc"]);
      assert.deepEqual(await names("al"), ["alice"]);
      assert.deepEqual(await names("nobody"), []);
      // The order of "_", "%" and letters is the collation's (MariaDB's unicode_ci ≠ SQLite's binary).
      const everyone = await names("");
      assert.deepEqual([...everyone].sort(), ["a%z", "a_b", "a_c", "ab", "abc", "alice", "root_admin", "zed"]);
      const limited = await names("", 3);
      assert.deepEqual(limited, everyone.slice(0, 3), "empty prefix → everyone, in order, limited");
    });

    it("update changes only the given fields", async () => {
      const alice = (await users.getByUsername("alice"))!;
      const renamed = await users.update(alice.id, { displayName: "Alice Liddell" }, TRACE);
      assert.equal(renamed?.displayName, "Alice Liddell");
      // Presence wins over the stored status: without a socket a user reads as offline.
      assert.equal(renamed?.status, "offline");
      assert.equal((await db("users").where({ id: alice.id }).first()).status, "online");
      const away = await users.update(alice.id, { status: "away" }, TRACE);
      assert.equal((await db("users").where({ id: alice.id }).first()).status, "away");
      assert.equal(away?.displayName, "Alice Liddell");
      assert.deepEqual(await users.update(alice.id, {}, TRACE), away);
      assert.equal(await users.update(999_999, { status: "away" }, TRACE), undefined);

      const updates = (await outbox(db, "users", "user.updated")).map((r) => r.event.data);
      assert.deepEqual(
        updates.filter((d) => "userId" in d && d.userId === alice.id),
        [
          { userId: alice.id, fields: ["displayName"] },
          { userId: alice.id, fields: ["status"] },
        ],
        "one event per real change; an empty patch writes none",
      );
    });

    it("getMany and remove", async () => {
      const alice = (await users.getByUsername("alice"))!;
      const ab = (await users.getByUsername("ab"))!;
      const many = await users.getMany([alice.id, ab.id, 999_999]);
      assert.deepEqual(many.map((u) => u.username).sort(), ["ab", "alice"]);
      assert.deepEqual(await users.getMany([]), []);

      await users.remove(ab.id);
      assert.equal(await users.get(ab.id), undefined);
    });
  });

  describe("AuthStore", () => {
    let auth: AuthStore;
    before(() => {
      auth = new AuthStore(db, new Outbox("auth", "test-node"), REFRESH_TTL_MS);
    });

    it("setPassword stores and replaces the hash", async () => {
      assert.equal(await auth.passwordHash(1), undefined);
      await auth.setPassword(1, "hash-1");
      assert.equal(await auth.passwordHash(1), "hash-1");
      await auth.setPassword(1, "hash-2");
      assert.equal(await auth.passwordHash(1), "hash-2");
      assert.equal((await db("auth_credentials").where({ user_id: 1 })).length, 1);
    });

    it("openSession → active until it expires", async () => {
      const now = Date.now();
      const { sessionId, refreshToken } = await auth.openSession(7, TRACE, now);
      assert.match(sessionId, /^[0-9a-f-]{36}$/);
      assert.ok(refreshToken.length >= 32, "refresh token is long and random");
      assert.equal(await auth.sessionActive(sessionId, now), true);
      assert.equal(await auth.sessionActive(sessionId, now + REFRESH_TTL_MS + 1), false);
      assert.equal(await auth.sessionActive("00000000-0000-0000-0000-000000000000"), false);
      const stored = await db("auth_refresh_tokens").where({ session_id: sessionId });
      assert.equal(stored.length, 1);
      assert.notEqual(stored[0].token_hash, refreshToken, "only the hash of a refresh token is stored");

      const logins = (await outbox(db, "auth", "auth.login")).filter((r) => r.event.data.sessionId === sessionId);
      assert.equal(logins.length, 1, "one auth.login in the session's transaction");
      assert.deepEqual(logins[0].event.data, { userId: 7, sessionId });
      assert.equal(logins[0].requestId, "req-sql-stores");
      assert.equal(logins[0].pending, "log");
      assert.ok(!JSON.stringify(logins[0].event).includes(refreshToken), "no token in the event");
    });

    it("rotate: rotated, then reuse of the spent token → reused and the session is revoked", async () => {
      const { sessionId, refreshToken: first } = await auth.openSession(8, NO_TRACE);
      const rotated = await auth.rotate(first, TRACE);
      assert.equal(rotated.kind, "rotated");
      assert.ok(rotated.kind === "rotated");
      assert.equal(rotated.sessionId, sessionId);
      assert.equal(rotated.userId, 8);
      assert.notEqual(rotated.refreshToken, first);
      assert.equal(await auth.sessionActive(sessionId), true);

      const second = await auth.rotate(rotated.refreshToken, TRACE);
      assert.equal(second.kind, "rotated", "the new token rotates once");
      assert.ok(second.kind === "rotated");

      const reused = await auth.rotate(first, TRACE);
      assert.deepEqual(reused, { kind: "reused", sessionId, userId: 8 });
      assert.equal(await auth.sessionActive(sessionId), false, "reuse revokes the whole session");
      assert.deepEqual(await auth.rotate(second.refreshToken, TRACE), { kind: "invalid" }, "the family is dead");
      const row = await db("auth_sessions").where({ id: sessionId }).first();
      assert.equal(row.revoked_reason, "reuse");

      const mine = (await outbox(db, "auth")).filter((r) => r.event.data.sessionId === sessionId);
      assert.deepEqual(
        mine.map((r) => [r.event.type, r.event.data]),
        [
          ["auth.login", { userId: 8, sessionId }],
          ["auth.refreshed", { userId: 8, sessionId }],
          ["auth.refreshed", { userId: 8, sessionId }],
          ["auth.session_revoked", { userId: 8, sessionId, reason: "reuse" }],
        ],
        "an invalid token writes nothing",
      );
    });

    it("rotate: unknown and expired tokens are invalid", async () => {
      const before = (await outbox(db, "auth")).length;
      assert.deepEqual(await auth.rotate("not-a-token", TRACE), { kind: "invalid" });
      const now = Date.now();
      const { refreshToken } = await auth.openSession(9, TRACE, now);
      assert.deepEqual(await auth.rotate(refreshToken, TRACE, now + REFRESH_TTL_MS + 1), { kind: "invalid" });
      assert.equal((await outbox(db, "auth")).length, before + 1, "only the login was announced");
    });

    it("revokeSession returns the owner once, then undefined", async () => {
      const { sessionId, refreshToken } = await auth.openSession(10, TRACE);
      assert.equal(await auth.revokeSession(sessionId, TRACE), 10);
      assert.equal(await auth.sessionActive(sessionId), false);
      assert.equal(await auth.revokeSession(sessionId, TRACE), undefined);
      assert.equal(await auth.revokeSession("no-such-session", TRACE), undefined);
      assert.deepEqual(await auth.rotate(refreshToken, TRACE), { kind: "invalid" });
      const logouts = (await outbox(db, "auth", "auth.logout")).filter((r) => r.event.data.sessionId === sessionId);
      assert.deepEqual(
        logouts.map((r) => r.event.data),
        [{ userId: 10, sessionId }],
        "one auth.logout, for the revocation that happened",
      );
    });

    it("throttle: counts per key in a window (usernames case-insensitive); other keys unaffected; clearCounts", async () => {
      const now = Date.now();
      const WINDOW = 15 * 60 * 1000;
      const mallory = throttleKeys.loginUser("Mallory");
      const countOf = async (key: string, at = now) => (await auth.throttleCounts([key], WINDOW, at)).get(key)!;
      for (let i = 0; i < 4; i++) await auth.count([mallory], WINDOW, now);
      await auth.count([throttleKeys.loginUser(" MALLORY ")], WINDOW, now);
      const state = await countOf(throttleKeys.loginUser("mallory"));
      assert.equal(state.count, 5);
      assert.ok(state.retryAfter > 0 && state.retryAfter <= WINDOW / 1000, `retryAfter = ${state.retryAfter}`);
      assert.equal((await countOf(throttleKeys.loginUser("trent"))).count, 0, "another username is unaffected");
      assert.equal((await countOf(throttleKeys.loginPair("mallory", "10.0.0.1"))).count, 0, "another kind of key");
      assert.equal((await countOf(mallory, now + WINDOW + 1)).count, 0, "the window ends");

      await auth.clearCounts([throttleKeys.loginUser("MALLORY")]);
      assert.equal((await countOf(mallory)).count, 0);
    });

    it("throttle: a failure after the window starts a new one", async () => {
      const WINDOW = 15 * 60 * 1000;
      const oscar = throttleKeys.loginUser("oscar");
      const t0 = Date.now() - WINDOW - 1000;
      for (let i = 0; i < 5; i++) await auth.count([oscar], WINDOW, t0);
      await auth.count([oscar], WINDOW); // now: a fresh window with one failure
      assert.equal((await auth.throttleCounts([oscar], WINDOW)).get(oscar)!.count, 1);
      const row = await db("auth_login_throttle").select("failures");
      assert.ok(row.some((r: { failures: number }) => Number(r.failures) === 1));
    });

    // Parallel wrong-password requests for one username (a brute-force attempt) must all count
    // (a read-then-write transaction used to deadlock on MariaDB's gap locks here).
    it("throttle: concurrent failures for the same key are all counted", async () => {
      const WINDOW = 15 * 60 * 1000;
      const now = Date.now();
      for (const name of ["eve", "eve2", "eve3"]) {
        const key = throttleKeys.loginUser(name);
        await Promise.all(Array.from({ length: 20 }, () => auth.count([key], WINDOW, now)));
        assert.equal((await auth.throttleCounts([key], WINDOW, now)).get(key)!.count, 20, `${name}: all counted`);
      }
      const rows = await db("auth_login_throttle").select("failures");
      assert.equal(rows.filter((r: { failures: number }) => Number(r.failures) === 20).length, 3);
    });
  });

  describe("ChatStore", () => {
    let chat: ChatStore;
    let roomId: number;
    before(() => {
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

  describe("NotifyStore", () => {
    let notify: NotifyStore;
    before(() => {
      notify = new NotifyStore(db);
    });

    const item = (userId: number, kind: "mention" | "direct" | "invite", roomId: number, seq: number | null) => ({
      userId,
      kind,
      roomId,
      messageId: seq === null ? null : roomId * 100 + seq,
      seq,
      fromUserId: 6,
    });

    it("applyOnce → list newest first; unseen only; limit; per user", async () => {
      const [n1] = (await notify.applyOnce("ev-1", [item(5, "mention", 1, 10)]))!;
      const [n2] = (await notify.applyOnce("ev-2", [item(5, "invite", 2, null)]))!;
      const [n3, other] = (await notify.applyOnce("ev-3", [item(5, "direct", 3, 30), item(6, "mention", 3, 30)]))!;
      assert.equal(n1.seen, false);
      assert.equal(n1.userId, 5);
      assert.equal(n2.messageId, null);
      assert.equal(other.userId, 6);

      const listed = await notify.list(5, { unseenOnly: false, limit: 50 });
      assert.deepEqual(
        listed.map((n) => n.id),
        [n3.id, n2.id, n1.id],
      );
      const { userId: _userId, ...plain } = n1;
      assert.deepEqual(listed[2], plain, "list returns what applyOnce created");
      assert.deepEqual(
        (await notify.list(5, { unseenOnly: false, limit: 2 })).map((n) => n.id),
        [n3.id, n2.id],
      );
      assert.equal((await notify.list(6, { unseenOnly: false, limit: 50 })).length, 1);
      assert.deepEqual(await notify.list(99, { unseenOnly: false, limit: 50 }), []);
    });

    it("applyOnce is exactly once per event id, even concurrently; an event with no notification counts too", async () => {
      assert.equal(await notify.applyOnce("ev-1", [item(5, "mention", 1, 10)]), null, "a replay is a no-op");
      assert.deepEqual(await notify.applyOnce("ev-empty", []), []);
      assert.equal(await notify.applyOnce("ev-empty", []), null);
      const results = await Promise.all(
        Array.from({ length: 8 }, () => notify.applyOnce("ev-race", [item(9, "mention", 4, 1)])),
      );
      assert.equal(results.filter((r) => r !== null).length, 1, "one caller applied it");
      assert.equal((await notify.list(9, { unseenOnly: false, limit: 50 })).length, 1);
      assert.equal((await db("notify_processed").where({ event_id: "ev-race" })).length, 1);
    });

    it("mentionCounts: mentions after each read marker", async () => {
      await notify.applyOnce("ev-m2", [item(5, "mention", 1, 12)]);
      await notify.applyOnce("ev-m3", [item(5, "mention", 1, 14)]);
      assert.deepEqual(
        await notify.mentionCounts(5, { 1: 0, 3: 0, 42: 0 }),
        { 1: 3, 3: 0, 42: 0 },
        "directs do not count",
      );
      assert.deepEqual(await notify.mentionCounts(5, { 1: 12 }), { 1: 1 });
      assert.deepEqual(await notify.mentionCounts(5, { 1: 14 }), { 1: 0 });
      assert.deepEqual(await notify.mentionCounts(5, {}), {});
    });

    it("room levels: default none stored, set and replaced", async () => {
      assert.deepEqual([...(await notify.levels([5, 6], 1))], []);
      await notify.setLevel(5, 1, "none");
      await notify.setLevel(6, 1, "mentions");
      await notify.setLevel(5, 1, "all");
      await notify.setLevel(5, 2, "none");
      assert.deepEqual([...(await notify.levels([5, 6, 7], 1))].sort(), [
        [5, "all"],
        [6, "mentions"],
      ]);
      assert.deepEqual([...(await notify.levels([], 1))], []);
    });

    it("markSeen by ids, then all; only the caller's own", async () => {
      const mine = await notify.list(5, { unseenOnly: false, limit: 50 });
      const n1 = mine[mine.length - 1];
      await notify.markSeen(5, [n1.id]);
      const unseen = await notify.list(5, { unseenOnly: true, limit: 50 });
      assert.deepEqual(
        unseen.map((n) => n.id),
        mine.slice(0, -1).map((n) => n.id),
      );
      assert.equal((await notify.list(5, { unseenOnly: false, limit: 50 })).find((n) => n.id === n1.id)?.seen, true);

      const [other] = await notify.list(6, { unseenOnly: false, limit: 50 });
      await notify.markSeen(5, [other.id]); // not user 5's notification
      assert.equal((await notify.list(6, { unseenOnly: true, limit: 50 })).length, 1, "someone else's is untouched");

      await notify.markSeen(5, "all");
      assert.deepEqual(await notify.list(5, { unseenOnly: true, limit: 50 }), []);
      assert.equal((await notify.list(6, { unseenOnly: true, limit: 50 })).length, 1);
    });
  });

  it("releaseSql closes the pool when its last user releases it", async () => {
    await releaseSql(target);
    released = true;
    await assert.rejects(db.raw("select 1"));
    // Opening again gives a new pool on the same data.
    const reopened = openSql(target);
    try {
      assert.notEqual(reopened, db);
      assert.ok((await reopened("users").count({ n: "*" }).then(firstRow)).n > 0);
    } finally {
      await releaseSql(target);
    }
  });
}

function firstRow(rows: unknown): Record<string, number> {
  // knex.raw answers [rows, fields] on mysql2 and rows on better-sqlite3; builders answer rows.
  const list = Array.isArray(rows) && Array.isArray(rows[0]) ? rows[0] : rows;
  return (list as Record<string, number>[])[0];
}

describe("SQL stores on SQLite", () => {
  storeSuite({
    expectMysql: false,
    async setup() {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-sql-"));
      return {
        target: { databaseUrl: undefined, dataDir },
        async cleanup() {
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    },
  });
});

describe("SQL stores on MariaDB", async () => {
  const skip = await serverSkip("mariadb");
  if (skip) {
    it("MariaDB", { skip }, () => {});
    return;
  }
  storeSuite({
    expectMysql: true,
    async setup() {
      const database = await createTestDatabase();
      return { target: { databaseUrl: database.url, dataDir: os.tmpdir() }, cleanup: () => database.drop() };
    },
  });
});
