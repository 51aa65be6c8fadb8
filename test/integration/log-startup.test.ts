/**
 * How the log service starts:
 *
 * (1) Its MongoDB (a FerretDB of this test's own, stopped first) is unreachable when the node
 *     starts: the node still comes up (all services, embedded SQLite), the admin API answers
 *     503 UNAVAILABLE in the contract's error shape, and the domain events of that time (the
 *     registrations, a room, 20 `message.created`) wait in the producers' outboxes. Once FerretDB
 *     is started again the log connects (it retries every 5 s) and stores each of them exactly once.
 *
 * (2) On RabbitMQ: a gateway (SERVICES=api) is up before the node with the log starts, so the
 *     gateway's `$node.connected` comes before the log listens; the log still records exactly one
 *     `cluster.node_connected` for it, and one `cluster.node_disconnected` when it stops (queried
 *     through a second gateway, itself a later join recorded once).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import knexFactory from "knex";
import { ServiceBroker } from "moleculer";
import { ALL_SERVICES } from "../../src/config.js";
import type { AppEvent, Message } from "../../src/contracts/objects.js";
import { api, login, register, type Account } from "../support/accounts-helpers.js";
import { ferretBinary, OwnFerretDB } from "../support/ferretdb.js";
import { adminEvents } from "../support/notify-helpers.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { createTestDatabase, freePort, rabbitUrl, requireServer, uniqueNamespace } from "../support/servers.js";
import { OPERATOR } from "../../src/infra/permissions.js";
import { createRoom, sendRest } from "../support/chat-helpers.js";
import { expectError } from "../support/errors.js";
import { eventually, GiveUp, sleep } from "../support/wait.js";

const MESSAGES = 20;

/** Every event matching `query` (no leading "?"), through `before` pages of 500. */
async function allEvents(base: string, admin: Account, query: string): Promise<AppEvent[]> {
  const events: AppEvent[] = [];
  let before: string | null = null;
  for (;;) {
    const page = await adminEvents(base, admin, [query, "limit=500", before ? `before=${before}` : ""].join("&"));
    events.push(...page.events);
    before = page.nextBefore;
    if (!before) return events;
  }
}

/** GET /api/health → 200 with status "ok". */
async function healthy(base: string): Promise<boolean> {
  const res = await api(base, "GET", "/api/health").catch(() => undefined);
  return res?.status === 200 && res.body?.status === "ok";
}

test("the log starts while MongoDB is unreachable: 503 meanwhile, then every waiting event stored once", async (t) => {
  const bin = ferretBinary(); // throws under CI when FerretDB cannot be built
  if ("reason" in bin) {
    t.skip(bin.reason);
    return;
  }
  const started = Date.now();
  const ferret = await OwnFerretDB.start();
  t.after(() => ferret.destroy());
  await ferret.stop();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // NOCHAT_ADMINS applies at start to accounts that exist: root is registered on a first run of
  // the node (its own embedded log store) in the same DATA_DIR, then the node under test starts.
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-log-startup-"));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const seedPort = await freePort();
  const seed = await startNode({
    t,
    name: "log-seed",
    env: {
      PORT: String(seedPort),
      DATA_DIR: dataDir,
      TRANSPORTER: undefined,
      DATABASE_URL: undefined,
      MONGO_URL: undefined,
    },
    ready: { http: seedPort },
  });
  await register(`http://127.0.0.1:${seedPort}`, "root");
  await seed.stop();

  // The node's health check waits for every service, the log's included: it started without its store.
  const node = await startNode({
    t,
    name: "log-no-store",
    env: {
      PORT: String(port),
      TRANSPORTER: undefined,
      DATABASE_URL: undefined,
      MONGO_URL: ferret.url("nochat_log_startup"),
      NOCHAT_ADMINS: "root",
      DATA_DIR: dataDir,
    },
    ready: { http: port },
  });
  t.diagnostic(`node up in ${Date.now() - started} ms with FerretDB stopped`);
  const health = await api(base, "GET", "/api/health");
  assert.equal(health.status, 200, health.text);
  assert.equal(health.body.status, "ok", health.text);
  assert.ok(health.body.services.includes("log"), health.text);
  // The node came up without waiting for the store; its first connection attempt fails in the background.
  await node.waitForOutput(/the log store is not reachable; retrying in 5 s/, { timeoutMs: 15_000 });

  const root = await login(base, "root");
  const ann = await register(base, "ann");
  for (const query of ["", "?type=message.created"]) {
    const res = await api(base, "GET", `/api/admin/events${query}`, { token: root.accessToken });
    const error = expectError(res, 503, "UNAVAILABLE", `GET /api/admin/events${query} with the store down`);
    assert.deepEqual(Object.keys(error).sort(), ["code", "message", "retryAfter"], res.text);
    // The service tries to connect again every 5 s.
    assert.equal(error.retryAfter, 5, res.text);
    assert.equal(res.headers.get("retry-after"), "5", res.text);
  }
  expectError(
    await api(base, "GET", "/api/admin/events/stats", { token: root.accessToken }),
    503,
    "UNAVAILABLE",
    "GET /api/admin/events/stats with the store down",
  );
  // Permissions come first: a non-admin is still refused, not told about the store.
  expectError(await api(base, "GET", "/api/admin/events", { token: ann.accessToken }), 403, "FORBIDDEN");

  const room = await createRoom(base, ann, { name: "while-the-log-store-is-down", kind: "public" });
  const sent: Message[] = [];
  for (let i = 0; i < MESSAGES; i++) sent.push(await sendRest(base, ann, room.id, `store down #${i}`));
  assert.equal(new Set(sent.map((m) => m.id)).size, MESSAGES);

  // The events wait in chat's outbox (the node's SQLite), not lost.
  const sqlite = knexFactory({
    client: "better-sqlite3",
    connection: { filename: path.join(node.dataDir, "nochat.sqlite"), options: { readonly: true } },
    useNullAsDefault: true,
  });
  t.after(() => sqlite.destroy());
  const waitingForLog = async (): Promise<number> =>
    Number(
      (
        await sqlite.raw(
          "select count(*) as n from chat_outbox where type = 'message.created' and pending like '%log%'",
        )
      )[0].n,
    );
  assert.equal(await waitingForLog(), MESSAGES, "every message.created waits in chat's outbox");
  await sleep(1_000); // the relays keep trying meanwhile
  assert.equal(await waitingForLog(), MESSAGES);
  expectError(await api(base, "GET", "/api/admin/events", { token: root.accessToken }), 503, "UNAVAILABLE");
  assert.equal(node.exitStatus(), undefined, "the node keeps running without its log store");

  await ferret.restart();
  const restartedAt = Date.now();
  const query = `type=message.created&roomId=${room.id}`;
  await eventually(
    `${MESSAGES} message.created stored after FerretDB is back`,
    async () => {
      const res = await api(base, "GET", `/api/admin/events?${query}&limit=500`, { token: root.accessToken });
      if (res.status === 503) return false;
      if (res.status !== 200) throw new GiveUp(`GET /api/admin/events: ${res.status} ${res.text}`);
      assert.ok(res.body.events.length >= MESSAGES, `${res.body.events.length} stored`);
      return true;
    },
    { timeoutMs: 45_000, intervalMs: 1_000 },
  );
  t.diagnostic(`all ${MESSAGES} events stored ${Date.now() - restartedAt} ms after FerretDB restarted`);
  await eventually("chat's outbox drained for the log", async () => (await waitingForLog()) === 0, {
    timeoutMs: 15_000,
  });
  await sleep(1_000); // a duplicate arriving late would show now

  const created = await allEvents(base, root, query);
  assert.equal(created.length, MESSAGES, JSON.stringify(created.map((e) => e.data)));
  assert.equal(new Set(created.map((e) => e.id)).size, MESSAGES, "distinct event ids");
  assert.deepEqual(
    created.map((e) => Number(e.data.messageId)).sort((a, b) => a - b),
    sent.map((m) => m.id).sort((a, b) => a - b),
    "one event per message",
  );
  for (const e of created) {
    assert.equal(e.roomId, room.id);
    assert.equal(e.userId, ann.user.id);
  }
  // The other events of the outage, from the other producers' outboxes: once each as well.
  // (root registered on the seed run, before the node under test existed.) The users outbox backs
  // off on its own schedule while the log is down, so it may deliver a little after chat's.
  let registered: AppEvent[] = [];
  await eventually(
    "user.registered of ann",
    async () => {
      registered = await allEvents(base, root, "type=user.registered");
      return registered.some((e) => e.userId === ann.user.id);
    },
    { timeoutMs: 65_000, intervalMs: 1_000 },
  );
  await sleep(1_000); // a duplicate arriving late would show now
  registered = await allEvents(base, root, "type=user.registered");
  assert.equal(registered.filter((e) => e.userId === ann.user.id).length, 1, "user.registered of ann, once");
  const rooms = await allEvents(base, root, `type=room.created&roomId=${room.id}`);
  assert.equal(rooms.length, 1, JSON.stringify(rooms));
  t.diagnostic(`recovery ${Date.now() - restartedAt} ms, total ${Date.now() - started} ms`);
});

test("cluster events: a gateway already up when the log starts is recorded once, and its departure once", async (t) => {
  for (const server of ["rabbitmq", "mariadb"] as const) {
    if (!(await requireServer(server, t))) return;
  }
  const started = Date.now();
  const database = await createTestDatabase();
  t.after(() => database.drop());
  const common = {
    TRANSPORTER: rabbitUrl(),
    NAMESPACE: uniqueNamespace("nochat-logstart"),
    DATABASE_URL: database.url,
    MONGO_URL: undefined, // the embedded store under the log node's DATA_DIR
    NOCHAT_ADMINS: "root",
  };
  const startGateway = async (name: string): Promise<{ node: NodeHandle; base: string }> => {
    const port = await freePort();
    const node = await startNode({ t, name, services: ["api"], env: { ...common, PORT: String(port) } });
    return { node, base: `http://127.0.0.1:${port}` };
  };

  // The gateway first; the log's node starts when the gateway is known on the bus.
  const gateway = await startGateway("gateway");
  const gatewayId = gateway.node.env.NODE_ID;
  const backend = await startNode({
    t,
    name: "backend",
    services: ALL_SERVICES.filter((s) => s !== "api"),
    env: common,
  });
  assert.match(backend.output(), new RegExp(`Node '${gatewayId}' connected`), "the gateway was up before the log");
  await eventually("the gateway sees every service", () => healthy(gateway.base), { timeoutMs: 20_000 });
  t.diagnostic(`cluster up in ${Date.now() - started} ms`);

  // Admin is an operator's act: granted on the bus (what the REPL does), then a fresh login.
  await register(gateway.base, "root");
  const operator = new ServiceBroker({
    namespace: common.NAMESPACE,
    nodeID: `operator-${common.NAMESPACE}`, // = operatorId below
    transporter: { type: "AMQP", options: { url: rabbitUrl() } },
    logger: false,
  });
  await operator.start();
  t.after(() => operator.stop());
  await operator.waitForServices(["users"], 15_000);
  await operator.call("users.setAdmin", { username: "root", admin: true }, { meta: { user: OPERATOR } });
  const root = await login(gateway.base, "root");
  // The operator's broker is a node of the cluster too: the counts below are of the others.
  const operatorId = `operator-${common.NAMESPACE}`;
  const others = (events: AppEvent[]): AppEvent[] => events.filter((e) => e.data.node !== operatorId);
  const connected = (): Promise<AppEvent[]> => allEvents(gateway.base, root, "type=cluster.node_connected");
  const ofNode = (events: AppEvent[], id: string): AppEvent[] => events.filter((e) => e.data.node === id);
  await eventually(
    "the gateway's cluster.node_connected",
    async () => ofNode(await connected(), gatewayId).length > 0,
    { timeoutMs: 20_000, intervalMs: 250 },
  );
  await sleep(1_500); // a second record would show now
  let joined = await connected();
  assert.equal(ofNode(joined, gatewayId).length, 1, JSON.stringify(joined));
  assert.deepEqual(ofNode(joined, gatewayId)[0].data, { node: gatewayId, reconnected: false });
  assert.equal(ofNode(joined, gatewayId)[0].nodeId, backend.env.NODE_ID, "recorded by the log's node");
  assert.equal(others(joined).length, 1, `only the gateway joined the log's cluster: ${JSON.stringify(joined)}`);

  // A second gateway (a join the log hears as it happens) to ask through once the first is gone.
  const second = await startGateway("gateway-2");
  const secondId = second.node.env.NODE_ID;
  await eventually("the second gateway sees every service", () => healthy(second.base), { timeoutMs: 20_000 });
  const stopped = await gateway.node.stop();
  assert.equal(stopped.code, 0, `the gateway stopped cleanly: ${JSON.stringify(stopped)}`);

  const left = (): Promise<AppEvent[]> => allEvents(second.base, root, "type=cluster.node_disconnected");
  await eventually("the gateway's cluster.node_disconnected", async () => ofNode(await left(), gatewayId).length > 0, {
    timeoutMs: 20_000,
    intervalMs: 250,
  });
  await sleep(1_500);
  const departures = await left();
  assert.equal(ofNode(departures, gatewayId).length, 1, JSON.stringify(departures));
  assert.deepEqual(ofNode(departures, gatewayId)[0].data, { node: gatewayId, unexpected: false }, "a graceful stop");
  assert.equal(others(departures).length, 1, JSON.stringify(departures));

  joined = await allEvents(second.base, root, "type=cluster.node_connected");
  assert.equal(
    ofNode(joined, gatewayId).length,
    1,
    `still one arrival of the first gateway: ${JSON.stringify(joined)}`,
  );
  assert.equal(ofNode(joined, secondId).length, 1, `one arrival of the second gateway: ${JSON.stringify(joined)}`);
  assert.equal(others(joined).length, 2, JSON.stringify(joined));
  t.diagnostic(`total ${Date.now() - started} ms`);
});
