/**
 * A real two-node cluster on RabbitMQ, MariaDB and FerretDB: node A runs only the gateway (api),
 * node B every other service. REST calls on A cross the bus to B; when B dies, A's health and
 * REST answers say so (503) once the heartbeat timeout has counted B out.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { MongoClient } from "mongodb";
import type { Health } from "../../src/gateway/health.js";
import type { AuthResult, User } from "../../src/contracts/objects.js";
import { api, type ApiOptions } from "../support/accounts-helpers.js";
import { expectError } from "../support/errors.js";
import { startNode } from "../support/processes.js";
import {
  createTestDatabase,
  freePort,
  mongoUrl,
  rabbitUrl,
  requireServer,
  uniqueNamespace,
} from "../support/servers.js";
import { eventually } from "../support/wait.js";

const BACKEND_SERVICES = ["auth", "users", "chat", "notify", "log"];
const ALL = ["api", ...BACKEND_SERVICES].sort();

/** REST on a node's port, through the shared helper (which also fails on leaked internals). */
const request = <T = unknown>(port: number, method: string, urlPath: string, opts: ApiOptions = {}) =>
  api<T>(`http://127.0.0.1:${port}`, method, urlPath, opts);

test("gateway node + services node over RabbitMQ, MariaDB and FerretDB; the gateway notices the services node die", async (t) => {
  for (const server of ["rabbitmq", "mariadb", "ferretdb"] as const) {
    if (!(await requireServer(server, t))) return;
  }

  const database = await createTestDatabase();
  t.after(() => database.drop());
  const mongoDb = `nochat_test_${randomBytes(6).toString("hex")}`;
  const mongo = new URL(mongoUrl()!);
  mongo.pathname = `/${mongoDb}`;
  t.after(async () => {
    const client = new MongoClient(mongoUrl()!, { serverSelectionTimeoutMS: 5_000 });
    try {
      await client.connect();
      await client.db(mongoDb).dropDatabase();
    } finally {
      await client.close();
    }
  });

  const port = await freePort();
  const env = {
    TRANSPORTER: rabbitUrl(),
    NAMESPACE: uniqueNamespace(),
    DATABASE_URL: database.url,
    MONGO_URL: mongo.toString(),
    // The per-node details of /api/health are for admins unless made public.
    HEALTH_DETAILS: "public",
  };
  const [a, b] = await Promise.all([
    startNode({ t, name: "A(api)", services: ["api"], env: { ...env, PORT: String(port), NODE_ID: "cluster-a" } }),
    startNode({ t, name: "B(services)", services: BACKEND_SERVICES, env: { ...env, NODE_ID: "cluster-b" } }),
  ]);
  assert.match(a.output(), /NoChat node cluster-a up: \[api\] on RabbitMQ/);
  assert.match(b.output(), /NoChat node cluster-b up: \[auth, users, chat, notify, log\] on RabbitMQ/);

  // ---- the cluster forms -----------------------------------------------------------------------
  const healthy = await eventually(
    "GET /api/health on A to report ok with two nodes",
    async () => {
      const res = await request<Health>(port, "GET", "/api/health");
      return res.status === 200 && res.body.status === "ok" && res.body.nodes?.length === 2 && res.body;
    },
    { timeoutMs: 20_000, intervalMs: 250 },
  );
  assert.deepEqual(healthy.services, ALL);
  assert.deepEqual(healthy.missing, []);
  const nodes = Object.fromEntries(healthy.nodes!.map((n) => [n.id, n]));
  assert.deepEqual(nodes["cluster-a"], { id: "cluster-a", local: true, services: ["api"] });
  assert.deepEqual(nodes["cluster-b"], { id: "cluster-b", local: false, services: [...BACKEND_SERVICES].sort() });

  // ---- REST on A, served by B ------------------------------------------------------------------
  const registered = await request<AuthResult>(port, "POST", "/api/auth/register", {
    body: { username: "Carol", password: "carols password", displayName: "Carol C." },
  });
  assert.equal(registered.status, 201, JSON.stringify(registered.body));
  assert.equal(registered.body.user.username, "carol");
  assert.equal(registered.body.user.displayName, "Carol C.");
  assert.equal(registered.headers.get("location"), `/api/users/${registered.body.user.id}`);
  assert.equal(typeof registered.body.accessToken, "string");

  const me = await request<User>(port, "GET", "/api/users/me", { token: registered.body.accessToken });
  assert.equal(me.status, 200, JSON.stringify(me.body));
  assert.deepEqual(me.body, registered.body.user);

  const anonymous = await request(port, "GET", "/api/users/me");
  assert.equal(anonymous.status, 401);
  assert.deepEqual(anonymous.body, { error: { code: "UNAUTHORIZED", message: "Authentication required" } });

  // ---- B dies ----------------------------------------------------------------------------------
  assert.ok(b.kill("SIGKILL"), "B was running");
  const exit = await b.exited;
  assert.equal(exit.signal, "SIGKILL");

  const killedAt = Date.now();
  const degraded = await eventually(
    "GET /api/health on A to answer 503 without B's services",
    async () => {
      const res = await request<Health>(port, "GET", "/api/health");
      return res.status === 503 && res.body;
    },
    { timeoutMs: 20_000, intervalMs: 250 },
  );
  t.diagnostic(`A counted B out ${Date.now() - killedAt} ms after SIGKILL`);
  assert.equal(degraded.status, "degraded");
  assert.deepEqual(degraded.missing, BACKEND_SERVICES);
  assert.deepEqual(degraded.services, ["api"]);
  assert.deepEqual(degraded.nodes, [{ id: "cluster-a", local: true, services: ["api"] }]);

  // A REST call that needs B: the contract's error shape, no internals.
  const login = await request(port, "POST", "/api/auth/login", {
    body: { username: "carol", password: "carols password" },
  });
  assert.equal(login.status, 503, JSON.stringify(login.body));
  assert.deepEqual(login.body, { error: { code: "UNAVAILABLE", message: "A service is unavailable, try again" } });

  const meAgain = await request(port, "GET", "/api/users/me", { token: registered.body.accessToken });
  expectError(meAgain, 503, "UNAVAILABLE", "GET /api/users/me without B");

  // A itself is unharmed.
  assert.equal(a.exitStatus(), undefined, "A is still running");
});
