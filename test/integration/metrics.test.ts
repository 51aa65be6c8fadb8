/**
 * Prometheus metrics (issue 12, item 2) in a real cluster over RabbitMQ + MariaDB, each process with
 * its own METRICS_PORT:
 *   gateway   SERVICES=api
 *   backend   SERVICES=auth,users,chat,log
 *   notify    SERVICES=notify                    (stopped and started again)
 *
 * - each process answers `GET /metrics` on its METRICS_PORT in Prometheus' text format, with
 *   Moleculer's metrics and NoChat's, labelled with the namespace and the node id; a real Prometheus
 *   (Debian's) scrapes all three and loads ops/prometheus/alerts.yml;
 * - the gateway's `nochat_sockets_connected` is the number of connected sockets; the backend's
 *   `nochat_users_online` counts their users;
 * - sending messages over a socket moves the backend's `nochat_messages_sent_total`, the gateway's
 *   `nochat_send_ack_seconds` (count and buckets) and `nochat_fanout_seconds`; a failed login moves
 *   `nochat_login_failures_total`; the gateway's `nochat_service_instances` sees every service;
 * - while notify is stopped, the backend's `nochat_outbox_backlog{producer="chat",consumer="notify"}`
 *   rises to the messages sent meanwhile (and the lag above 0); once notify is back both fall to 0.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { ALL_SERVICES } from "../../src/config.js";
import { METRIC } from "../../src/infra/metrics.js";
import { api, register } from "../support/accounts-helpers.js";
import { newClientMsgId, createRoom } from "../support/chat-helpers.js";
import { REPO_ROOT, startNode } from "../support/processes.js";
import {
  createTestDatabase,
  freePort,
  isCI,
  onPath,
  rabbitUrl,
  requireServer,
  uniqueNamespace,
} from "../support/servers.js";
import { call, connectChat, okData, type ChatSocket } from "../support/sockets.js";
import { eventually } from "../support/wait.js";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus' text exposition format (the samples; comments skipped). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** One scrape of a process's endpoint. */
class Scrape {
  constructor(readonly samples: Sample[]) {}
  static async of(port: number): Promise<Scrape> {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) });
    assert.equal(res.status, 200, `GET :${port}/metrics`);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    return new Scrape(parseMetrics(await res.text()));
  }
  /** The sum of the samples named `name` whose labels include `labels` (0 when there is none). */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  }
  has(name: string): boolean {
    return this.samples.some((s) => s.name === name);
  }
}

/**
 * Runs Debian's Prometheus against the given METRICS_PORTs (1 s scrapes, ops/prometheus/alerts.yml
 * loaded) until every target is up and a NoChat series is queryable. Skips without the binary
 * (fails under CI=true).
 */
async function scrapedByPrometheus(t: TestContext, ports: number[]): Promise<void> {
  const binary = onPath("prometheus");
  if (!binary) {
    assert.ok(!isCI(), "prometheus is not installed (Debian package prometheus)");
    t.diagnostic("prometheus not installed: the real-scrape check is skipped");
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "nochat-prometheus-"));
  const config = [
    "global: { scrape_interval: 1s, evaluation_interval: 1s }",
    `rule_files: ["${path.join(REPO_ROOT, "ops", "prometheus", "alerts.yml")}"]`,
    "scrape_configs:",
    "  - job_name: nochat",
    `    static_configs: [{ targets: [${ports.map((p) => `"127.0.0.1:${p}"`).join(", ")}] }]`,
  ].join("\n");
  writeFileSync(path.join(dir, "prometheus.yml"), config);
  const webPort = await freePort();
  const server = spawn(
    binary,
    [
      `--config.file=${path.join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${webPort}`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  server.stderr.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-20_000)));
  t.after(() => {
    server.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  const query = async <T>(pathAndQuery: string): Promise<T> => {
    const res = await fetch(`http://127.0.0.1:${webPort}${pathAndQuery}`, { signal: AbortSignal.timeout(3_000) });
    return ((await res.json()) as { data: T }).data;
  };
  const allUp = async () => {
    const { activeTargets } = await query<{ activeTargets: { health: string }[] }>("/api/v1/targets");
    return activeTargets.length === ports.length && activeTargets.every((target) => target.health === "up");
  };
  await eventually("Prometheus to scrape every node", allUp, {
    timeoutMs: 30_000,
    context: () => `Prometheus log:\n${log}`,
  });
  const { result } = await query<{ result: { metric: Record<string, string> }[] }>(
    `/api/v1/query?query=${encodeURIComponent("nochat_sockets_connected")}`,
  );
  assert.equal(result.length, 1, "the gateway's socket gauge is stored");
  const { groups } = await query<{ groups: { rules: { name: string }[] }[] }>("/api/v1/rules");
  const alerts = groups.flatMap((g) => g.rules.map((r) => r.name));
  assert.ok(alerts.includes("NoChatRequiredServiceMissing"), `the shipped alerts are loaded: ${alerts.join(", ")}`);
}

test("/metrics per process: NoChat's counters, histograms and gauges move; the backlog follows notify", async (t) => {
  for (const server of ["rabbitmq", "mariadb"] as const) {
    if (!(await requireServer(server, t))) return;
  }
  const database = await createTestDatabase();
  t.after(() => database.drop());

  const namespace = uniqueNamespace("nochat-metrics");
  const common = {
    TRANSPORTER: rabbitUrl(),
    NAMESPACE: namespace,
    DATABASE_URL: database.url,
    MONGO_URL: undefined, // the log keeps its events in the backend's DATA_DIR
  };
  const [port, gatewayMetrics, backendMetrics, notifyMetrics] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const base = `http://127.0.0.1:${port}`;
  const startNotify = () =>
    startNode({ t, name: "notify", services: ["notify"], env: { ...common, METRICS_PORT: String(notifyMetrics) } });
  const [gateway, backend] = await Promise.all([
    startNode({
      t,
      name: "gateway",
      services: ["api"],
      env: { ...common, PORT: String(port), METRICS_PORT: String(gatewayMetrics) },
    }),
    startNode({
      t,
      name: "backend",
      services: ["auth", "users", "chat", "log"],
      env: { ...common, METRICS_PORT: String(backendMetrics) },
    }),
  ]);
  let notify = await startNotify();
  const gw = () => Scrape.of(gatewayMetrics);
  const be = () => Scrape.of(backendMetrics);

  // ---- one endpoint per process, Moleculer's metrics beside NoChat's, labelled ------------------------
  for (const [node, metricsPort, own] of [
    [gateway, gatewayMetrics, METRIC.socketsConnected],
    [backend, backendMetrics, METRIC.messagesSent],
    [notify, notifyMetrics, "moleculer_registry_nodes_total"],
  ] as const) {
    await eventually(`${node.name} exports ${own}`, async () => (await Scrape.of(metricsPort)).has(own), {
      timeoutMs: 10_000,
    });
    const scrape = await Scrape.of(metricsPort);
    assert.ok(scrape.has("moleculer_registry_nodes_total"), `${node.name}: Moleculer's own metrics`);
    const labels = scrape.samples.find((s) => s.name === "moleculer_registry_nodes_total")!.labels;
    assert.equal(labels.namespace, namespace);
    assert.equal(labels.nodeID, node.env.NODE_ID, `${node.name}: its own node id`);
    const other = await fetch(`http://127.0.0.1:${metricsPort}/other`);
    assert.equal(other.status, 404, "only /metrics is served");
  }
  // ---- a real Prometheus scrapes every node and loads the shipped alerts --------------------------------
  await scrapedByPrometheus(t, [gatewayMetrics, backendMetrics, notifyMetrics]);

  await eventually(
    "the gateway counts one instance of each required service",
    async () => {
      const scrape = await gw();
      return ALL_SERVICES.every((service) => scrape.value(METRIC.serviceInstances, { service }) === 1);
    },
    { timeoutMs: 15_000 },
  );

  // ---- sockets and online users ------------------------------------------------------------------------
  const [ann, bob] = await Promise.all([register(base, "ann"), register(base, "bob")]);
  const room = await createRoom(base, ann, { name: "metrics", kind: "public", members: [bob.user.id] });
  const sockets: ChatSocket[] = [
    await connectChat(base, ann.accessToken, { t }),
    await connectChat(base, bob.accessToken, { t }),
    await connectChat(base, bob.accessToken, { t }),
  ];
  await eventually("3 sockets connected", async () => (await gw()).value(METRIC.socketsConnected) === 3, {
    timeoutMs: 10_000,
  });
  await eventually("2 users online", async () => (await be()).value(METRIC.usersOnline) === 2, { timeoutMs: 15_000 });
  sockets[2].close();
  await eventually("2 sockets after a close", async () => (await gw()).value(METRIC.socketsConnected) === 2, {
    timeoutMs: 10_000,
  });

  // ---- messages: counter and histograms move ------------------------------------------------------------
  const send = (n: number) =>
    Promise.all(
      Array.from({ length: n }, (_, i) =>
        call(sockets[0], "message:send", { roomId: room.id, body: `hello ${i}`, clientMsgId: newClientMsgId() }).then(
          (ack) => okData(ack, `send ${i}`),
        ),
      ),
    );
  const [gwBefore, beBefore] = [await gw(), await be()];
  const SENT = 5;
  await send(SENT);
  const [gwAfter, beAfter] = [await gw(), await be()];
  assert.equal(beAfter.value(METRIC.messagesSent) - beBefore.value(METRIC.messagesSent), SENT, "messages sent");
  const ackCount = `${METRIC.sendAck}_count`;
  assert.equal(gwAfter.value(ackCount, { outcome: "ok" }) - gwBefore.value(ackCount, { outcome: "ok" }), SENT);
  assert.equal(
    gwAfter.value(`${METRIC.sendAck}_bucket`, { outcome: "ok", le: "+Inf" }) -
      gwBefore.value(`${METRIC.sendAck}_bucket`, { outcome: "ok", le: "+Inf" }),
    SENT,
    "the ack histogram's +Inf bucket",
  );
  assert.ok(gwAfter.value(`${METRIC.sendAck}_sum`, { outcome: "ok" }) > 0, "ack latency sum");
  // The fan-out is observed when the gateway emits, which may come just after the ack.
  await eventually(
    "the fan-out histogram counts every message",
    async () => (await gw()).value(`${METRIC.fanout}_count`) - gwBefore.value(`${METRIC.fanout}_count`) === SENT,
    { timeoutMs: 10_000 },
  );

  // A failed login is counted on the node that runs auth.
  const failures = (await be()).value(METRIC.loginFailures, { reason: "bad_password" });
  const bad = await api(base, "POST", "/api/auth/login", { body: { username: "ann", password: "wrong password" } });
  assert.equal(bad.status, 401);
  assert.equal((await be()).value(METRIC.loginFailures, { reason: "bad_password" }), failures + 1, "login failures");

  // ---- the backlog rises while notify is stopped, and falls back to 0 after it starts ---------------------
  const toNotify = { producer: "chat", consumer: "notify" };
  await eventually(
    "no backlog for notify while it runs",
    async () => (await be()).value(METRIC.outboxBacklog, toNotify) === 0,
    { timeoutMs: 20_000 },
  );
  await notify.stop();
  const WHILE_DOWN = 12;
  await send(WHILE_DOWN);
  await eventually(
    `the backlog for notify reaches ${WHILE_DOWN}`,
    async () => (await be()).value(METRIC.outboxBacklog, toNotify) >= WHILE_DOWN,
    { timeoutMs: 20_000 },
  );
  const down = await be();
  assert.equal(down.value(METRIC.outboxBacklog, toNotify), WHILE_DOWN, "exactly the messages sent meanwhile");
  assert.ok(down.value(METRIC.outboxLag, toNotify) > 0, "the oldest waiting event has an age");
  t.diagnostic(`backlog ${WHILE_DOWN}, lag ${down.value(METRIC.outboxLag, toNotify)} s while notify was stopped`);

  notify = await startNotify();
  const restartedAt = Date.now();
  await eventually(
    "the backlog for notify falls back to 0 once it is back",
    async () => {
      const scrape = await be();
      return scrape.value(METRIC.outboxBacklog, toNotify) === 0 && scrape.value(METRIC.outboxLag, toNotify) === 0;
    },
    { timeoutMs: 45_000, intervalMs: 250 },
  );
  t.diagnostic(`backlog back to 0 ${Date.now() - restartedAt} ms after notify started again`);
});
