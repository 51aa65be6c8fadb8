/**
 * Smoke test of the integration-test support: the helpers in test/support reach the machine's real
 * servers (MariaDB, RabbitMQ, FerretDB) and start real NoChat nodes that form a cluster.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, describe, it } from "node:test";
import amqp from "amqplib";
import { MongoClient } from "mongodb";
import mysql from "mysql2/promise";
import { startNode } from "../support/processes.js";
import {
  createTestDatabase,
  freePort,
  mongoUrl,
  mysqlUrl,
  rabbitUrl,
  serverSkip,
  uniqueNamespace,
  type TestDatabase,
} from "../support/servers.js";
import { eventually } from "../support/wait.js";

describe("support helpers without servers", () => {
  it("uniqueNamespace() gives distinct names usable as a Moleculer NAMESPACE", () => {
    const names = new Set(Array.from({ length: 50 }, () => uniqueNamespace()));
    assert.equal(names.size, 50);
    for (const name of names) assert.match(name, /^nochat-test-[0-9a-f]{10}$/);
  });

  it("freePort() returns a port that can be listened on", async () => {
    const port = await freePort();
    assert.ok(Number.isInteger(port) && port > 0 && port < 65536, `port ${port}`);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", resolve);
    });
    const address = server.address();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    assert.equal(typeof address === "object" && address?.port, port);
  });
});

describe("MariaDB", async () => {
  const skip = await serverSkip("mariadb");

  it("createTestDatabase() creates a usable database and drop() removes it", { skip }, async () => {
    const db: TestDatabase = await createTestDatabase();
    after(() => db.drop());
    assert.match(db.name, /^nochat_test_[0-9a-f]{12}$/);
    assert.equal(new URL(db.url).pathname, `/${db.name}`);

    const conn = await mysql.createConnection({ uri: db.url });
    try {
      const [[current]] = await conn.query<mysql.RowDataPacket[]>("SELECT DATABASE() AS name");
      assert.equal(current.name, db.name);
      await conn.query("CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, body VARCHAR(100) NOT NULL)");
      await conn.query("INSERT INTO t (body) VALUES (?), (?)", ["hello", "héllo ✓"]);
      const [rows] = await conn.query<mysql.RowDataPacket[]>("SELECT id, body FROM t ORDER BY id");
      assert.deepEqual(
        rows.map((r) => ({ id: r.id, body: r.body })),
        [
          { id: 1, body: "hello" },
          { id: 2, body: "héllo ✓" },
        ],
      );
    } finally {
      await conn.end();
    }

    await db.drop();
    await db.drop(); // idempotent
    const server = await mysql.createConnection({ uri: mysqlUrl() });
    try {
      const [left] = await server.query<mysql.RowDataPacket[]>("SHOW DATABASES LIKE ?", [db.name]);
      assert.equal(left.length, 0, `database ${db.name} still exists after drop()`);
    } finally {
      await server.end();
    }
  });

  it("each test database is separate", { skip }, async () => {
    const [a, b] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    after(() => Promise.all([a.drop(), b.drop()]));
    assert.notEqual(a.name, b.name);
    const ca = await mysql.createConnection({ uri: a.url });
    const cb = await mysql.createConnection({ uri: b.url });
    try {
      await ca.query("CREATE TABLE only_in_a (x INT)");
      const [inB] = await cb.query<mysql.RowDataPacket[]>("SHOW TABLES");
      assert.equal(inB.length, 0);
    } finally {
      await Promise.all([ca.end(), cb.end()]);
    }
  });
});

describe("RabbitMQ", async () => {
  const skip = await serverSkip("rabbitmq");

  it("rabbitUrl() accepts an AMQP connection that round-trips a message", { skip }, async () => {
    const connection = await amqp.connect(rabbitUrl());
    try {
      const channel = await connection.createChannel();
      const queue = `${uniqueNamespace()}.smoke`;
      await channel.assertQueue(queue, { exclusive: true, autoDelete: true });
      const body = JSON.stringify({ hello: "world", at: Date.now() });
      channel.sendToQueue(queue, Buffer.from(body));
      const msg = await eventually("the message back from the queue", () => channel.get(queue, { noAck: true }), {
        timeoutMs: 2_000,
        intervalMs: 20,
      });
      assert.equal(msg.content.toString(), body);
      await channel.close();
    } finally {
      await connection.close();
    }
  });

  it("two NoChat nodes in a unique namespace find each other over RabbitMQ", { skip }, async (t) => {
    const env = { TRANSPORTER: rabbitUrl(), NAMESPACE: uniqueNamespace() };
    const a = await startNode({ t, services: [], env: { ...env, NODE_ID: "smoke-a" } });
    const since = a.outputOffset();
    const b = await startNode({ t, services: [], env: { ...env, NODE_ID: "smoke-b" } });
    assert.match(b.output(), /NoChat node smoke-b up: \[\] on RabbitMQ/);
    await a.waitForOutput("Node 'smoke-b' connected", { since, timeoutMs: 15_000 });

    const exit = await b.stop();
    assert.equal(exit.code, 0, `smoke-b exited with ${JSON.stringify(exit)}`);
    await a.waitForOutput("Node 'smoke-b' disconnected", { since, timeoutMs: 15_000 });
    assert.equal((await a.stop()).code, 0);
  });
});

describe("FerretDB", async () => {
  const skip = await serverSkip("ferretdb");

  it("TEST_MONGO_URL accepts writes and reads", { skip }, async () => {
    const client = new MongoClient(mongoUrl()!, { serverSelectionTimeoutMS: 5_000 });
    await client.connect();
    const db = client.db(`nochat_test_${uniqueNamespace("smoke").replace(/-/g, "_")}`);
    try {
      const messages = db.collection<{ _id: string; body: string; n: number }>("messages");
      await messages.insertMany([
        { _id: "m1", body: "hello", n: 1 },
        { _id: "m2", body: "world", n: 2 },
      ]);
      const found = await messages.find({ n: { $gte: 2 } }).toArray();
      assert.deepEqual(found, [{ _id: "m2", body: "world", n: 2 }]);
      assert.equal(await messages.countDocuments(), 2);
    } finally {
      await db.dropDatabase().catch(() => undefined);
      await client.close();
    }
  });
});
