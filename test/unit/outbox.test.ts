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
import { Errors } from "moleculer";
import type { DomainEvent } from "../../src/contracts/domain-events.js";
import {
  countDeadLetters,
  deadLetterTable,
  dropDeadLetter,
  isTransientDeliveryError,
  listDeadLetters,
  migrateOutbox,
  OutboxRelay,
  outboxBacklog,
  outboxMigration,
  outboxTable,
  retryDeadLetter,
  writeOutbox,
  type DeadLetter,
  type Deliver,
  type NewEvent,
  type RelayOptions,
} from "../../src/infra/outbox.js";
import { migrate, openSql, releaseSql, type SqlTarget } from "../../src/infra/sql.js";
import { eventually, sleep } from "../support/wait.js";

const OWNER = "unit";
const TABLE = outboxTable(OWNER);

/** The relays here work in milliseconds: poll often. */
const POLL = { timeoutMs: 5_000, intervalMs: 10 };

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

/** What a consumer that is down (or unreachable) answers: transient, never held against an event. */
const downError = (consumer: string): Error => new Errors.ServiceNotFoundError({ action: `${consumer}.ingest` });

/** What a consumer that refuses an event answers: permanent (here, the params validator's error). */
const refusal = (what: string): Error =>
  new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
    { field: "usernames", message: `${what}: at most 100 items`, type: "arrayMax" },
  ]);

/** Records every delivery per consumer; a consumer can be made to fail. */
class Consumers {
  readonly received = new Map<string, DomainEvent[]>();
  readonly batches: { consumer: string; ids: string[] }[] = [];
  readonly failing = new Set<string>();
  attempts = new Map<string, number>();

  deliver: Deliver = async (consumer, events) => {
    this.attempts.set(consumer, (this.attempts.get(consumer) ?? 0) + 1);
    if (this.failing.has(consumer)) throw downError(consumer);
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
    await migrateOutbox(db, OWNER);
  });

  after(async () => {
    await Promise.all(relays.map((r) => r.stop()));
    await releaseSql(target);
    rmSync(dataDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
    await db(TABLE).delete();
    await db(deadLetterTable(OWNER)).delete();
  });

  const relay = (deliver: Deliver, opts: RelayOptions = {}, nodeId = "node-a", on: Knex = db): OutboxRelay => {
    const r = new OutboxRelay(on, OWNER, nodeId, deliver, { pollMs: 50, ...opts });
    relays.push(r);
    return r;
  };
  const rows = (): Promise<Row[]> => db<Row>(TABLE).orderBy("id").select();

  it("writeOutbox stores one row per event with its consumers, and returns the events as delivered", async () => {
    const written = await writeOutbox(db, OWNER, [logEvent(1), bothEvent(2)], "unit-node");
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
    assert.deepEqual(await writeOutbox(db, OWNER, [], "unit-node"), []);
  });

  it("outboxBacklog: events and the oldest one's time per consumer, 0 for a consumer nothing waits for", async () => {
    assert.deepEqual(await outboxBacklog(db, OWNER, ["notify", "log"]), [
      { consumer: "notify", count: 0, oldestAt: null },
      { consumer: "log", count: 0, oldestAt: null },
    ]);
    await writeOutbox(db, OWNER, [logEvent(1), bothEvent(2), bothEvent(3)], "unit-node");
    await db(TABLE).update({ created_at: 1_000 }).where({ type: "user.updated" });
    await db(TABLE).update({ created_at: 2_000 }).where({ type: "message.created" });
    assert.deepEqual(await outboxBacklog(db, OWNER, ["notify", "log"]), [
      { consumer: "notify", count: 2, oldestAt: 2_000 },
      { consumer: "log", count: 3, oldestAt: 1_000 },
    ]);
  });

  it("writeOutbox inside a rolled-back transaction leaves nothing", async () => {
    await assert.rejects(
      db.transaction(async (trx) => {
        await writeOutbox(trx, OWNER, [logEvent(1), bothEvent(2)], "unit-node");
        assert.equal((await trx(TABLE).count({ n: "*" }).first())?.n, 2, "visible inside the transaction");
        throw new Error("the change failed");
      }),
      /the change failed/,
    );
    assert.deepEqual(await rows(), []);
    // …and a committed one keeps them.
    await db.transaction((trx) => writeOutbox(trx, OWNER, [logEvent(3)], "unit-node"));
    assert.equal((await rows()).length, 1);
  });

  it("an idKey gives a stable id: the same event written twice is stored once", async () => {
    const a = await writeOutbox(db, OWNER, [{ ...logEvent(1), idKey: "cluster:node-x:1" }], "unit-node");
    const b = await writeOutbox(db, OWNER, [{ ...logEvent(1), idKey: "cluster:node-x:1" }], "unit-node");
    const c = await writeOutbox(db, OWNER, [{ ...logEvent(1), idKey: "cluster:node-x:2" }], "unit-node");
    assert.equal(a[0].id, b[0].id);
    assert.notEqual(a[0].id, c[0].id);
    assert.equal((await rows()).length, 2);
  });

  it("the relay delivers in order, in batches, and deletes acknowledged rows", async () => {
    const written = await writeOutbox(
      db,
      OWNER,
      Array.from({ length: 10 }, (_, i) => (i % 2 ? bothEvent(i) : logEvent(i))),
      "unit-node",
    );
    const consumers = new Consumers();
    const r = relay(consumers.deliver, { batchSize: 4 });
    assert.equal(await r.backlog(), 10);
    r.start();
    await eventually("an empty outbox", async () => (await r.backlog()) === 0, POLL);
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
    const written = await writeOutbox(db, OWNER, [bothEvent(1), logEvent(2), bothEvent(3)], "unit-node");
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
    const written = await writeOutbox(db, OWNER, [bothEvent(1), bothEvent(2)], "unit-node");
    r.kick();
    await eventually("log has both", () => consumers.ids("log").length === 2, POLL);
    await sleep(1_500);
    // Backoff: a try at once, one after 1 s, the next 2 s later — not one per poll.
    const tries = consumers.attempts.get("notify") ?? 0;
    assert.ok(tries >= 1 && tries <= 2, `notify was tried ${tries} times in 1.5 s`);
    consumers.failing.delete("notify");
    const recoveredAt = Date.now();
    await eventually("notify has both", () => consumers.ids("notify").length === 2, { ...POLL, timeoutMs: 6_000 });
    const took = Date.now() - recoveredAt;
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
    await eventually("an empty outbox", async () => (await r.backlog()) === 0, POLL);
  });

  it("a delivery that throws for every consumer (bus down) loses nothing", async () => {
    const consumers = new Consumers();
    consumers.failing.add("notify");
    consumers.failing.add("log");
    const r = relay(consumers.deliver);
    const written = await writeOutbox(db, OWNER, [bothEvent(1), logEvent(2)], "unit-node");
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
    const [event] = await writeOutbox(db, OWNER, [logEvent(1)], "unit-node");
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
            all.push(...(await writeOutbox(conn, OWNER, [i % 3 === 0 ? bothEvent(n) : logEvent(n)], "unit-node")));
            (p === 0 ? a : b).kick();
            if (i % 5 === 0) await sleep(2);
          }
        }),
      );
      await eventually("an empty outbox", async () => (await a.backlog()) === 0, { ...POLL, timeoutMs: 10_000 });

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
    await writeOutbox(db, OWNER, [logEvent(1)], "unit-node");
    await sleep(200);
    assert.deepEqual(consumers.ids("log"), [], "not delivered without a kick");
    r.kick();
    const kickedAt = Date.now();
    await eventually("the kicked delivery", () => consumers.ids("log").length === 1, POLL);
    const took = Date.now() - kickedAt;
    assert.ok(took < 500, `took ${took} ms`);
    // A kick during a delivery runs another drain right after it.
    await writeOutbox(db, OWNER, [logEvent(2)], "unit-node");
    r.kick();
    r.kick();
    await writeOutbox(db, OWNER, [logEvent(3)], "unit-node");
    r.kick();
    await eventually("both later events", () => consumers.ids("log").length === 3, POLL);
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
    await writeOutbox(db, OWNER, [logEvent(1)], "unit-node");
    r.kick();
    await eventually("the delivery to start", () => started, POLL);
    let stopped = false;
    const stopping = r.stop().then(() => (stopped = true));
    await sleep(100);
    assert.equal(stopped, false, "stop() is still waiting for the delivery");
    release();
    await stopping;
    assert.equal(finished, true);
    assert.deepEqual(await rows(), [], "the delivery in flight was settled before stop() returned");

    await writeOutbox(db, OWNER, [logEvent(2)], "unit-node");
    r.kick();
    await sleep(100);
    assert.equal((await rows()).length, 1, "a stopped relay delivers nothing; the row waits for the next start");
    await r.stop(); // idempotent
  });
  // ---- isolating a failing event: retry alone with backoff, dead letters -------------------------

  it("transient and permanent failures are told apart", () => {
    for (const err of [
      downError("notify"),
      new Errors.RequestTimeoutError({ action: "notify.ingest", nodeID: "n1" }),
      new Errors.ServiceNotAvailableError({ action: "notify.ingest" }),
      Object.assign(new Error("x"), { type: "UNAVAILABLE" }),
      Object.assign(new Error("full"), { name: "BufferFullError" }),
      Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
    ]) {
      assert.equal(isTransientDeliveryError(err), true, `${(err as Error).name}: transient`);
    }
    for (const err of [refusal("x"), new TypeError("Cannot read properties of undefined"), new Error("a bug"), null]) {
      assert.equal(isTransientDeliveryError(err), false, `${String(err)}: permanent`);
    }
  });

  it("a poison event among 500 good ones: all good ones arrive, it is retried alone with backoff and dead-lettered after N attempts with its error; nothing is lost", async () => {
    const events = Array.from({ length: 501 }, (_, i) => (i % 3 ? logEvent(i) : bothEvent(i)));
    const written = await writeOutbox(db, OWNER, events, "unit-node");
    const poison = written[250];
    assert.equal(poison.type, "user.updated");
    const received = new Map<string, string[]>(); // consumer → event ids, in arrival order
    const calls: { consumer: string; ids: string[]; at: number }[] = [];
    const deadLettered: DeadLetter[] = [];
    const deliver: Deliver = async (consumer, batch) => {
      calls.push({ consumer, ids: batch.map((e) => e.id), at: Date.now() });
      // log refuses the whole batch that holds the poison event, as a params validator would.
      if (consumer === "log" && batch.some((e) => e.id === poison.id)) throw refusal("events[0].data.mentions");
      received.set(consumer, [...(received.get(consumer) ?? []), ...batch.map((e) => e.id)]);
    };
    const r = relay(deliver, {
      pollMs: 10,
      maxAttempts: 4,
      retryBaseMs: 100,
      onDeadLetter: (d) => deadLettered.push(d),
    });
    r.start();

    // The 500 good events reach log at once (not after the poison one's retries), each once.
    await eventually("the good events at log", () => (received.get("log") ?? []).length >= 500, POLL);
    const good = written.filter((e) => e.id !== poison.id).map((e) => e.id);
    assert.deepEqual(received.get("log")?.slice(0, 500), good, "every good event, once, in order");
    assert.deepEqual(
      received.get("notify"),
      written.filter((e) => e.type === "message.created").map((e) => e.id),
      "notify was never held up",
    );

    await eventually("the poison event dead-lettered", () => deadLettered.length === 1, { ...POLL, timeoutMs: 10_000 });
    await eventually("an empty outbox", async () => (await r.backlog()) === 0, POLL);
    const alone = calls.filter((c) => c.consumer === "log" && c.ids.length === 1 && c.ids[0] === poison.id);
    assert.equal(alone.length, 4, "offered alone 4 times (once found by splitting its batch, then 3 retries)");
    const gaps = alone.slice(1).map((c, i) => c.at - alone[i].at);
    assert.ok(gaps[0] >= 80 && gaps[1] >= 180 && gaps[2] >= 380, `exponential backoff: ${gaps.join(", ")} ms`);
    const splitting = calls.filter((c) => c.consumer === "log" && c.ids.includes(poison.id)).length;
    assert.ok(splitting <= 4 + 2 * Math.ceil(Math.log2(200)), `${splitting} calls carried the poison event`);

    const [letter] = await listDeadLetters(db, OWNER);
    assert.equal(await countDeadLetters(db, OWNER), 1);
    assert.deepEqual(
      {
        producer: letter.producer,
        consumer: letter.consumer,
        eventId: letter.eventId,
        type: letter.type,
        requestId: letter.requestId,
        attempts: letter.attempts,
      },
      { producer: OWNER, consumer: "log", eventId: poison.id, type: "user.updated", requestId: "req-250", attempts: 4 },
    );
    assert.deepEqual(letter.event, poison, "the event as it was written");
    assert.match(
      letter.lastError,
      /^ValidationError: Parameters validation error! \[VALIDATION_ERROR\].*at most 100 items/,
    );
    assert.ok(letter.firstFailedAt < letter.lastFailedAt);
    assert.deepEqual(deadLettered[0], letter);

    // Recorded in the audit log: one outbox.dead_lettered event went to log.
    const notices = (received.get("log") ?? []).filter((id) => !written.some((e) => e.id === id));
    assert.equal(notices.length, 1, "one audit notice");

    // Nothing lost: every event is delivered or dead-lettered, and only the poison one is missing.
    assert.equal(new Set(received.get("log")).size, 501, "500 good events + the audit notice");
    assert.equal(received.get("log")?.includes(poison.id), false);
  });

  it("the audit notice of a dead letter carries what it is about", async () => {
    const [poison] = await writeOutbox(db, OWNER, [logEvent(7)], "unit-node");
    const got: DomainEvent[] = [];
    const r = relay(
      async (_consumer, batch) => {
        if (batch.some((e) => e.id === poison.id)) throw new TypeError("Cannot read properties of undefined");
        got.push(...batch);
      },
      { maxAttempts: 1 },
    );
    await r.deliverBatch(Date.now() + 10);
    await r.deliverBatch(Date.now() + 20);
    const [letter] = await listDeadLetters(db, OWNER);
    assert.equal(got.length, 1);
    assert.deepEqual(
      { type: got[0].type, requestId: got[0].requestId, source: got[0].source, data: got[0].data },
      {
        type: "outbox.dead_lettered",
        requestId: "req-7",
        source: OWNER,
        data: {
          deadLetterId: letter.id,
          producer: OWNER,
          consumer: "log",
          eventId: poison.id,
          eventType: "user.updated",
          attempts: 1,
          error: "TypeError: Cannot read properties of undefined",
        },
      },
    );
  });

  it("a consumer that is down never counts against events: no dead letters however long it lasts", async () => {
    const written = await writeOutbox(db, OWNER, [bothEvent(1), bothEvent(2)], "unit-node");
    const consumers = new Consumers();
    consumers.failing.add("notify");
    const r = relay(consumers.deliver, { maxAttempts: 2, retryBaseMs: 10, maxBackoffMs: 50 });
    let now = Date.now() + 10;
    for (let i = 0; i < 10; i++, now += 1_000) await r.deliverBatch(now);
    assert.equal(consumers.attempts.get("notify"), 10);
    assert.equal(await countDeadLetters(db, OWNER), 0);
    const left = await rows();
    assert.deepEqual(
      left.map((x) => [x.pending, (x as Row & { failures: string | null }).failures]),
      [
        ["notify", null],
        ["notify", null],
      ],
    );
    consumers.failing.delete("notify");
    await r.deliverBatch(now);
    assert.deepEqual(
      consumers.ids("notify"),
      written.map((e) => e.id),
    );
    assert.deepEqual(await rows(), []);
  });

  it("a consumer may name the events it refused: the rest are acknowledged in one call, the refused one retried alone", async () => {
    const written = await writeOutbox(db, OWNER, [bothEvent(1), bothEvent(2), bothEvent(3)], "unit-node");
    const calls: string[][] = [];
    let refuse = true;
    const r = relay(
      async (consumer, batch) => {
        if (consumer !== "notify") return;
        calls.push(batch.map((e) => e.id));
        return { failed: refuse ? [{ id: written[1].id, error: "ValidationError: too many mentions" }] : [] };
      },
      { retryBaseMs: 1_000 },
    );
    const t0 = Date.now() + 10;
    await r.deliverBatch(t0);
    assert.deepEqual(calls, [written.map((e) => e.id)], "one call, not split");
    let left = (await rows()) as (Row & { failures: string | null })[];
    assert.equal(left.length, 1);
    assert.equal(left[0].event_id, written[1].id);
    assert.equal(left[0].pending, "notify");
    assert.equal(Number(left[0].next_attempt_at), t0 + 1_000);
    const failure = JSON.parse(left[0].failures ?? "{}") as Record<string, { attempts: number; error: string }>;
    assert.deepEqual(
      { attempts: failure.notify.attempts, error: failure.notify.error },
      { attempts: 1, error: "ValidationError: too many mentions" },
    );
    // Not due before its backoff; then offered alone, twice as long a wait after the next refusal.
    assert.equal(await r.deliverBatch(t0 + 999), 0);
    await r.deliverBatch(t0 + 1_000);
    assert.deepEqual(calls[1], [written[1].id]);
    left = (await rows()) as (Row & { failures: string | null })[];
    assert.equal(Number(left[0].next_attempt_at), t0 + 1_000 + 2_000);
    refuse = false;
    await r.deliverBatch(t0 + 3_000);
    assert.deepEqual(await rows(), []);
    assert.equal(await countDeadLetters(db, OWNER), 0);
  });

  it("retry puts a dead letter back for its consumer (fresh attempts) and it is delivered once accepted; drop removes it; both audited", async () => {
    const [a, b] = await writeOutbox(db, OWNER, [bothEvent(1), bothEvent(2)], "unit-node");
    const got = new Map<string, string[]>();
    let poisoned = true;
    const r = relay(
      async (consumer, batch) => {
        if (consumer === "notify" && poisoned) throw new TypeError("a bug in notify");
        got.set(consumer, [...(got.get(consumer) ?? []), ...batch.map((e) => e.id)]);
      },
      { maxAttempts: 1 },
    );
    await r.deliverBatch(Date.now() + 10);
    // Dead-lettered in the same moment: in event order for the test.
    const letters = (await listDeadLetters(db, OWNER)).sort(
      (x, y) => [a.id, b.id].indexOf(x.eventId) - [a.id, b.id].indexOf(y.eventId),
    );
    assert.deepEqual(
      letters.map((l) => [l.eventId, l.consumer, l.attempts]),
      [
        [a.id, "notify", 1],
        [b.id, "notify", 1],
      ],
    );
    assert.deepEqual(got.get("log"), [a.id, b.id], "log got both: dead-lettering is per consumer");
    await r.deliverBatch(Date.now() + 20); // the two audit notices
    assert.equal(await r.backlog(), 0);

    // The bug is fixed; an admin retries one and drops the other.
    poisoned = false;
    const by = { userId: 42, requestId: "req-admin" };
    const retried = await retryDeadLetter(db, OWNER, letters[0].id, by, "unit-node");
    assert.equal(retried?.eventId, a.id);
    assert.equal(await retryDeadLetter(db, OWNER, letters[0].id, by, "unit-node"), null, "only once");
    const dropped = await dropDeadLetter(db, OWNER, letters[1].id, by, "unit-node");
    assert.equal(dropped?.eventId, b.id);
    assert.equal(await dropDeadLetter(db, OWNER, letters[1].id, by, "unit-node"), null);
    assert.equal(await countDeadLetters(db, OWNER), 0);
    await r.deliverBatch(Date.now() + 30);
    assert.deepEqual(got.get("notify"), [a.id], "the retried event reached notify, once; the dropped one never");
    assert.equal(
      got.get("log")?.includes(a.id) && got.get("log")?.filter((id) => id === a.id).length,
      1,
      "log not sent it again",
    );
    assert.equal(got.get("log")?.length, 2 + 2 + 2, "both events, two dead-letter notices, a retry and a drop notice");
    assert.equal(await r.backlog(), 0);
  });

  it("retrying a dead letter whose event still waits for another consumer adds the consumer back to that row", async () => {
    const [a] = await writeOutbox(db, OWNER, [bothEvent(1)], "unit-node");
    const consumers = new Consumers();
    const r = relay(
      async (consumer, batch) => {
        if (consumer === "notify") throw new TypeError("bug");
        return consumers.deliver(consumer, batch);
      },
      { maxAttempts: 1 },
    );
    consumers.failing.add("log"); // log is down: the row stays for it
    await r.deliverBatch(Date.now() + 10);
    const [letter] = await listDeadLetters(db, OWNER);
    assert.deepEqual(
      (await rows()).filter((x) => x.event_id === a.id).map((x) => x.pending),
      ["log"],
    );
    await retryDeadLetter(db, OWNER, letter.id, { userId: 1, requestId: null }, "unit-node");
    assert.deepEqual(
      (await rows()).filter((x) => x.event_id === a.id).map((x) => x.pending),
      ["log,notify"],
    );
  });
});
