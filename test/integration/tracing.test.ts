/**
 * Following one user action across a real two-process cluster on RabbitMQ and MariaDB: a gateway
 * node (api) and a services node (auth, users, chat, notify, log), logging JSON lines (their
 * stdout is a pipe). The action is a REST call with an X-Request-ID; the answer carries it back,
 * and
 *   TRACING=console — both nodes print the action's spans as JSON log lines naming that request,
 *                     with nodeID, svc and the user's id;
 *   TRACING=event   — both nodes emit `$tracing.spans` whose traceID is that request id, taken here
 *                     by a collector broker joined to the cluster; spans carry the user's id, and
 *                     never the call's params (a login's password).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test, type TestContext } from "node:test";
import { ServiceBroker } from "moleculer";
import { api, login, register, uniqueName } from "../support/accounts-helpers.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { createTestDatabase, freePort, rabbitUrl, requireServer, uniqueNamespace } from "../support/servers.js";
import { eventually } from "../support/wait.js";

const BACKEND_SERVICES = ["auth", "users", "chat", "notify", "log"];

interface Cluster {
  base: string;
  namespace: string;
  gateway: NodeHandle;
  services: NodeHandle;
}

/** Gateway and services node over RabbitMQ with TRACING=`tracing`; undefined when a server is missing (skipped). */
async function startCluster(t: TestContext, tracing: "console" | "event"): Promise<Cluster | undefined> {
  for (const server of ["rabbitmq", "mariadb"] as const) {
    if (!(await requireServer(server, t))) return undefined;
  }
  const database = await createTestDatabase();
  const port = await freePort();
  const namespace = uniqueNamespace();
  const suffix = randomBytes(3).toString("hex");
  const env = { TRANSPORTER: rabbitUrl(), NAMESPACE: namespace, DATABASE_URL: database.url, TRACING: tracing };
  const nodes = Promise.all([
    startNode({ t, name: "gateway", services: ["api"], env: { ...env, PORT: String(port), NODE_ID: `gw-${suffix}` } }),
    startNode({ t, name: "services", services: BACKEND_SERVICES, env: { ...env, NODE_ID: `svc-${suffix}` } }),
  ]);
  // Dropped after the nodes' own t.after hooks (registered first) have stopped them.
  const [gateway, services] = await nodes.catch(async (err: unknown) => {
    await database.drop();
    throw err;
  });
  t.after(() => database.drop());
  const base = `http://127.0.0.1:${port}`;
  // Until the gateway sees the services node, its calls would fail.
  await eventually(
    "the gateway is ready (it sees every service)",
    async () => (await api(base, "GET", "/api/health/ready")).status === 200,
    { timeoutMs: 30_000, intervalMs: 250 },
  );
  return { base, namespace, gateway, services };
}

type LogLine = Record<string, unknown>;

/** A span as Moleculer's Event exporter sends it (the fields used here). */
interface SpanData {
  id: string;
  traceID: string;
  parentID?: string | null;
  name: string;
  tags: { nodeID?: string; userId?: number | null; callerNodeID?: string; requestID?: string; [k: string]: unknown };
}

/** A node's JSON log lines (anything else it wrote is skipped). */
function jsonLines(node: NodeHandle): LogLine[] {
  const lines: LogLine[] = [];
  for (const text of node.output().split("\n")) {
    if (!text.startsWith("{")) continue;
    try {
      lines.push(JSON.parse(text) as LogLine);
    } catch {
      // a line cut by the output buffer's limit
    }
  }
  return lines;
}

/** The action: a user creates a room over REST, with its own request id. */
async function createRoom(base: string, token: string, requestId: string): Promise<void> {
  const res = await api(base, "POST", "/api/rooms", {
    token,
    headers: { "X-Request-ID": requestId },
    body: { name: uniqueName("room"), kind: "public" },
  });
  assert.equal(res.status, 201, `create room: ${res.status} ${res.text}`);
  assert.equal(res.headers.get("x-request-id"), requestId, "the answer names the request id the caller gave");
}

test("TRACING=console: one REST action's request id is in JSON log lines of both nodes, with nodeID, svc and userId", async (t) => {
  const cluster = await startCluster(t, "console");
  if (!cluster) return;
  const { base, gateway, services } = cluster;

  const account = await register(base);
  const session = await login(base, account.user.username);
  const requestId = `trace-${randomBytes(6).toString("hex")}`;
  await createRoom(base, session.accessToken, requestId);

  // An unacceptable id is replaced by a fresh one, which the answer names.
  const refused = await api(base, "GET", "/api/rooms", {
    token: session.accessToken,
    headers: { "X-Request-ID": "not/ok <script>" },
  });
  assert.equal(refused.status, 200);
  const generated = refused.headers.get("x-request-id") ?? "";
  assert.match(generated, /^[0-9a-f-]{36}$/, `a generated id instead of the caller's: "${generated}"`);

  // The spans are printed when they finish: on the services node before the answer, on the gateway just after.
  await Promise.all([
    services.waitForOutput(`"requestId":"${requestId}"`, { timeoutMs: 10_000 }),
    gateway.waitForOutput(`"requestId":"${requestId}"`, { timeoutMs: 10_000 }),
  ]);
  for (const [node, service] of [
    [gateway, "api"],
    [services, "chat"],
  ] as const) {
    const lines = jsonLines(node).filter((line) => line.requestId === requestId);
    assert.ok(lines.length > 0, `${node.name}: lines naming ${requestId}`);
    for (const line of lines) {
      const shown = JSON.stringify(line);
      assert.equal(line.nodeID, node.env.NODE_ID, `${node.name}: nodeID in ${shown}`);
      assert.equal(typeof line.svc, "string", `${node.name}: svc in ${shown}`);
      // auth.resolveToken is how the gateway learns who calls: the user is not known to it yet.
      if (line.svc === "auth") assert.ok(line.userId === null || line.userId === account.user.id, shown);
      else assert.equal(line.userId, account.user.id, `${node.name}: the user's id in ${shown}`);
      assert.equal(typeof line.ts, "number");
      assert.equal(typeof line.level, "string");
    }
    assert.ok(
      lines.some((line) => line.svc === service && line.userId === account.user.id),
      `${node.name}: a line of ${service} for the request: ${JSON.stringify(lines.slice(0, 5))}`,
    );
    t.diagnostic(`${node.name}: ${lines.length} lines name ${requestId}`);
  }
  // The services node's lines show the action itself (its span, named after it).
  assert.ok(
    jsonLines(services).some((line) => line.requestId === requestId && /chat\.createRoom/.test(String(line.msg))),
    "the services node's lines name the action chat.createRoom",
  );
  // Neither node logs or traces a call's params: the password never shows.
  for (const node of [gateway, services]) {
    assert.equal(node.output().includes(account.password), false, `${node.name}: no password in the output`);
  }
});

test("TRACING=event: both nodes' spans of one REST action share its request id as traceID, tagged with the user", async (t) => {
  const cluster = await startCluster(t, "event");
  if (!cluster) return;
  const { base, namespace, gateway, services } = cluster;

  // A collector on the bus, as an operator's tracing sink would be.
  const spans: SpanData[] = [];
  const collectorId = `collector-${randomBytes(3).toString("hex")}`;
  const collector = new ServiceBroker({
    namespace,
    nodeID: collectorId,
    transporter: { type: "AMQP", options: { url: rabbitUrl() } },
    logger: false,
  });
  collector.createService({
    name: "span-collector",
    events: {
      "$tracing.spans"(ctx: { params: SpanData[] }) {
        spans.push(...ctx.params);
      },
    },
  });
  await collector.start();
  t.after(() => collector.stop());

  // Spans emitted before a node knows the collector's listener would go nowhere: wait until both
  // nodes have counted it in (their registry's info line).
  await Promise.all(
    [gateway, services].map((node) => node.waitForOutput(`Node '${collectorId}' connected.`, { timeoutMs: 15_000 })),
  );

  const account = await register(base);
  const session = await login(base, account.user.username);
  const requestId = `trace-${randomBytes(6).toString("hex")}`;
  await createRoom(base, session.accessToken, requestId);

  // Each node emits its finished spans every 5 s.
  const ofRequest = (): SpanData[] => spans.filter((span) => span.traceID === requestId);
  const nodesOf = (list: SpanData[]): Set<unknown> => new Set(list.map((span) => span.tags.nodeID));
  const fromBoth = (): boolean => {
    const nodes = nodesOf(ofRequest());
    return nodes.has(gateway.env.NODE_ID) && nodes.has(services.env.NODE_ID);
  };
  await eventually(
    `spans with traceID ${requestId} from both nodes`,
    () => {
      assert.ok(
        fromBoth(),
        `got ${spans.length} spans: ` + JSON.stringify(spans.slice(-20).map((s) => [s.name, s.traceID, s.tags.nodeID])),
      );
      return true;
    },
    { timeoutMs: 20_000, intervalMs: 250 },
  );
  const traced = ofRequest();
  t.diagnostic(`spans of ${requestId}: ${traced.map((s) => `${s.name}@${s.tags.nodeID}`).join(", ")}`);

  const rest = traced.find((span) => span.tags.nodeID === gateway.env.NODE_ID && span.name === "POST /api/rooms");
  assert.ok(
    rest,
    `the gateway's REST span, named without a query string: ${JSON.stringify(traced.map((s) => s.name))}`,
  );
  assert.equal(rest.parentID ?? null, null, "the REST span is the trace's root");
  assert.equal(rest.tags.userId, account.user.id, "tagged with the caller");
  const action = traced.find(
    (span) => span.tags.nodeID === services.env.NODE_ID && span.name === "action 'chat.createRoom'",
  );
  assert.ok(action, `chat.createRoom's span on the services node: ${JSON.stringify(traced.map((s) => s.name))}`);
  assert.equal(action.tags.userId, account.user.id);
  assert.equal(action.tags.callerNodeID, gateway.env.NODE_ID, "called from the gateway");
  assert.equal(action.tags.requestID, requestId);
  // Parent links cross the nodes: the action's span hangs under a span of the same trace.
  assert.ok(
    traced.some((span) => span.id === action.parentID),
    "its parent span is in the trace",
  );

  // Spans carry no params, meta or responses: the login's password (and tokens) never leave.
  const all = JSON.stringify(spans);
  assert.equal(all.includes(account.password), false, "no password in any span");
  assert.equal(all.includes(session.accessToken), false, "no access token in any span");
  for (const span of spans) {
    assert.equal(span.tags.params, undefined, `no params in ${span.name}`);
    assert.equal(span.tags.meta, undefined, `no meta in ${span.name}`);
  }
});
