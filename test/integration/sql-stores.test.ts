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
import { AuthStore, THROTTLE } from "../../src/auth/store.js";
import { chatMigrations } from "../../src/chat/migrations.js";
import { ChatStore } from "../../src/chat/store.js";
import { AppError } from "../../src/errors.js";
import { isMysql, migrate, openSql, releaseSql, type Sql, type SqlTarget } from "../../src/infra/sql.js";
import { notifyMigrations } from "../../src/notify/migrations.js";
import { NotifyStore } from "../../src/notify/store.js";
import { usersMigrations } from "../../src/users/migrations.js";
import { UserStore } from "../../src/users/store.js";
import { createTestDatabase, serverSkip } from "../support/servers.js";

const REFRESH_TTL_MS = 30 * 24 * 3600 * 1000;

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

async function rejectsWith(promise: Promise<unknown>, type: string): Promise<AppError> {
  const err = await promise.then(
    () => assert.fail(`expected a ${type} rejection`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
  assert.equal(err.type, type);
  return err;
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
    for (const table of ["rooms", "room_members", "messages", "notifications"]) {
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
      users = new UserStore(db);
    });

    it("create → get → getByUsername (case-insensitive)", async () => {
      const alice = await users.create({ username: "Alice", displayName: "Alice A.", roles: [] });
      assert.ok(Number.isInteger(alice.id) && alice.id > 0);
      assert.equal(alice.username, "alice", "usernames are stored lower-cased");
      assert.equal(alice.displayName, "Alice A.");
      assert.equal(alice.status, "offline", "no socket connected: presence says offline");
      assert.equal(alice.lastSeenAt, null);
      assert.deepEqual(alice.roles, []);
      assert.ok(Math.abs(Date.parse(alice.createdAt) - Date.now()) < 60_000, `createdAt ${alice.createdAt}`);

      assert.deepEqual(await users.get(alice.id), alice);
      assert.deepEqual(await users.getByUsername("alice"), alice);
      assert.deepEqual(await users.getByUsername("ALICE"), alice);
      assert.equal(await users.getByUsername("alicia"), undefined);
      assert.equal(await users.get(999_999), undefined);

      const admin = await users.create({ username: "root_admin", displayName: "Root", roles: ["admin"] });
      assert.deepEqual(admin.roles, ["admin"]);
    });

    it("a duplicate username in any case → CONFLICT", async () => {
      await rejectsWith(users.create({ username: "alice", displayName: "x", roles: [] }), "CONFLICT");
      const err = await rejectsWith(users.create({ username: "ALICE", displayName: "x", roles: [] }), "CONFLICT");
      assert.equal(err.code, 409);
      assert.equal((await db("users").where({ username: "alice" })).length, 1);
    });

    it("search by prefix, sorted, escaping LIKE wildcards", async () => {
      for (const username of ["ab", "abc", "a_b", "a_c", "a%z", "zed"]) {
        await users.create({ username, displayName: username, roles: [] });
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
      const renamed = await users.update(alice.id, { displayName: "Alice Liddell" });
      assert.equal(renamed?.displayName, "Alice Liddell");
      assert.equal(renamed?.status, "offline");
      const away = await users.update(alice.id, { status: "away" });
      // The chosen availability is stored; without a connected socket the user still shows offline.
      assert.equal(away?.status, "offline");
      assert.equal((await db("users").where({ id: alice.id }).first()).status, "away");
      assert.equal(away?.displayName, "Alice Liddell");
      assert.deepEqual(await users.update(alice.id, {}), away);
      assert.equal(await users.update(999_999, { status: "away" }), undefined);

      await users.touchLastSeen([alice.id], Date.UTC(2024, 0, 2, 3, 4, 5));
      assert.equal((await users.get(alice.id))?.lastSeenAt, "2024-01-02T03:04:05.000Z");
    });

    it("getMany, grantAdmins and remove", async () => {
      const alice = (await users.getByUsername("alice"))!;
      const ab = (await users.getByUsername("ab"))!;
      const many = await users.getMany([alice.id, ab.id, 999_999]);
      assert.deepEqual(many.map((u) => u.username).sort(), ["ab", "alice"]);
      assert.deepEqual(await users.getMany([]), []);

      await users.grantAdmins(["ALICE", "ghost"]);
      await users.grantAdmins(["alice"]);
      assert.deepEqual((await users.get(alice.id))?.roles, ["admin"], "granted once");

      await users.remove(ab.id);
      assert.equal(await users.get(ab.id), undefined);
    });
  });

  describe("AuthStore", () => {
    let auth: AuthStore;
    before(() => {
      auth = new AuthStore(db, REFRESH_TTL_MS);
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
      const { sessionId, refreshToken } = await auth.openSession(7, now);
      assert.match(sessionId, /^[0-9a-f-]{36}$/);
      assert.ok(refreshToken.length >= 32, "refresh token is long and random");
      assert.equal(await auth.sessionActive(sessionId, now), true);
      assert.equal(await auth.sessionActive(sessionId, now + REFRESH_TTL_MS + 1), false);
      assert.equal(await auth.sessionActive("00000000-0000-0000-0000-000000000000"), false);
      const stored = await db("auth_refresh_tokens").where({ session_id: sessionId });
      assert.equal(stored.length, 1);
      assert.notEqual(stored[0].token_hash, refreshToken, "only the hash of a refresh token is stored");
    });

    it("rotate: rotated, then reuse of the spent token → reused and the session is revoked", async () => {
      const { sessionId, refreshToken: first } = await auth.openSession(8);
      const rotated = await auth.rotate(first);
      assert.equal(rotated.kind, "rotated");
      assert.ok(rotated.kind === "rotated");
      assert.equal(rotated.sessionId, sessionId);
      assert.equal(rotated.userId, 8);
      assert.notEqual(rotated.refreshToken, first);
      assert.equal(await auth.sessionActive(sessionId), true);

      const second = await auth.rotate(rotated.refreshToken);
      assert.equal(second.kind, "rotated", "the new token rotates once");
      assert.ok(second.kind === "rotated");

      const reused = await auth.rotate(first);
      assert.deepEqual(reused, { kind: "reused", sessionId, userId: 8 });
      assert.equal(await auth.sessionActive(sessionId), false, "reuse revokes the whole session");
      assert.deepEqual(await auth.rotate(second.refreshToken), { kind: "invalid" }, "the family is dead");
      const row = await db("auth_sessions").where({ id: sessionId }).first();
      assert.equal(row.revoked_reason, "reuse");
    });

    it("rotate: unknown and expired tokens are invalid", async () => {
      assert.deepEqual(await auth.rotate("not-a-token"), { kind: "invalid" });
      const now = Date.now();
      const { refreshToken } = await auth.openSession(9, now);
      assert.deepEqual(await auth.rotate(refreshToken, now + REFRESH_TTL_MS + 1), { kind: "invalid" });
    });

    it("revokeSession returns the owner once, then undefined", async () => {
      const { sessionId, refreshToken } = await auth.openSession(10);
      assert.equal(await auth.revokeSession(sessionId, "logout"), 10);
      assert.equal(await auth.sessionActive(sessionId), false);
      assert.equal(await auth.revokeSession(sessionId, "logout"), undefined);
      assert.equal(await auth.revokeSession("no-such-session", "logout"), undefined);
      assert.deepEqual(await auth.rotate(refreshToken), { kind: "invalid" });
    });

    it("throttle: 5 failures → throttled (case-insensitive); other usernames unaffected; clearFailures", async () => {
      const now = Date.now();
      for (let i = 0; i < THROTTLE.maxFailures - 1; i++) await auth.recordFailure("Mallory", now);
      assert.equal(await auth.throttledFor("mallory", now), 0, "4 failures are not enough");
      await auth.recordFailure(" MALLORY ", now);
      const wait = await auth.throttledFor("mallory", now);
      assert.ok(wait > 0 && wait <= THROTTLE.windowMs / 1000, `throttledFor = ${wait}`);
      assert.equal(await auth.throttledFor("Mallory", now), wait);
      assert.equal(await auth.throttledFor("trent", now), 0, "another username is unaffected");
      assert.equal(await auth.throttledFor("mallory", now + THROTTLE.windowMs + 1), 0, "the window ends");

      await auth.clearFailures("MALLORY");
      assert.equal(await auth.throttledFor("mallory", now), 0);
    });

    it("throttle: a failure after the window starts a new one", async () => {
      const t0 = Date.now() - THROTTLE.windowMs - 1000;
      for (let i = 0; i < THROTTLE.maxFailures; i++) await auth.recordFailure("oscar", t0);
      await auth.recordFailure("oscar"); // now: a fresh window with one failure
      assert.equal(await auth.throttledFor("oscar"), 0);
      const row = await db("auth_login_throttle").select("failures");
      assert.ok(row.some((r: { failures: number }) => Number(r.failures) === 1));
    });

    // Parallel wrong-password requests for one username (a brute-force attempt) must all count
    // (a read-then-write transaction used to deadlock on MariaDB's gap locks here).
    it("throttle: concurrent failures for the same username are all counted", async () => {
      const now = Date.now();
      for (const name of ["eve", "eve2", "eve3"]) {
        await Promise.all(Array.from({ length: 20 }, () => auth.recordFailure(name, now)));
        assert.ok((await auth.throttledFor(name, now)) > 0, `${name} is throttled`);
      }
      const rows = await db("auth_login_throttle").select("failures");
      assert.equal(rows.filter((r: { failures: number }) => Number(r.failures) === 20).length, 3);
    });
  });

  describe("ChatStore", () => {
    let chat: ChatStore;
    let roomId: number;
    before(() => {
      chat = new ChatStore(db);
    });

    it("createRoom makes the creator its owner", async () => {
      roomId = await chat.createRoom({ name: "general", kind: "public", createdBy: 1 });
      assert.ok(Number.isInteger(roomId) && roomId > 0);
      assert.equal((await chat.membership(roomId, 1))?.role, "owner");
      assert.equal((await chat.membership(roomId, 2))?.role, undefined);
      const room = await db("rooms").where({ id: roomId }).first();
      assert.equal(room.name, "general");
      assert.equal(room.topic, "");
      assert.equal(Number(room.last_seq), 0);
    });

    it("send gives seq 1, 2, 3; a repeated clientMsgId returns the original (created=false)", async () => {
      const a = await chat.send({ roomId, userId: 1, body: "one", clientMsgId: "cmid-0001" });
      const b = await chat.send({ roomId, userId: 1, body: "two", clientMsgId: "cmid-0002" });
      const c = await chat.send({ roomId, userId: 2, body: "three", clientMsgId: "cmid-0001", replyTo: a.message.id });
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
      assert.equal(a.message.body, "one");
      assert.equal(a.message.deleted, false);
      assert.equal(a.message.editedAt, null);
      assert.deepEqual(a.message.reactions, {});

      const again = await chat.send({ roomId, userId: 1, body: "one, retried", clientMsgId: "cmid-0001" });
      assert.equal(again.created, false);
      assert.deepEqual(again.message, a.message, "the stored original, unchanged");
      assert.equal((await db("messages").where({ user_id: 1, client_msg_id: "cmid-0001" })).length, 1);
      assert.equal(Number((await db("rooms").where({ id: roomId }).first()).last_seq), 3, "no seq spent");
    });

    it("send to a missing room → NOT_FOUND", async () => {
      await rejectsWith(chat.send({ roomId: 999_999, userId: 1, body: "x", clientMsgId: "cmid-lost" }), "NOT_FOUND");
    });

    it("30 concurrent sends in one room → seqs exactly 1..30", async () => {
      const room = await chat.createRoom({ name: "busy", kind: "public", createdBy: 1 });
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          chat.send({
            roomId: room,
            userId: 1 + (i % 3),
            body: `m${i}`,
            clientMsgId: `busy-${String(i).padStart(4, "0")}`,
          }),
        ),
      );
      assert.ok(results.every((r) => r.created));
      const seqs = results.map((r) => r.message.seq).sort((x, y) => x - y);
      assert.deepEqual(
        seqs,
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
      const history = (await chat.after(room, 0, 100)).messages;
      assert.deepEqual(
        history.map((m) => m.seq),
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
    });

    it("10 concurrent sends with the same clientMsgId → one row, all answer with it", async () => {
      const room = await chat.createRoom({ name: "retry", kind: "private", createdBy: 4 });
      const results = await Promise.all(
        Array.from({ length: 10 }, () =>
          chat.send({ roomId: room, userId: 4, body: "once", clientMsgId: "same-cmid-1" }),
        ),
      );
      assert.equal(results.filter((r) => r.created).length, 1, "exactly one send created the message");
      const ids = new Set(results.map((r) => r.message.id));
      assert.equal(ids.size, 1, "every caller got the same message");
      assert.ok(results.every((r) => r.message.seq === 1));
      assert.equal((await db("messages").where({ room_id: room })).length, 1);
      // The losers spent no seq: the next message is 2.
      const next = await chat.send({ roomId: room, userId: 4, body: "next", clientMsgId: "same-cmid-2" });
      assert.equal(next.message.seq, 2);
    });

    it("history: after a seq, ascending, limited", async () => {
      const all = (await chat.after(roomId, 0, 100)).messages;
      assert.deepEqual(
        all.map((m) => [m.seq, m.body]),
        [
          [1, "one"],
          [2, "two"],
          [3, "three"],
        ],
      );
      assert.deepEqual(
        (await chat.after(roomId, 1, 100)).messages.map((m) => m.seq),
        [2, 3],
      );
      assert.deepEqual(
        (await chat.after(roomId, 0, 2)).messages.map((m) => m.seq),
        [1, 2],
      );
      assert.deepEqual((await chat.after(roomId, 3, 100)).messages, []);
      assert.deepEqual((await chat.after(999_999, 0, 100)).messages, []);
    });
  });

  describe("NotifyStore", () => {
    let notify: NotifyStore;
    before(() => {
      notify = new NotifyStore(db);
    });

    it("add → list newest first; unseen only; limit; per user", async () => {
      const n1 = await notify.add(5, { kind: "mention", roomId: 1, messageId: 10, fromUserId: 6 });
      const n2 = await notify.add(5, { kind: "invite", roomId: 2, messageId: null, fromUserId: 6 });
      const n3 = await notify.add(5, { kind: "direct", roomId: 3, messageId: 30, fromUserId: 7 });
      await notify.add(6, { kind: "mention", roomId: 1, messageId: 11, fromUserId: 5 });
      assert.equal(n1.seen, false);
      assert.equal(n2.messageId, null);

      const listed = await notify.list(5, { unseenOnly: false, limit: 50 });
      assert.deepEqual(
        listed.map((n) => n.id),
        [n3.id, n2.id, n1.id],
      );
      assert.deepEqual(listed[2], n1, "list returns what add returned");
      assert.deepEqual(
        (await notify.list(5, { unseenOnly: false, limit: 2 })).map((n) => n.id),
        [n3.id, n2.id],
      );
      assert.equal((await notify.list(6, { unseenOnly: false, limit: 50 })).length, 1);
      assert.deepEqual(await notify.list(99, { unseenOnly: false, limit: 50 }), []);
    });

    it("markSeen by ids, then all; only the caller's own", async () => {
      const [n3, n2, n1] = await notify.list(5, { unseenOnly: false, limit: 50 });
      await notify.markSeen(5, [n1.id]);
      const unseen = await notify.list(5, { unseenOnly: true, limit: 50 });
      assert.deepEqual(
        unseen.map((n) => n.id),
        [n3.id, n2.id],
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
