/**
 * The audit log loses nothing and stores nothing twice when its store or its node goes away
 * (RabbitMQ + MariaDB + a FerretDB of this test's own, stopped and restarted with its data):
 *   gateway   SERVICES=api
 *   backend   SERVICES=auth,users,chat,notify
 *   log       SERVICES=log, MONGO_URL = the test's FerretDB
 *
 * (a) FerretDB is stopped while exactly 500 messages are sent (500 `message.created`); the events
 *     wait in chat's outbox; after FerretDB is back there are exactly 500, none twice.
 * (b) The log node is stopped (SIGTERM) and started again while messages keep coming: every
 *     `message.created` and every request's `http.access` record is stored exactly once.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MongoClient } from "mongodb";
import mysql from "mysql2/promise";
import type { Message } from "../../src/contracts/objects.js";
import { api, register } from "../support/accounts-helpers.js";
import { newClientMsgId, createRoom } from "../support/chat-helpers.js";
import { ferretBinary, OwnFerretDB } from "../support/ferretdb.js";
import { pool } from "../support/notify-helpers.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { createTestDatabase, freePort, rabbitUrl, requireServer, uniqueNamespace } from "../support/servers.js";
import { eventually, sleep } from "../support/wait.js";

const OUTAGE_MESSAGES = 500;

test("audit log durability: FerretDB down for 500 events, log node restarted mid-stream", async (t) => {
  for (const server of ["rabbitmq", "mariadb"] as const) {
    if (!(await requireServer(server, t))) return;
  }
  const bin = ferretBinary();
  if ("reason" in bin) {
    t.skip(bin.reason);
    return;
  }
  const started = Date.now();
  const ferret = await OwnFerretDB.start();
  t.after(() => ferret.destroy());
  const database = await createTestDatabase();
  t.after(() => database.drop());
  const sql = await mysql.createConnection({ uri: database.url });
  t.after(() => sql.end());
  const dbName = "nochat_durability";
  const mongo = new MongoClient(ferret.url(dbName), { serverSelectionTimeoutMS: 5_000 });
  t.after(() => mongo.close());

  const common = {
    TRANSPORTER: rabbitUrl(),
    NAMESPACE: uniqueNamespace("nochat-logdur"),
    DATABASE_URL: database.url,
  };
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const startLog = (): Promise<NodeHandle> =>
    startNode({ t, name: "log", services: ["log"], env: { ...common, MONGO_URL: ferret.url(dbName) } });
  await Promise.all([
    startNode({ t, name: "backend", services: ["auth", "users", "chat", "notify"], env: common }),
    startNode({ t, name: "gateway", services: ["api"], env: { ...common, PORT: String(port) } }),
  ]);
  let logNode = await startLog();
  await eventually(
    "the gateway sees every service",
    async () => (await api(base, "GET", "/api/health")).status === 200,
    { timeoutMs: 20_000 },
  );
  t.diagnostic(`cluster up in ${Date.now() - started} ms`);

  const ann = await register(base, "ann");
  const send = async (roomId: number, body: string): Promise<{ message: Message; requestId: string }> => {
    const res = await api<Message>(base, "POST", `/api/rooms/${roomId}/messages`, {
      token: ann.accessToken,
      body: { body, clientMsgId: newClientMsgId() },
    });
    assert.equal(res.status, 201, `acknowledged: ${res.status} ${res.text}`);
    return { message: res.body, requestId: res.headers.get("x-request-id") ?? "" };
  };
  const events = () =>
    mongo.db().collection<{
      _id: string;
      type: string;
      roomId: number | null;
      requestId: string | null;
      data: Record<string, unknown>;
    }>("events");
  /** message.created documents of a room, per message id. */
  const createdPerMessage = async (roomId: number): Promise<Map<number, number>> => {
    const docs = await events().find({ type: "message.created", roomId }).project({ data: 1 }).toArray();
    const counts = new Map<number, number>();
    for (const d of docs) counts.set(Number(d.data.messageId), (counts.get(Number(d.data.messageId)) ?? 0) + 1);
    return counts;
  };
  const waitingForLog = async (): Promise<number> => {
    const [rows] = await sql.query("select count(*) as n from chat_outbox where pending like '%log%'");
    return Number((rows as { n: number }[])[0].n);
  };

  await t.test(`(a) FerretDB down while exactly ${OUTAGE_MESSAGES} messages are sent`, async () => {
    const room = await createRoom(base, ann, { name: "ferret-outage", kind: "public" });
    // The log works: a message before the outage is stored.
    const first = await send(room.id, "before the outage");
    await eventually("the first event", async () => (await createdPerMessage(room.id)).has(first.message.id), {
      timeoutMs: 20_000,
    });

    await ferret.stop();
    const stoppedAt = Date.now();
    const sent = await pool(
      Array.from({ length: OUTAGE_MESSAGES }, (_, i) => i),
      10,
      (i) => send(room.id, `while the store is down #${i}`),
    );
    t.diagnostic(`${OUTAGE_MESSAGES} messages acknowledged in ${Date.now() - stoppedAt} ms with FerretDB down`);
    assert.equal(new Set(sent.map((s) => s.message.id)).size, OUTAGE_MESSAGES);
    // The events wait in chat's outbox (on disk), not lost and not in memory.
    await eventually(
      `${OUTAGE_MESSAGES} events waiting for the log`,
      async () => {
        assert.equal(await waitingForLog(), OUTAGE_MESSAGES, "events waiting for the log");
        return true;
      },
      { timeoutMs: 15_000 },
    );
    await sleep(3_000); // the relay keeps failing meanwhile
    assert.equal(await waitingForLog(), OUTAGE_MESSAGES);
    assert.equal(logNode.exitStatus(), undefined, "the log node survives its store's outage");

    await ferret.restart();
    const restartedAt = Date.now();
    await eventually(
      `all ${OUTAGE_MESSAGES} events stored after FerretDB is back`,
      async () => (await createdPerMessage(room.id)).size >= OUTAGE_MESSAGES + 1,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    t.diagnostic(`stored ${Date.now() - restartedAt} ms after FerretDB restarted`);
    await eventually("chat's outbox drained", async () => (await waitingForLog()) === 0, { timeoutMs: 20_000 });
    await sleep(1_000);
    const counts = await createdPerMessage(room.id);
    assert.equal(counts.size, OUTAGE_MESSAGES + 1);
    for (const { message } of [first, ...sent]) assert.equal(counts.get(message.id), 1, `message ${message.id} once`);
    assert.equal(
      await events().countDocuments({ type: "message.created", roomId: room.id }),
      OUTAGE_MESSAGES + 1,
      `exactly ${OUTAGE_MESSAGES} (+1 before) documents`,
    );
    assert.ok(Date.now() - restartedAt < 65_000);
  });

  await t.test("(b) the log node stopped and restarted while events happen", async () => {
    const room = await createRoom(base, ann, { name: "log-restart", kind: "public" });
    const sent: { message: Message; requestId: string }[] = [];
    let sending = true;
    const sender = (async () => {
      for (let i = 0; sending || i < 40; i++) {
        sent.push(await send(room.id, `steady stream #${i}`));
        await sleep(20);
      }
    })();
    let during: number;
    try {
      await sleep(1_500);
      const stopped = await logNode.stop();
      assert.equal(stopped.code, 0, `the log node stopped cleanly: ${JSON.stringify(stopped)}`);
      during = sent.length;
      await sleep(3_000);
      logNode = await startLog();
      await sleep(1_500);
    } finally {
      sending = false;
      await sender;
    }
    t.diagnostic(`${sent.length} messages, ${sent.length - during} of them while the log node was down or starting`);
    assert.ok(sent.length - during > 20, "messages were sent while the log node was away");

    await eventually(
      "every message.created stored",
      async () => (await createdPerMessage(room.id)).size >= sent.length,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await sleep(1_000);
    const counts = await createdPerMessage(room.id);
    assert.equal(counts.size, sent.length);
    for (const { message } of sent) assert.equal(counts.get(message.id), 1, `message ${message.id} once`);

    // Each request's access record too (the gateway's outbox), exactly once.
    const requestIds = sent.map((s) => s.requestId);
    assert.ok(requestIds.every(Boolean));
    await eventually(
      "every access record",
      async () =>
        (await events().countDocuments({ type: "http.access", requestId: { $in: requestIds } })) >= sent.length,
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const access = await events()
      .find({ type: "http.access", requestId: { $in: requestIds } })
      .project({ requestId: 1, data: 1 })
      .toArray();
    assert.equal(access.length, sent.length, "one access record per request");
    assert.equal(new Set(access.map((a) => a.requestId)).size, sent.length);
    assert.ok(access.every((a) => a.data.status === 201 && a.data.route === "/api/rooms/:roomId/messages"));

    // A node that joins and leaves while the (restarted) log runs: one record each way.
    const extra = await startNode({ t, name: "extra", services: ["notify"], env: common });
    await sleep(500);
    await extra.stop();
    const clusterEvents = async (type: string) => events().find({ type, "data.node": extra.env.NODE_ID }).toArray();
    await eventually(
      "the extra node's departure in the log",
      async () => (await clusterEvents("cluster.node_disconnected")).length > 0,
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    await sleep(500);
    const joined = await clusterEvents("cluster.node_connected");
    const left = await clusterEvents("cluster.node_disconnected");
    assert.equal(joined.length, 1, JSON.stringify(joined));
    assert.equal(left.length, 1, JSON.stringify(left));
    assert.deepEqual(left[0].data, { node: extra.env.NODE_ID, unexpected: false }, "a graceful stop");
  });
  t.diagnostic(`total ${Date.now() - started} ms`);
});
