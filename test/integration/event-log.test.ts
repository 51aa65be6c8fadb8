/**
 * The audit log (src/log/event-log.ts) on both document stores behind src/infra/docstore.ts:
 * the embedded file store under DATA_DIR and MongoDB (FerretDB here), each in its own database.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { MongoClient } from "mongodb";
import { openDocStore, type DocStore, type DocStoreTarget } from "../../src/infra/docstore.js";
import { EventLog, type EventDoc } from "../../src/log/event-log.js";
import { mongoUrl, serverSkip } from "../support/servers.js";

interface Backend {
  kind: DocStore["kind"];
  /** Set where a second EventLog.init() is known to fail (see the test). */
  setup(): Promise<{ target: DocStoreTarget; cleanup(): Promise<void> }>;
  /** The names of the indexes of `events`, where the backend can tell. */
  indexNames(target: DocStoreTarget): Promise<string[]>;
}

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const at = (minutes: number): Date => new Date(T0 + minutes * 60_000);

function event(id: string, minutes: number, fields: Partial<EventDoc> = {}): EventDoc {
  return {
    _id: id,
    ts: at(minutes),
    type: "users.created",
    nodeId: "node-1",
    requestId: null,
    userId: null,
    roomId: null,
    data: {},
    ...fields,
  };
}

function eventLogSuite(backend: Backend): void {
  let target: DocStoreTarget;
  let cleanup: () => Promise<void>;
  let store: DocStore;
  let log: EventLog;

  before(async () => {
    ({ target, cleanup } = await backend.setup());
    store = await openDocStore(target);
    log = new EventLog(store);
  });
  after(async () => {
    await store?.close();
    await cleanup?.();
  });

  it(`opens the ${backend.kind} store`, async () => {
    assert.equal(store.kind, backend.kind);
    await store.ping();
  });

  it("init creates the indexes", async () => {
    await log.init();
    const names = await backend.indexNames(target);
    for (const name of ["ts", "type_ts", "user_ts", "room_ts"]) {
      assert.ok(names.includes(name), `index ${name} in ${JSON.stringify(names)}`);
    }
  });

  // The log service runs init at every start. FerretDB 1.24 (not MongoDB) panics on a
  // createIndexes command whose several indexes all exist already and drops the connection.
  it("init may run again on existing indexes", async () => {
    await log.init();
    const names = (await backend.indexNames(target)).filter((n) => n !== "_id_");
    assert.deepEqual([...new Set(names)].sort(), ["room_ts", "ts", "type_ts", "user_ts"]);
    assert.equal((await log.query({ limit: 10 })).length, 0, "the store still answers");
  });

  it("record stores new events and is idempotent on _id", async () => {
    const first = event("e1", 1, { userId: 1, data: { userId: 1, username: "alice", roles: [] } });
    assert.equal(await log.record([first]), 1);
    assert.equal(await log.record([first]), 0, "the same event again is not new");
    assert.equal(await log.record([{ ...first, type: "changed" }]), 0, "nor is a different event with its id");
    assert.equal(await log.record([first, event("e2", 2, { userId: 2 })]), 1, "only the new one counts");
    assert.equal(await log.record([event("e3", 3), event("e3", 3)]), 1, "a repeat within one batch is stored once");
    assert.equal(await log.record([]), 0);

    const all = await log.query({ limit: 100 });
    assert.deepEqual(
      all.map((e) => e.id),
      ["e3", "e2", "e1"],
    );
    const stored = all.find((e) => e.id === "e1")!;
    assert.deepEqual(stored, {
      id: "e1",
      ts: at(1).toISOString(),
      type: "users.created",
      nodeId: "node-1",
      requestId: null,
      userId: 1,
      roomId: null,
      data: { userId: 1, username: "alice", roles: [] },
    });
  });

  it("query filters by type, userId, roomId and time, newest first, limited", async () => {
    await log.record([
      event("r1", 10, { type: "auth.session.revoked", userId: 1, data: { reason: "logout" } }),
      event("r2", 11, { type: "auth.session.revoked", userId: 2 }),
      event("m1", 12, { type: "chat.message", userId: 1, roomId: 7 }),
      event("m2", 13, { type: "chat.message", userId: 2, roomId: 7 }),
      event("m3", 14, { type: "chat.message", userId: 1, roomId: 8 }),
    ]);
    const ids = async (q: Parameters<EventLog["query"]>[0]): Promise<string[]> => (await log.query(q)).map((e) => e.id);

    assert.deepEqual(await ids({ limit: 100 }), ["m3", "m2", "m1", "r2", "r1", "e3", "e2", "e1"]);
    assert.deepEqual(await ids({ limit: 3 }), ["m3", "m2", "m1"]);
    assert.deepEqual(await ids({ type: "auth.session.revoked", limit: 100 }), ["r2", "r1"]);
    assert.deepEqual(await ids({ userId: 1, limit: 100 }), ["m3", "m1", "r1", "e1"]);
    assert.deepEqual(await ids({ roomId: 7, limit: 100 }), ["m2", "m1"]);
    assert.deepEqual(await ids({ type: "chat.message", userId: 1, limit: 100 }), ["m3", "m1"]);
    assert.deepEqual(await ids({ type: "chat.message", userId: 1, roomId: 8, limit: 100 }), ["m3"]);
    assert.deepEqual(await ids({ from: at(11), to: at(13), limit: 100 }), ["m2", "m1", "r2"], "from/to inclusive");
    assert.deepEqual(await ids({ from: at(13), limit: 100 }), ["m3", "m2"]);
    assert.deepEqual(await ids({ to: at(2), limit: 100 }), ["e2", "e1"]);
    assert.deepEqual(await ids({ type: "chat.message", from: at(13), limit: 1 }), ["m3"]);
    assert.deepEqual(await ids({ type: "nothing", limit: 100 }), []);
    assert.deepEqual(await ids({ userId: 999, limit: 100 }), []);
    assert.deepEqual(await ids({ before: { ts: at(12), id: "m1" }, limit: 2 }), ["r2", "r1"], "the page after m1");
  });

  it("events sharing a timestamp are ordered by id (descending)", async () => {
    await log.record([
      event("s-a", 20, { type: "same" }),
      event("s-c", 20, { type: "same" }),
      event("s-b", 20, { type: "same" }),
    ]);
    assert.deepEqual(
      (await log.query({ type: "same", limit: 10 })).map((e) => e.id),
      ["s-c", "s-b", "s-a"],
    );
  });

  // `before` is a (ts, id) cursor: events sharing a page's last millisecond are not skipped.
  it("paging with `before` does not skip events that share the last timestamp of a page", async () => {
    const page1 = await log.query({ type: "same", limit: 1 });
    assert.deepEqual(
      page1.map((e) => e.id),
      ["s-c"],
    );
    const last = page1[0];
    const page2 = await log.query({ type: "same", before: { ts: new Date(last.ts), id: last.id }, limit: 10 });
    assert.deepEqual(
      page2.map((e) => e.id),
      ["s-b", "s-a"],
    );
  });

  it("purgeOlderThan deletes only events before the cutoff", async () => {
    const before = (await log.query({ limit: 1000 })).length;
    assert.equal(await log.purgeOlderThan(at(10)), 3, "e1, e2, e3");
    assert.equal(await log.purgeOlderThan(at(10)), 0);
    const left = await log.query({ limit: 1000 });
    assert.equal(left.length, before - 3);
    assert.ok(left.every((e) => Date.parse(e.ts) >= at(10).getTime()));
    assert.deepEqual(
      (await log.query({ userId: 1, limit: 100 })).map((e) => e.id),
      ["m3", "m1", "r1"],
    );
  });

  it("events survive closing and reopening the store", async () => {
    const count = (await log.query({ limit: 1000 })).length;
    await store.close();
    store = await openDocStore(target);
    log = new EventLog(store);
    assert.equal((await log.query({ limit: 1000 })).length, count);
    assert.equal(await log.record([event("m1", 12)]), 0, "ids are still known after a reopen");
  });
}

describe("event log on the embedded store", () => {
  eventLogSuite({
    kind: "embedded",
    async setup() {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-eventlog-"));
      return {
        target: { mongoUrl: undefined, dataDir },
        async cleanup() {
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    },
    async indexNames(target) {
      // nedb keeps index definitions in the data file; close() has just compacted it… or not yet:
      // read whatever is there, both the appended and the compacted forms have $$indexCreated lines.
      const file = path.join(target.dataDir, "log", "events.db");
      const fields = readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { $$indexCreated?: { fieldName: string } })
        .flatMap((doc) => (doc.$$indexCreated ? [doc.$$indexCreated.fieldName] : []));
      const byField: Record<string, string> = { ts: "ts", type: "type_ts", userId: "user_ts", roomId: "room_ts" };
      return fields.map((f) => byField[f] ?? f);
    },
  });
});

describe("event log on MongoDB (FerretDB)", async () => {
  const skip = await serverSkip("ferretdb");
  if (skip) {
    it("FerretDB", { skip }, () => {});
    return;
  }
  const dbName = `nochat_test_${randomBytes(6).toString("hex")}`;
  const url = (): string => {
    const base = new URL(mongoUrl()!);
    base.pathname = `/${dbName}`;
    return base.toString();
  };
  eventLogSuite({
    kind: "mongodb",
    async setup() {
      return {
        target: { mongoUrl: url(), dataDir: os.tmpdir() },
        async cleanup() {
          const client = new MongoClient(mongoUrl()!, { serverSelectionTimeoutMS: 5_000 });
          try {
            await client.connect();
            await client.db(dbName).dropDatabase();
            const left = await client.db().admin().listDatabases({ nameOnly: true });
            assert.ok(!left.databases.some((d) => d.name === dbName), `${dbName} was dropped`);
          } finally {
            await client.close();
          }
        },
      };
    },
    async indexNames() {
      const client = new MongoClient(url(), { serverSelectionTimeoutMS: 5_000 });
      try {
        await client.connect();
        const indexes = await client.db().collection("events").listIndexes().toArray();
        assert.equal(client.db().databaseName, dbName, "the store uses the database named in the URL");
        return indexes.map((i) => String(i.name));
      } finally {
        await client.close();
      }
    },
  });
});
