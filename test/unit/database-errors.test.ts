/**
 * A database outage answers UNAVAILABLE, never INTERNAL: the classifier in src/errors.ts (every
 * driver code it knows, real driver errors where they are cheap to provoke, and what must stay
 * INTERNAL), the DatabaseOutage middleware in a broker (retryable where safe, Moleculer's retry
 * policy), the outage log (one warning per outage, one line when it is back) and the broker
 * policy of moleculer.config.ts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import knexFactory from "knex";
import { Errors, ServiceBroker, type BrokerOptions } from "moleculer";
import { MongoBulkWriteError, MongoClient, MongoNetworkError, MongoServerError } from "mongodb";
import mysql from "mysql2/promise";
import { reloadConfig } from "../../src/config.js";
import { AppError, DATABASE_RETRY_AFTER_S, databaseUnavailable, toErrorBody } from "../../src/errors.js";
import { DatabaseOutageMiddleware, OutageTracker, databaseName, outagesOf } from "../../src/infra/database-outage.js";
import { rejectsWith } from "../support/errors.js";
import { freePort } from "../support/servers.js";
import { sleep } from "../support/wait.js";

/** What the client sees for `err`: must be 503 UNAVAILABLE with a retry hint, not logged as a fault. */
function assertUnavailable(err: unknown, what: string): void {
  const res = toErrorBody(err, "req-1");
  assert.equal(res.status, 503, `${what}: ${JSON.stringify(res)}`);
  assert.equal(res.body.code, "UNAVAILABLE", what);
  assert.equal(res.body.retryAfter, DATABASE_RETRY_AFTER_S, what);
  assert.equal(res.internal, false, what);
  assert.equal(res.body.requestId, undefined, what);
  assert.doesNotMatch(res.body.message, /ECONN|127\.0\.0\.1|mysql|SQLITE|Mongo/i, `${what}: no internals`);
}

function assertInternal(err: unknown, what: string): void {
  const res = toErrorBody(err, "req-1");
  assert.equal(res.status, 500, `${what}: ${JSON.stringify(res)}`);
  assert.equal(res.body.code, "INTERNAL", what);
  assert.equal(res.internal, true, what);
  assert.equal(databaseUnavailable(err), null, what);
}

/** better-sqlite3 ships no types; the little used here. */
const Database = createRequire(__filename)("better-sqlite3") as new (
  file: string,
  options?: { timeout?: number },
) => { exec(sql: string): void; close(): void };

const coded = (code: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(`driver says ${code}`), { code, ...extra });

describe("databaseUnavailable(): each driver code → UNAVAILABLE", () => {
  const sqlCodes: [string, boolean][] = [
    ["ECONNREFUSED", true],
    ["ECONNRESET", false],
    ["EPIPE", false],
    ["ETIMEDOUT", false],
    ["EHOSTUNREACH", true],
    ["ENETUNREACH", true],
    ["ENOTFOUND", true],
    ["EAI_AGAIN", true],
    ["PROTOCOL_CONNECTION_LOST", false],
    ["PROTOCOL_SEQUENCE_TIMEOUT", false],
    ["ER_SERVER_SHUTDOWN", false],
    ["ER_CON_COUNT_ERROR", true],
    ["ER_LOCK_WAIT_TIMEOUT", true],
    ["ER_LOCK_DEADLOCK", true],
    ["ER_CLIENT_INTERACTION_TIMEOUT", false],
    ["SQLITE_BUSY", true],
    ["SQLITE_BUSY_RECOVERY", true],
    ["SQLITE_BUSY_SNAPSHOT", true],
    ["SQLITE_BUSY_TIMEOUT", true],
    ["SQLITE_LOCKED", true],
    ["SQLITE_LOCKED_SHAREDCACHE", true],
  ];
  for (const [code, nothingDone] of sqlCodes) {
    it(`${code} (${nothingDone ? "nothing done" : "may have run"})`, () => {
      const err = coded(code);
      const outage = databaseUnavailable(err);
      assert.ok(outage, code);
      assert.equal(outage.store, "sql");
      assert.equal(outage.code, code);
      assert.equal(outage.nothingDone, nothingDone);
      assert.ok(outage.reason.length > 10, "a reason");
      assertUnavailable(err, code);
    });
  }

  it("MariaDB errno 1927 (ER_CONNECTION_KILLED, no mysql2 code name)", () => {
    const err = Object.assign(new Error("Connection was killed"), { errno: 1927, sqlState: "70100", code: undefined });
    assert.equal(databaseUnavailable(err)?.code, "1927");
    assertUnavailable(err, "1927");
    // The same number without sqlState is not a MariaDB error.
    assertInternal(Object.assign(new Error("x"), { errno: 1927 }), "errno without sqlState");
  });

  it("mysql2's dead-connection errors without a code, as knex prefixes them", () => {
    const dead = Object.assign(new Error("ROLLBACK - Can't add new command when connection is in closed state"), {
      fatal: true,
    });
    assert.equal(databaseUnavailable(dead)?.nothingDone, false);
    assertUnavailable(dead, "closed state");
    assertUnavailable(new Error("Can't write in closed state"), "write in closed state");
  });

  it("knex KnexTimeoutError: acquiring a connection did nothing; a query timeout may have run", () => {
    const acquire = new knexFactory.KnexTimeoutError(
      "Knex: Timeout acquiring a connection. The pool is probably full. Are you missing a .transacting(trx) call?",
    );
    assert.deepEqual(
      { ...databaseUnavailable(acquire), reason: undefined },
      { store: "sql", code: "KnexTimeoutError", nothingDone: true, reason: undefined },
    );
    assertUnavailable(acquire, "acquire timeout");
    const query = new knexFactory.KnexTimeoutError("Defined query timeout of 100ms exceeded when running query.");
    assert.equal(databaseUnavailable(query)?.nothingDone, false);
  });

  const mongoCodes = [6, 7, 89, 91, 189, 9001, 10107, 11600, 11602, 13435, 13436];
  for (const code of mongoCodes) {
    it(`MongoServerError code ${code}`, () => {
      const err = new MongoServerError({ message: `server says ${code}`, code });
      assert.equal(databaseUnavailable(err)?.store, "mongodb");
      assertUnavailable(err, `mongo ${code}`);
    });
  }

  it("MongoNetworkError, MongoNetworkTimeoutError, MongoServerSelectionError, MongoPoolClearedError by name", () => {
    assert.equal(databaseUnavailable(new MongoNetworkError("connect ECONNREFUSED"))?.store, "mongodb");
    assertUnavailable(new MongoNetworkError("socket closed"), "MongoNetworkError");
    // As they cross the bus: a plain error with the name kept.
    for (const name of [
      "MongoNetworkError",
      "MongoNetworkTimeoutError",
      "MongoServerSelectionError",
      "MongoPoolClearedError",
    ]) {
      const plain = { name, message: "x", code: undefined };
      assert.equal(databaseUnavailable(plain)?.code, name, name);
      assertUnavailable(plain, name);
    }
  });

  it("a MongoBulkWriteError wrapping a network error (how insertMany reports the server down)", () => {
    const network = new MongoNetworkError("connect ECONNREFUSED 127.0.0.1:27017");
    const bulk = new MongoBulkWriteError(network, {} as never);
    const outage = databaseUnavailable(bulk);
    assert.equal(outage?.store, "mongodb");
    assert.equal(outage?.code, "MongoNetworkError");
    assertUnavailable(bulk, "bulk");
  });

  it("looks through `cause` and AggregateError", () => {
    assertUnavailable(new Error("wrapped", { cause: coded("ECONNREFUSED") }), "cause");
    assertUnavailable(new AggregateError([coded("ECONNREFUSED"), coded("ECONNREFUSED")], "all failed"), "aggregate");
  });

  it("a driver error that crossed the bus as a plain object (name, code, message)", () => {
    const plain = JSON.parse(JSON.stringify({ name: "Error", code: "PROTOCOL_CONNECTION_LOST", message: "lost" }));
    assertUnavailable(plain, "plain");
  });
});

describe("databaseUnavailable(): real driver errors", () => {
  it("mysql2 connecting to a closed port → ECONNREFUSED (nothing done)", async () => {
    const port = await freePort();
    const err = await mysql.createConnection({ host: "127.0.0.1", port, connectTimeout: 2_000 }).then(
      () => assert.fail("nothing should listen there"),
      (e: unknown) => e,
    );
    assert.equal(databaseUnavailable(err)?.code, "ECONNREFUSED");
    assert.equal(databaseUnavailable(err)?.nothingDone, true);
    assertUnavailable(err, "mysql2 refused");
  });

  it("knex (mysql2) to a closed port → the driver error, UNAVAILABLE", async () => {
    const port = await freePort();
    const db = knexFactory({
      client: "mysql2",
      connection: { host: "127.0.0.1", port, user: "root" },
      pool: { min: 0, max: 1 },
      acquireConnectionTimeout: 2_000,
      log: { warn: () => undefined },
    });
    try {
      const err = await db.raw("select 1").then(
        () => assert.fail("no server"),
        (e: unknown) => e,
      );
      assertUnavailable(err, "knex refused");
    } finally {
      await db.destroy();
    }
  });

  it("better-sqlite3: a write while another connection holds the lock → SQLITE_BUSY", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nochat-busy-"));
    const file = path.join(dir, "busy.sqlite");
    const a = new Database(file);
    const b = new Database(file, { timeout: 0 });
    try {
      a.exec("create table t (x int)");
      a.exec("begin immediate");
      a.exec("insert into t values (1)");
      let err: unknown;
      try {
        b.exec("insert into t values (2)");
      } catch (e) {
        err = e;
      }
      assert.equal((err as { code?: string }).code, "SQLITE_BUSY");
      assertUnavailable(err, "sqlite busy");
      a.exec("rollback");
    } finally {
      a.close();
      b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("MongoDB driver to a closed port → MongoServerSelectionError (nothing done)", async () => {
    const port = await freePort();
    const client = new MongoClient(`mongodb://127.0.0.1:${port}/x`, { serverSelectionTimeoutMS: 300 });
    try {
      const err = await client
        .db()
        .collection("e")
        .insertOne({ a: 1 })
        .then(
          () => assert.fail("no server"),
          (e: unknown) => e,
        );
      assert.equal((err as Error).name, "MongoServerSelectionError");
      assert.equal(databaseUnavailable(err)?.nothingDone, true);
      assertUnavailable(err, "mongo selection");
    } finally {
      await client.close();
    }
  });
});

describe("databaseUnavailable(): a real bug stays INTERNAL", () => {
  it("TypeError, plain Error, SQL mistakes, constraint violations, denied access, Mongo duplicate key", () => {
    assertInternal(new TypeError("Cannot read properties of undefined (reading 'id')"), "TypeError");
    assertInternal(new Error("something broke"), "Error");
    assertInternal(coded("ER_PARSE_ERROR", { errno: 1064, sqlState: "42000" }), "ER_PARSE_ERROR");
    assertInternal(coded("ER_NO_SUCH_TABLE", { errno: 1146, sqlState: "42S02" }), "ER_NO_SUCH_TABLE");
    assertInternal(coded("ER_DUP_ENTRY", { errno: 1062, sqlState: "23000" }), "ER_DUP_ENTRY");
    assertInternal(coded("ER_ACCESS_DENIED_ERROR", { errno: 1045, sqlState: "28000" }), "ER_ACCESS_DENIED_ERROR");
    assertInternal(coded("SQLITE_CONSTRAINT_UNIQUE"), "SQLITE_CONSTRAINT_UNIQUE");
    assertInternal(coded("SQLITE_ERROR"), "SQLITE_ERROR");
    assertInternal(new MongoServerError({ message: "E11000 duplicate key", code: 11000 }), "mongo 11000");
    // A Mongo server code on something that is not a MongoDB error means nothing.
    assertInternal({ name: "Error", code: 91, message: "x" }, "code 91 outside MongoDB");
    assertInternal(new Errors.MoleculerError("boom", 500, "SOMETHING"), "MoleculerError");
  });
});

describe("DatabaseOutage middleware in a broker", () => {
  let broker: ServiceBroker;
  let dataDir: string;
  const attempts = new Map<string, number>();
  const count = (name: string) => attempts.set(name, (attempts.get(name) ?? 0) + 1);
  let healthy = false;

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-outage-"));
    reloadConfig({ DATA_DIR: dataDir, DATABASE_URL: "mysql://nochat:secret@db.example:3306/chat?ssl=1" });
    broker = new ServiceBroker({
      nodeID: "unit-outage",
      transporter: null,
      logger: false,
      middlewares: [DatabaseOutageMiddleware],
      retryPolicy: {
        enabled: true,
        retries: 2,
        delay: 10,
        maxDelay: 10,
        factor: 1,
        check: (err: Error) => Boolean((err as Error & { retryable?: boolean }).retryable),
      },
    });
    broker.createService({
      name: "store",
      actions: {
        refused: () => {
          count("refused");
          throw coded("ECONNREFUSED");
        },
        lost: () => {
          count("lost");
          throw coded("PROTOCOL_CONNECTION_LOST");
        },
        lostIdempotent: {
          idempotent: true,
          handler: () => {
            count("lostIdempotent");
            throw coded("PROTOCOL_CONNECTION_LOST");
          },
        },
        bug: () => {
          count("bug");
          throw new TypeError("x is undefined");
        },
        flaky: {
          idempotent: true,
          handler: () => {
            count("flaky");
            if ((attempts.get("flaky") ?? 0) < 3) throw coded("ER_LOCK_DEADLOCK");
            return "stored";
          },
        },
        ok: () => (healthy ? "fine" : Promise.reject(coded("ECONNREFUSED"))),
      },
    });
    await broker.start();
  });

  after(async () => {
    await broker?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** store.<action> must fail as the database being unavailable. */
  const unavailable = (action: string) => rejectsWith(broker.call(`store.${action}`), "UNAVAILABLE", action);

  it("a refused connection → AppError UNAVAILABLE with retryAfter, retryable, retried by the policy", async () => {
    attempts.clear();
    const err = await unavailable("refused");
    assert.ok(err instanceof AppError);
    assert.equal(err.retryable, true, "nothing was done: safe to retry anywhere");
    assert.deepEqual(err.data, { retryAfter: DATABASE_RETRY_AFTER_S });
    assert.equal(attempts.get("refused"), 3, "1 call + 2 retries");
    assertUnavailable(err, "converted");
  });

  it("a lost connection may have run the statement: not retried unless the action is idempotent", async () => {
    attempts.clear();
    const lost = await unavailable("lost");
    assert.equal(lost.retryable, false);
    assert.equal(attempts.get("lost"), 1);
    const idempotent = await unavailable("lostIdempotent");
    assert.equal(idempotent.retryable, true);
    assert.equal(attempts.get("lostIdempotent"), 3);
  });

  it("a deadlock that clears on the retry is answered by the retry", async () => {
    attempts.clear();
    assert.equal(await broker.call("store.flaky"), "stored");
    assert.equal(attempts.get("flaky"), 3);
  });

  it("a bug stays what it was (INTERNAL for the client), not retried", async () => {
    attempts.clear();
    await assert.rejects(broker.call("store.bug"), (err: unknown) => {
      assert.ok(err instanceof TypeError);
      assert.equal(toErrorBody(err).body.code, "INTERNAL");
      return true;
    });
    assert.equal(attempts.get("bug"), 1);
  });

  it("the node counts the database as down (its URL without credentials) until a later call succeeds", async () => {
    await unavailable("ok");
    assert.deepEqual(outagesOf(broker), ["mysql://db.example:3306/chat"]);
    healthy = true;
    // A success within a second of the last failure may have raced the outage: not yet back.
    assert.equal(await broker.call("store.ok"), "fine");
    assert.equal(outagesOf(broker).length, 1);
    await sleep(1_100);
    assert.equal(await broker.call("store.ok"), "fine");
    assert.deepEqual(outagesOf(broker), []);
  });
});

describe("OutageTracker: one warning per outage, one line when it is back", () => {
  it("logs once per outage per database, not per failure, and 'is back after N s'", () => {
    const lines: [string, string][] = [];
    let now = 1_000_000;
    const tracker = new OutageTracker(
      { warn: (msg: string) => lines.push(["warn", msg]), info: (msg: string) => lines.push(["info", msg]) } as never,
      () => now,
    );
    const refused = databaseUnavailable(coded("ECONNREFUSED"))!;
    for (let i = 0; i < 50; i++) {
      tracker.failed("mysql://db:3306/chat", refused, "chat");
      now += 100;
    }
    tracker.failed("mongodb://log:27017/log", databaseUnavailable(new MongoNetworkError("down"))!, "log");
    assert.equal(lines.length, 2, JSON.stringify(lines));
    assert.equal(lines[0][0], "warn");
    assert.match(lines[0][1], /^database mysql:\/\/db:3306\/chat is unavailable \(ECONNREFUSED: .+\)/);
    assert.doesNotMatch(lines[0][1], /\n\s+at /, "no stack");
    assert.match(lines[1][1], /^database mongodb:\/\/log:27017\/log is unavailable \(MongoNetworkError: /);

    // A call begun before the last failure says nothing; another service's success neither.
    tracker.succeeded("chat", now - 150);
    tracker.succeeded("users", now + 5_000);
    assert.equal(lines.length, 2);
    // The first success after the outage, then calls keep succeeding past the quiet second.
    now += 200;
    tracker.succeeded("chat", now - 1);
    assert.equal(lines.length, 2, "within a second of the last failure: not yet back");
    now += 1_000;
    tracker.succeeded("chat", now - 1);
    assert.equal(lines.length, 3);
    assert.deepEqual(lines[2], [
      "info",
      "database mysql://db:3306/chat is back after 5.2 s (50 failed call(s) meanwhile)",
    ]);
    assert.deepEqual(tracker.outages(), ["mongodb://log:27017/log"]);

    // The next outage is a new one: logged again.
    tracker.failed("mysql://db:3306/chat", refused, "chat");
    assert.equal(lines.length, 4);
    assert.equal(lines[3][0], "warn");
  });

  it("databaseName() drops credentials and options", () => {
    assert.equal(databaseName("mysql://root:pw@127.0.0.1:3306/nochat?ssl=1"), "mysql://127.0.0.1:3306/nochat");
    assert.equal(databaseName("mongodb://u:p@a:1,b:2/log?replicaSet=rs"), "mongodb://a:1,b:2/log");
  });
});

describe("moleculer.config.ts: the retry policy and the circuit breaker on database outages", () => {
  let options: BrokerOptions;
  let dataDir: string;
  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-config-"));
    reloadConfig({ DATA_DIR: dataDir });
    // Imported only now: it reads the configuration (DATA_DIR) when loaded.
    const loaded = (await import("../../moleculer.config.js")) as unknown as { default: BrokerOptions };
    options = loaded.default;
  });
  after(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("registers the DatabaseOutage middleware", () => {
    assert.ok(options.middlewares?.includes(DatabaseOutageMiddleware));
  });

  it("retries a retryable outage, not one that may have run", () => {
    const check = options.retryPolicy!.check!;
    const refused = databaseUnavailable(coded("ECONNREFUSED"))!;
    assert.equal(check(AppError.databaseUnavailable(refused, true)), true);
    assert.equal(check(AppError.databaseUnavailable(refused, false)), false);
    assert.equal(check(new Error("bug")), false);
  });

  it("the circuit breaker counts bugs, never an outage (converted or not)", () => {
    const check = options.circuitBreaker!.check!;
    const refused = databaseUnavailable(coded("ECONNREFUSED"))!;
    assert.equal(check(AppError.databaseUnavailable(refused, true)), false);
    assert.equal(check(coded("ECONNREFUSED")), false);
    assert.equal(check(new MongoServerError({ message: "shutting down", code: 11600 })), false);
    assert.equal(check(new Error("bug")), true);
  });
});
