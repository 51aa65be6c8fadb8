/**
 * UserStore (src/users/store.ts) on SQLite and MariaDB: accounts created, found, searched,
 * updated and removed, each change announced once in its producer's outbox.
 */
import assert from "node:assert/strict";
import { before, it } from "node:test";
import { Outbox } from "../../src/infra/outbox.js";
import type { Sql } from "../../src/infra/sql.js";
import { UserStore } from "../../src/users/store.js";
import { rejectsWith } from "../support/errors.js";
import { NO_TRACE, onEachSqlEngine, outbox, TRACE } from "../support/sql-engines.js";

onEachSqlEngine("UserStore", (sql) => {
  let db: Sql;
  let users: UserStore;
  before(() => {
    db = sql.db;
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
    const err = await rejectsWith(users.create({ username: "ALICE", displayName: "x", roles: [] }, TRACE), "CONFLICT");
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
