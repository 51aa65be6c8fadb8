/**
 * The load balancers' probes (issue 12, item 3), on a cluster over RabbitMQ whose SQL database is a
 * MariaDB of this test's own (test/support/mariadb.ts), stopped and started again:
 *   gateway   SERVICES=api
 *   backend   SERVICES=auth,users,notify,log
 *   chat      SERVICES=chat                       (stopped and started again)
 *
 * - `GET /api/health/live` answers 200 `{ status: "ok" }` throughout;
 * - `GET /api/health/ready` answers 200 while every service is there and its database answers;
 *   503 UNAVAILABLE (the contract's error shape, `Retry-After`, `retryAfter`) naming the services
 *   whose database does not answer within a few seconds of MariaDB stopping, each answer within
 *   ~2 s; 200 again soon after it is back; the same while MariaDB hangs (SIGSTOP), through the
 *   probes' own timeout;
 * - with the chat node stopped it answers 503 naming `chat`, and 200 once chat is back;
 * - `GET /api/health` keeps its shape and stays 200 while only MariaDB is down.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ErrorEnvelope } from "../../src/contracts/errors.js";
import type { Health, Liveness, Readiness } from "../../src/gateway/health.js";
import { api, type ApiResponse } from "../support/accounts-helpers.js";
import { expectError } from "../support/errors.js";
import { PrivateMariaDB, privateMariaDBUnavailable } from "../support/mariadb.js";
import { startNode } from "../support/processes.js";
import { freePort, rabbitUrl, requireServer, uniqueNamespace } from "../support/servers.js";
import { eventually, GiveUp } from "../support/wait.js";

/** The services whose database readiness asks (src/gateway/health.ts READY_PROBED). */
const PROBED = ["api", "auth", "users", "chat", "notify"];
/** How long MariaDB may be down before readiness says so, and a readiness answer may take. */
const NOTICE_MS = 5_000;
const ANSWER_MS = 2_500;

type ReadyBody = Readiness & ErrorEnvelope;

test("readiness follows MariaDB and the chat service; liveness stays 200", async (t) => {
  if (!(await requireServer("rabbitmq", t))) return;
  const missing = privateMariaDBUnavailable(); // throws under CI=true
  if (missing) {
    t.skip(`no private MariaDB: ${missing}`);
    return;
  }
  const mariadb = await PrivateMariaDB.start();
  t.after(async () => {
    if ((t as { passed?: boolean }).passed === false)
      process.stderr.write(`----- private MariaDB log -----\n${mariadb.log().slice(-8000)}\n`);
    await mariadb.destroy();
  });
  const databaseUrl = await mariadb.createDatabase("nochat_probes");

  const common = { TRANSPORTER: rabbitUrl(), NAMESPACE: uniqueNamespace("nochat-probes"), DATABASE_URL: databaseUrl };
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const startChat = () => startNode({ t, name: "chat", services: ["chat"], env: common });
  const [, , firstChat] = await Promise.all([
    startNode({ t, name: "gateway", services: ["api"], env: { ...common, PORT: String(port) } }),
    startNode({ t, name: "backend", services: ["auth", "users", "notify", "log"], env: common }),
    startChat(),
  ]);

  const live = () => api<Liveness>(base, "GET", "/api/health/live");
  const ready = async (): Promise<ApiResponse<ReadyBody> & { ms: number }> => {
    const started = Date.now();
    const res = await api<ReadyBody>(base, "GET", "/api/health/ready");
    return { ...res, ms: Date.now() - started };
  };
  /** ready() inside an eventually() check: an answer slower than ANSWER_MS fails the test at once. */
  const readyInTime = async (when: string): Promise<ApiResponse<ReadyBody> & { ms: number }> => {
    const res = await ready();
    if (res.ms >= ANSWER_MS) throw new GiveUp(`a readiness answer took ${res.ms} ms ${when}`);
    return res;
  };
  const assertLive = async (when: string) => {
    const res = await live();
    assert.equal(res.status, 200, `live ${when}: ${res.text}`);
    assert.deepEqual(res.body, { status: "ok" }, `live ${when}`);
  };
  /** Asserts a 503 in the contract's shape; returns its message. */
  const assertNotReady = (res: ApiResponse<ReadyBody>, when: string): string => {
    const error = expectError(res, 503, "UNAVAILABLE", `ready ${when}`);
    assert.deepEqual(Object.keys(res.body).sort(), ["error"], `ready ${when}: only the error envelope`);
    assert.equal(error.retryAfter, 2);
    assert.equal(res.headers.get("retry-after"), "2");
    assert.match(error.message, /^Not ready: /);
    return error.message;
  };

  // ---- the cluster is up: ready ---------------------------------------------------------------------
  await eventually("ready answers 200 once the cluster is up", async () => (await ready()).status === 200, {
    timeoutMs: 30_000,
  });
  const up = await ready();
  assert.equal(up.status, 200, up.text);
  assert.deepEqual(up.body, { status: "ok", checked: PROBED });
  await assertLive("with everything up");
  const health = await api<Health>(base, "GET", "/api/health");
  assert.equal(health.status, 200);
  assert.deepEqual(Object.keys(health.body).sort(), ["missing", "services", "status"], "/api/health keeps its shape");

  // ---- MariaDB stops: 503 within a few seconds, naming every probed service ------------------------
  await mariadb.stop();
  const stoppedAt = Date.now();
  let down: ApiResponse<ReadyBody> & { ms: number };
  await eventually(
    "ready answers 503 after MariaDB stopped",
    async () => {
      down = await readyInTime("with MariaDB down");
      return down.status === 503;
    },
    { timeoutMs: NOTICE_MS, intervalMs: 200 },
  );
  const noticed = Date.now() - stoppedAt;
  t.diagnostic(`ready answered 503 ${noticed} ms after MariaDB stopped`);
  // Each probed service says its database is unavailable (a dead pooled connection may take one more call).
  await eventually(
    "every probed service reports its database unavailable",
    async () => {
      down = await ready();
      let message: string;
      try {
        message = assertNotReady(down, "with MariaDB down");
      } catch (err) {
        throw new GiveUp((err as Error).message); // every answer meanwhile is a 503 in the contract's shape
      }
      return PROBED.every((name) => message.includes(`${name}: The database is unavailable`));
    },
    { timeoutMs: NOTICE_MS, intervalMs: 200 },
  );
  t.diagnostic(
    `all five named ${Date.now() - stoppedAt} ms after the stop (${Date.now() - stoppedAt - noticed} ms more): ${down!.body.error.message}`,
  );
  assert.doesNotMatch(down!.body.error.message, /service \w+ is not available/, "the services themselves are there");
  await assertLive("with MariaDB down");
  const healthDown = await api<Health>(base, "GET", "/api/health");
  assert.equal(healthDown.status, 200, "/api/health looks at the registry only");

  // ---- MariaDB is back: 200 again ----------------------------------------------------------------------
  await mariadb.restart();
  const restartedAt = Date.now();
  await eventually("ready answers 200 again", async () => (await ready()).status === 200, {
    timeoutMs: 15_000,
    intervalMs: 200,
  });
  t.diagnostic(`ready answered 200 ${Date.now() - restartedAt} ms after MariaDB answered again`);
  await assertLive("after MariaDB came back");

  // ---- MariaDB hangs (SIGSTOP: connections accepted, nothing answered): the probes' own timeout -----
  const pid = mariadb.pid!;
  process.kill(pid, "SIGSTOP");
  const hungAt = Date.now();
  t.after(() => void (mariadb.running && process.kill(pid, "SIGCONT")));
  try {
    await eventually(
      "ready answers 503 while MariaDB hangs",
      async () => {
        down = await readyInTime("with MariaDB hung");
        return down.status === 503;
      },
      { timeoutMs: NOTICE_MS, intervalMs: 500 },
    );
    const message = assertNotReady(down!, "with MariaDB hung");
    assert.match(message, /chat: The database did not answer within 1000 ms/);
    t.diagnostic(`ready answered 503 ${Date.now() - hungAt} ms after MariaDB hung: ${message}`);
    await assertLive("with MariaDB hung");
  } finally {
    process.kill(pid, "SIGCONT");
  }
  await eventually("ready answers 200 after MariaDB resumed", async () => (await ready()).status === 200, {
    timeoutMs: 15_000,
    intervalMs: 200,
  });

  // ---- the chat service stops: 503 naming it; back: 200 ----------------------------------------------
  await firstChat.stop();
  await eventually("ready answers 503 without chat", async () => (await ready()).status === 503, {
    timeoutMs: NOTICE_MS,
    intervalMs: 200,
  });
  const noChat = await ready();
  const message = assertNotReady(noChat, "without chat");
  assert.match(message, /service chat is not available/);
  assert.doesNotMatch(message, /database/, `only chat is missing: ${message}`);
  await assertLive("without chat");

  await startChat();
  await eventually("ready answers 200 once chat is back", async () => (await ready()).status === 200, {
    timeoutMs: 20_000,
    intervalMs: 200,
  });
  await assertLive("at the end");
});
