/**
 * AuthStore (src/auth/store.ts) on SQLite and MariaDB: password hashes, sessions and their
 * refresh-token rotation (reuse revokes the session), revocation, and the login throttle's
 * counters, each event announced once in auth's outbox.
 */
import assert from "node:assert/strict";
import { before, it } from "node:test";
import { AuthStore, throttleKeys } from "../../src/auth/store.js";
import { Outbox } from "../../src/infra/outbox.js";
import type { Sql } from "../../src/infra/sql.js";
import { NO_TRACE, onEachSqlEngine, outbox, TRACE } from "../support/sql-engines.js";

const REFRESH_TTL_MS = 30 * 24 * 3600 * 1000;

onEachSqlEngine("AuthStore", (sql) => {
  let db: Sql;
  let auth: AuthStore;
  before(() => {
    db = sql.db;
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
