/**
 * What the audit log's store keeps (the embedded store and MongoDB/FerretDB): retention
 * (LOG_RETENTION_DAYS=1) purges events older than a day and keeps the rest; the stored documents
 * hold no password, password hash or token. The scenario that fills it: test/support/log-stores.ts.
 */
import assert from "node:assert/strict";
import { before, it } from "node:test";
import type { EventDoc } from "../../src/log/event-log.js";
import { api } from "../support/accounts-helpers.js";
import { DAY, HOUR, onEachLogStore, secretSuffix, WAIT_MS } from "../support/log-stores.js";
import { sleep } from "../support/wait.js";

onEachLogStore("audit log: storage", (log) => {
  before(async () => {
    await log.runActivity();
    await log.awaitActivityRecorded();
  });

  it("retention (LOG_RETENTION_DAYS=1): the purge deletes events older than a day and keeps the rest", async () => {
    const { base, message, store, dataDir, start, admin, all, ofType } = log;
    const countBefore = (await all()).length;
    const doc = (id: string, ageMs: number): EventDoc => ({
      _id: `retention-${id}-${secretSuffix}`,
      ts: new Date(Date.now() - ageMs),
      type: "test.retention",
      nodeId: "elsewhere",
      requestId: null,
      userId: null,
      roomId: null,
      data: { age: id },
    });
    const docs = [doc("old", 3 * DAY), doc("day-and-a-bit", DAY + HOUR), doc("recent", 12 * HOUR)];
    if (store.insertNeedsRestart) {
      await log.node.stop();
      await store.insert(dataDir, docs);
      await start();
      // The purge runs at every start (and hourly): the old ones are gone already.
      await log.node.waitForOutput(/retention: purged 2 events/, { timeoutMs: WAIT_MS });
    } else {
      await store.insert(dataDir, docs);
      assert.deepEqual(
        (await ofType("test.retention")).map((e) => e.data.age).sort(),
        ["day-and-a-bit", "old", "recent"],
        "stored, and visible before the purge",
      );
      const purged = await api(base, "POST", "/api/admin/events/purge", { token: admin(), body: {} });
      assert.equal(purged.status, 200, purged.text);
      assert.deepEqual(purged.body, { deleted: 2 });
    }
    assert.match(log.node.output(), /no TTL indexes here: retention is the hourly purge job/);
    assert.deepEqual(
      (await ofType("test.retention")).map((e) => e.data.age),
      ["recent"],
      "older than a day: gone; younger: kept",
    );
    const again = await api(base, "POST", "/api/admin/events/purge", { token: admin(), body: {} });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.body, { deleted: 0 });
    const countAfter = (await all()).length;
    assert.ok(countAfter >= countBefore + 1, `the application's events are kept (${countBefore} → ${countAfter})`);
    assert.ok(
      (await ofType("message.created", (e) => e.data.messageId === message.id)).length === 1,
      "today's events are kept",
    );
  });

  it("the stored documents hold no password, password hash or token", async () => {
    const { secrets, store, dataDir } = log;
    await sleep(1_500); // the access records of the last requests
    const raw = await store.rawDocuments(dataDir);
    assert.ok(raw.includes("user.registered") && raw.includes("http.access"), "read the real store");
    assert.ok(secrets.size >= 15, `${secrets.size} secrets checked`);
    for (const secret of secrets) {
      assert.equal(raw.includes(secret), false, `the store contains a secret (${secret.slice(0, 12)}…)`);
    }
    assert.equal(raw.includes("$argon2"), false, "no password hash");
    assert.doesNotMatch(raw, /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/, "no JWT at all");
    assert.doesNotMatch(raw, /"(password|passwordHash|accessToken|refreshToken|authorization)"/i, "no secret keys");
  });
});
