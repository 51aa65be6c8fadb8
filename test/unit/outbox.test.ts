/**
 * The transactional outbox (src/infra/outbox.ts) on SQLite in a temp dir, without a broker: the
 * relay's `deliver` is a function of the test, so what each consumer received is counted exactly.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import knexFactory, { type Knex } from "knex";
import type { DomainEvent } from "../../src/contracts/domain-events.js";
import {
  OutboxRelay,
  outboxMigration,
  outboxTable,
  writeOutbox,
  type Deliver,
  type NewEvent,
  type RelayOptions,
} from "../../src/infra/outbox.js";
import { migrate, openSql, releaseSql, type SqlTarget } from "../../src/infra/sql.js";

const OWNER = "unit";
const TABLE = outboxTable(OWNER);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A log-only event (`consumersOf` → ["log"]). */
const logEvent = (n: number): NewEvent => ({
  type: "user.updated",
  requestId: `req-${n}`,
  data: { userId: n, fields: ["displayName"] },
});

/** An event for notify and log. */
const bothEvent = (n: number): NewEvent => ({
  type: "message.created",
  requestId: null,
  data: {
    messageId: n,
    roomId: 1,
    seq: n,
    userId: 1,
    roomKind: "public",
    peerId: null,
    mentions: [],
    replyTo: null,
  },
});

interface Row {
  id: number;
  event_id: string;
  type: string;
  pending: string;
  attempts: number;
  next_attempt_at: number;
  leased_by: string | null;
  lease_until: number | null;
}

/** Records every delivery per consumer; a consumer can be made to fail. */
class Consumers {
  readonly received = new Map<string, DomainEvent[]>();
  readonly batches: { consumer: string; ids: string[] }[] = [];
  readonly failing = new Set<string>();
  attempts = new Map<string, number>();

  deliver: Deliver = async (consumer, events) => {
    this.attempts.set(consumer, (this.attempts.get(consumer) ?? 0) + 1);
    if (this.failing.has(consumer)) throw new Error(`${consumer} is down`);
    this.batches.push({ consumer, ids: events.map((e) => e.id) });
    this.received.set(consumer, [...(this.received.get(consumer) ?? []), ...events]);
  };

  ids(consumer: string): string[] {
    return (this.received.get(consumer) ?? []).map((e) => e.id);
  }
}

describe("transactional outbox on SQLite", () => {
  let dataDir: string;
  let target: SqlTarget;
  let db: Knex;
  const relays: OutboxRelay[] = [];

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-outbox-"));
    target = { databaseUrl: undefined, dataDir };
    db = openSql(target);
    await migrate(db, OWNER, [outboxMigration(OWNER)]);
  });

  after(async () => {
    await Promise.all(relays.map((r) => r.stop()));
    await releaseSql(target);
    rmSync(dataDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
    await db(TABLE).delete();
  });

  const relay = (deliver: Deliver, opts: RelayOptions = {}, nodeId = "node-a", on: Knex = db): OutboxRelay => {
    const r = new OutboxRelay(on, OWNER, nodeId, deliver, { pollMs: 50, ...opts });
    relays.push(r);
    return r;
  };
  const rows = (): Promise<Row[]> => db<Row>(TABLE).orderBy("id").select();

  it("writeOutbox stores one row per event with its consumers, and returns the events as delivered", async () => {
    const written = await writeOutbox(db, OWNER, [logEvent(1), bothEvent(2)]);
    assert.equal(written.length, 2);
    const [first, second] = written;
    assert.match(first.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.notEqual(first.id, second.id);
    assert.equal(first.type, "user.updated");
    assert.equal(first.source, OWNER);
    assert.equal(first.requestId, "req-1");
    assert.ok(Math.abs(Date.parse(first.ts) - Date.now()) < 5_000);
    const stored = await rows();
    assert.deepEqual(
      stored.map((r) => [r.event_id, r.type, r.pending, Number(r.attempts), r.leased_by]),
      [
        [first.id, "user.updated", "log", 0, null],
        [second.id, "message.created", "notify,log", 0, null],
      ],
    );
    const payload = JSON.parse((await db(TABLE).where({ event_id: first.id }).first()).payload) as DomainEvent;
    assert.deepEqual(payload, first, "the row carries exactly the returned event");
    assert.deepEqual(await writeOutbox(db, OWNER, []), []);
  });

  it("writeOutbox inside a rolled-back transaction leaves nothing", async () => {
    await assert.rejects(
      db.transaction(async (trx) => {
        await writeOutbox(trx, OWNER, [logEvent(1), bothEvent(2)]);
        assert.equal((await trx(TABLE).count({ n: "*" }).first())?.n, 2, "visible inside the transaction");
        throw new Error("the change failed");
      }),
      /the change failed/,
    );
    assert.deepEqual(await rows(), []);
    // …and a committed one keeps them.
    await db.transaction((trx) => writeOutbox(trx, OWNER, [logEvent(3)]));
    assert.equal((await rows()).length, 1);
  });

  it("an idKey gives a stable id: the same event written twice is stored once", async () => {
    const a = await writeOutbox(db, OWNER, [{ ...logEvent(1), idKey: "cluster:node-x:1" }]);
    const b = await writeOutbox(db, OWNER, [{ ...logEvent(1), idKey: "cluster:node-x:1" }]);
    const c = await writeOutbox(db, OWNER, [{ ...logEvent(1), idKey: "cluster:node-x:2" }]);
    assert.equal(a[0].id, b[0].id);
    assert.notEqual(a[0].id, c[0].id);
    assert.equal((await rows()).length, 2);
  });

  it("the relay delivers in order, in batches, and deletes acknowledged rows", async () => {
    const written = await writeOutbox(
      db,
      OWNER,
      Array.from({ length: 10 }, (_, i) => (i % 2 ? bothEvent(i) : logEvent(i))),
    );
    const consumers = new Consumers();
    const r = relay(consumers.deliver, { batchSize: 4 });
    assert.equal(await r.backlog(), 10);
    r.start();
    await until("an empty outbox", async () => (await r.backlog()) === 0);
    assert.deepEqual(
      consumers.ids("log"),
      written.map((e) => e.id),
      "log got every event once, in order",
    );
    assert.deepEqual(
      consumers.ids("notify"),
      written.filter((e) => e.type === "message.created").map((e) => e.id),
      "notify got only its types, in order",
    );
    assert.ok(
      consumers.batches.every((b) => b.ids.length <= 4),
      "batches are at most batchSize",
    );
    assert.equal(consumers.batches.filter((b) => b.consumer === "log").length, 3, "10 rows in batches of 4");
    assert.deepEqual(consumers.received.get("log")?.[1], written[1], "delivered as written");
  });

  it("a failing consumer keeps its rows (pending only for it) and backs off; the others are not sent again", async () => {
    const written = await writeOutbox(db, OWNER, [bothEvent(1), logEvent(2), bothEvent(3)]);
    const consumers = new Consumers();
    consumers.failing.add("notify");
    const errors: string[] = [];
    const r = relay(consumers.deliver, { onError: (consumer) => errors.push(consumer) });

    const t0 = Date.now() + 10;
    assert.equal(await r.deliverBatch(t0), 3);
    assert.deepEqual(
      consumers.ids("log"),
      written.map((e) => e.id),
    );
    assert.deepEqual(errors, ["notify"]);
    let left = await rows();
    assert.deepEqual(
      left.map((x) => [x.event_id, x.pending, Number(x.attempts), x.leased_by]),
      [
        [written[0].id, "notify", 1, null],
        [written[2].id, "notify", 1, null],
      ],
      "the log-only row went; the others wait for notify alone, their lease released",
    );
    assert.ok(
      left.every((x) => Number(x.next_attempt_at) === t0 + 1_000),
      "first retry after 1 s",
    );

    // Not due yet: nothing is sent.
    assert.equal(await r.deliverBatch(t0 + 999), 0);
    assert.equal(consumers.attempts.get("notify"), 1);

    // Each further failure doubles the wait, up to maxBackoffMs (10 s).
    let now = t0;
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = Number((await rows())[0].next_attempt_at);
      now = before;
      await r.deliverBatch(now);
      waits.push(Number((await rows())[0].next_attempt_at) - now);
    }
    assert.deepEqual(waits, [2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
    assert.equal(consumers.ids("log").length, 3, "log was never sent these rows again");
    left = await rows();
    assert.ok(left.every((x) => Number(x.attempts) === 7));

    // notify is back: the rows go to it (only) at their next attempt, then are deleted.
    consumers.failing.delete("notify");
    assert.equal(await r.deliverBatch(Number(left[0].next_attempt_at)), 2);
    assert.deepEqual(consumers.ids("notify"), [written[0].id, written[2].id]);
    assert.equal(consumers.ids("log").length, 3);
    assert.deepEqual(await rows(), []);
  });

  it("with the relay running: a consumer down for a while gets everything once it recovers", async () => {
    const consumers = new Consumers();
    consumers.failing.add("notify");
    const r = relay(consumers.deliver, { pollMs: 20 });
    r.start();
    const written = await writeOutbox(db, OWNER, [bothEvent(1), bothEvent(2)]);
    r.kick();
    await until("log has both", () => consumers.ids("log").length === 2);
    await sleep(1_500);
    // Backoff: a try at once, one after 1 s, the next 2 s later — not one per poll.
    const tries = consumers.attempts.get("notify") ?? 0;
    assert.ok(tries >= 1 && tries <= 2, `notify was tried ${tries} times in 1.5 s`);
    consumers.failing.delete("notify");
    const took = await until("notify has both", () => consumers.ids("notify").length === 2, 6_000);
    assert.ok(took <= 4_500, `recovered delivery took ${took} ms`);
    assert.deepEqual(
      consumers.ids("notify"),
      written.map((e) => e.id),
    );
    assert.deepEqual(
      consumers.ids("log"),
      written.map((e) => e.id),
      "log got each once",
    );
    await until("an empty outbox", async () => (await r.backlog()) === 0);
  });

  it("a delivery that throws for every consumer (bus down) loses nothing", async () => {
    const consumers = new Consumers();
    consumers.failing.add("notify");
    consumers.failing.add("log");
    const r = relay(consumers.deliver);
    const written = await writeOutbox(db, OWNER, [bothEvent(1), logEvent(2)]);
    const t0 = Date.now() + 10;
    await r.deliverBatch(t0);
    assert.deepEqual(
      (await rows()).map((x) => [x.event_id, x.pending]),
      [
        [written[0].id, "notify,log"],
        [written[1].id, "log"],
      ],
    );
    consumers.failing.clear();
    await r.deliverBatch(t0 + 1_000);
    assert.deepEqual(await rows(), []);
    assert.deepEqual(
      consumers.ids("log"),
      written.map((e) => e.id),
    );
  });

  it("a row leased by another (crashed) relay waits for its lease to expire, then is delivered", async () => {
    const [event] = await writeOutbox(db, OWNER, [logEvent(1)]);
    const now = Date.now() + 10;
    await db(TABLE).update({ leased_by: "crashed-node", lease_until: now + 30_000 });
    const consumers = new Consumers();
    const r = relay(consumers.deliver, {}, "node-b");
    assert.equal(await r.deliverBatch(now), 0, "leased elsewhere: not due");
    assert.deepEqual(consumers.ids("log"), []);
    assert.equal(await r.deliverBatch(now + 30_001), 1);
    assert.deepEqual(consumers.ids("log"), [event.id]);
    assert.deepEqual(await rows(), []);
  });

  it("two relays (two nodes, two connections) on one table deliver every event exactly once between them", async () => {
    // A second connection pool on the same file, as a second producer process would have.
    const other = knexFactory({
      client: "better-sqlite3",
      connection: { filename: path.join(dataDir, "nochat.sqlite") },
      useNullAsDefault: true,
      pool: {
        min: 1,
        max: 1,
        afterCreate(conn: { pragma(sql: string): unknown }, done: (err: Error | null, conn: unknown) => void) {
          conn.pragma("busy_timeout = 5000");
          done(null, conn);
        },
      },
    });
    try {
      // Consumers that dedupe by event id, as notify and log do; deliveries are counted apart.
      const deliveries = new Map<string, number>();
      const applied = new Map<string, Set<string>>();
      const byNode = new Map<string, number>();
      const deliverFrom =
        (node: string): Deliver =>
        async (consumer, events) => {
          await sleep(Math.random() * 5);
          byNode.set(node, (byNode.get(node) ?? 0) + events.length);
          const seen = applied.get(consumer) ?? new Set<string>();
          applied.set(consumer, seen);
          for (const e of events) {
            const key = `${consumer}:${e.id}`;
            deliveries.set(key, (deliveries.get(key) ?? 0) + 1);
            seen.add(e.id);
          }
        };
      const a = relay(deliverFrom("node-a"), { batchSize: 7, pollMs: 5 }, "node-a", db);
      const b = relay(deliverFrom("node-b"), { batchSize: 7, pollMs: 5 }, "node-b", other);
      a.start();
      b.start();

      // Both producers write (and kick) while both relays run.
      const all: DomainEvent[] = [];
      await Promise.all(
        [db, other].map(async (conn, p) => {
          for (let i = 0; i < 30; i++) {
            const n = p * 1000 + i;
            all.push(...(await writeOutbox(conn, OWNER, [i % 3 === 0 ? bothEvent(n) : logEvent(n)])));
            (p === 0 ? a : b).kick();
            if (i % 5 === 0) await sleep(2);
          }
        }),
      );
      await until("an empty outbox", async () => (await a.backlog()) === 0, 10_000);

      const expected = all.flatMap((e) => (e.type === "message.created" ? ["notify", "log"] : ["log"]));
      assert.equal(applied.get("log")?.size, 60, "every event reached log");
      assert.equal(applied.get("notify")?.size, 20, "every notify event reached notify");
      const dup = [...deliveries].filter(([, n]) => n > 1);
      assert.deepEqual(dup, [], "no event was delivered twice: the leases kept the relays apart");
      assert.equal(deliveries.size, expected.length);
      assert.ok((byNode.get("node-a") ?? 0) > 0 && (byNode.get("node-b") ?? 0) > 0, "both relays took a share");
    } finally {
      await Promise.all(relays.splice(0).map((r) => r.stop()));
      await other.destroy();
    }
  });

  it("kick() delivers promptly, without waiting for the poll", async () => {
    const consumers = new Consumers();
    const r = relay(consumers.deliver, { pollMs: 60_000 });
    r.start();
    await sleep(50); // the first drain at start found nothing; the next poll is a minute away
    await writeOutbox(db, OWNER, [logEvent(1)]);
    await sleep(200);
    assert.deepEqual(consumers.ids("log"), [], "not delivered without a kick");
    r.kick();
    const took = await until("the kicked delivery", () => consumers.ids("log").length === 1);
    assert.ok(took < 500, `took ${took} ms`);
    // A kick during a delivery runs another drain right after it.
    await writeOutbox(db, OWNER, [logEvent(2)]);
    r.kick();
    r.kick();
    await writeOutbox(db, OWNER, [logEvent(3)]);
    r.kick();
    await until("both later events", () => consumers.ids("log").length === 3);
  });

  it("stop() waits for the delivery in flight; afterwards nothing is delivered and rows stay", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started = false;
    let finished = false;
    const r = relay(
      async () => {
        started = true;
        await gate;
        finished = true;
      },
      { pollMs: 60_000 },
    );
    r.start();
    await sleep(20);
    await writeOutbox(db, OWNER, [logEvent(1)]);
    r.kick();
    await until("the delivery to start", () => started);
    let stopped = false;
    const stopping = r.stop().then(() => (stopped = true));
    await sleep(100);
    assert.equal(stopped, false, "stop() is still waiting for the delivery");
    release();
    await stopping;
    assert.equal(finished, true);
    assert.deepEqual(await rows(), [], "the delivery in flight was settled before stop() returned");

    await writeOutbox(db, OWNER, [logEvent(2)]);
    r.kick();
    await sleep(100);
    assert.equal((await rows()).length, 1, "a stopped relay delivers nothing; the row waits for the next start");
    await r.stop(); // idempotent
  });
});
