/**
 * NotifyStore (src/notify/store.ts) on SQLite and MariaDB: notifications applied exactly once per
 * event, listed per user, mention counts after read markers, per-room levels, marking seen.
 */
import assert from "node:assert/strict";
import { before, it } from "node:test";
import type { Sql } from "../../src/infra/sql.js";
import { NotifyStore } from "../../src/notify/store.js";
import { onEachSqlEngine } from "../support/sql-engines.js";

onEachSqlEngine("NotifyStore", (sql) => {
  let db: Sql;
  let notify: NotifyStore;
  before(() => {
    db = sql.db;
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
