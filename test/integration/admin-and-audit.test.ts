/**
 * Admin as an operator's act, and what unauthenticated callers can learn or leave behind (issue 10,
 * items 5 and 6), on one node with all services on RabbitMQ (SQLite and the embedded log store in
 * its DATA_DIR) and an operator's broker on the bus (what the REPL is):
 * - NOCHAT_ADMINS grants nothing at registration; at start it promotes listed accounts that exist,
 *   demotes admins it promoted once they are off the list, and warns about names without accounts;
 *   `users.setAdmin` grants and revokes on the bus only, and the list never demotes those grants;
 * - `/api/health` shows node ids to admins only;
 * - a failed login for an unknown name keeps only a keyed hash of what was typed;
 * - a flood of bad tokens leaves a bounded number of audit records plus a count.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { ServiceBroker } from "moleculer";
import type { AppEvent } from "../../src/contracts/objects.js";
import { api, PASSWORD, register, uniqueName, type Account } from "../support/accounts-helpers.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { freePort, rabbitUrl, uniqueNamespace } from "../support/servers.js";
import { OPERATOR } from "../../src/infra/permissions.js";
import { rejectsWith } from "../support/errors.js";
import { eventually } from "../support/wait.js";

test("admins come from the operator, health details and refusal audit are bounded", async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-admins-"));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const namespace = uniqueNamespace("admins");
  const root = uniqueName("root");
  const early = uniqueName("early");
  const ghost = uniqueName("ghost");
  let node: NodeHandle | undefined;
  const start = async (admins: string[]): Promise<NodeHandle> => {
    await node?.stop();
    node = await startNode({
      t,
      env: {
        PORT: String(port),
        DATA_DIR: dataDir,
        TRANSPORTER: rabbitUrl(),
        NAMESPACE: namespace,
        DATABASE_URL: undefined,
        MONGO_URL: undefined,
        NOCHAT_ADMINS: admins.join(","),
        AUDIT_REFUSALS_PER_MINUTE: "5",
      },
      ready: { http: port },
    });
    return node;
  };
  const me = async (who: Account) => (await api(base, "GET", "/api/users/me", { token: who.accessToken })).body;
  const relogin = async (who: Account): Promise<Account> => {
    const res = await api(base, "POST", "/api/auth/login", {
      body: { username: who.user.username, password: PASSWORD },
    });
    assert.equal(res.status, 200, res.text);
    return { ...res.body, password: PASSWORD };
  };

  // ---- registering a listed name grants nothing --------------------------------------------------
  await start([root, early, ghost]);
  let rootAcc = await register(base, root);
  let earlyAcc = await register(base, early);
  assert.equal((await me(rootAcc)).roles, undefined, "a listed name registered after start is not an admin");

  // ---- at start: listed accounts that exist become admins; missing names are reported -----------
  await start([root, early, ghost]);
  assert.match(node!.output(), new RegExp(`NOCHAT_ADMINS: no account named ${ghost}`));
  rootAcc = await relogin(rootAcc);
  earlyAcc = await relogin(earlyAcc);
  assert.deepEqual((await me(rootAcc)).roles, ["admin"]);
  assert.deepEqual((await me(earlyAcc)).roles, ["admin"]);
  // Someone registering the missing name now gets nothing.
  const ghostAcc = await register(base, ghost);
  assert.equal((await me(ghostAcc)).roles, undefined);

  // ---- health: node ids for admins only ------------------------------------------------------------
  const anonymous = await api(base, "GET", "/api/health");
  assert.equal(anonymous.status, 200);
  assert.equal(anonymous.body.status, "ok");
  assert.ok(Array.isArray(anonymous.body.services) && anonymous.body.services.includes("chat"));
  assert.equal(anonymous.body.nodes, undefined, `no node details for anonymous callers: ${anonymous.text}`);
  assert.ok(!anonymous.text.includes(node!.env.NODE_ID), "no node id");
  const plain = await api(base, "GET", "/api/health", { token: ghostAcc.accessToken });
  assert.equal(plain.body.nodes, undefined, "nor for a user who is not an admin");
  const admin = await api(base, "GET", "/api/health", { token: rootAcc.accessToken });
  assert.equal(admin.body.nodes?.[0]?.id, node!.env.NODE_ID, `node details for an admin: ${admin.text}`);

  // ---- the operator grants and revokes on the bus; REST has no such route -------------------------
  const operator = new ServiceBroker({
    namespace,
    nodeID: `operator-${namespace}`,
    transporter: { type: "AMQP", options: { url: rabbitUrl() } },
    logger: false,
  });
  await operator.start();
  t.after(() => operator.stop());
  await operator.waitForServices(["users"], 15_000);
  const ann = await register(base);
  const asOperator = { meta: { user: OPERATOR } };
  const granted = await operator.call<{ admin: boolean; changed: boolean }, object>(
    "users.setAdmin",
    { username: ann.user.username, admin: true },
    asOperator,
  );
  assert.deepEqual([granted.admin, granted.changed], [true, true]);
  await rejectsWith(
    operator.call("users.setAdmin", { username: uniqueName("nobody"), admin: true }, asOperator),
    "NOT_FOUND",
    "an unknown user",
  );
  await rejectsWith(
    operator.call("users.setAdmin", { username: ann.user.username, admin: false }),
    "UNAUTHORIZED",
    "a call without a principal is refused",
  );
  await rejectsWith(
    operator.call(
      "users.setAdmin",
      { username: early, admin: false },
      { meta: { user: { ...ghostAcc.user, roles: [], sessionId: "x" } } },
    ),
    "FORBIDDEN",
    "a user who is not an admin cannot call it on the bus",
  );
  const viaRest = await api(base, "POST", "/api/users/setAdmin", {
    token: rootAcc.accessToken,
    body: { username: ghost, admin: true },
  });
  assert.equal(viaRest.status, 404, "not published on REST");

  // ---- removing a name demotes at the next start; explicit grants stay -----------------------------
  await start([root]);
  assert.match(node!.output(), new RegExp(`NOCHAT_ADMINS: ${early} is no longer listed`));
  assert.equal((await me(await relogin(earlyAcc))).roles, undefined, "removed from the list: demoted");
  assert.deepEqual((await me(await relogin(ann))).roles, ["admin"], "granted by the operator: kept");
  rootAcc = await relogin(rootAcc);
  assert.deepEqual((await me(rootAcc)).roles, ["admin"]);

  // ---- failed logins for unknown names keep no typed text ---------------------------------------
  const typed = `Secret-Passw0rd-${uniqueName("x")}`;
  const failed = await api(base, "POST", "/api/auth/login", { body: { username: typed, password: "whatever-pw" } });
  assert.equal(failed.status, 401);
  const events = async (type: string): Promise<AppEvent[]> =>
    (await api(base, "GET", `/api/admin/events?type=${type}&limit=500`, { token: rootAcc.accessToken })).body.events;
  let unknown: AppEvent[] = [];
  await eventually(
    "the unknown-user login failure is recorded",
    async () =>
      (unknown = (await events("auth.login_failed")).filter((e) => e.data.reason === "unknown_user")).length > 0,
    { timeoutMs: 15_000 },
  );
  assert.ok(!JSON.stringify(unknown).includes(typed.toLowerCase()) && !JSON.stringify(unknown).includes(typed));
  assert.match(String(unknown[0].data.usernameTag), /^[0-9a-f]{16}$/);

  // ---- a flood of bad tokens: a few records and one count, not one document each -------------------
  const before = (await events("auth.token_refused")).length;
  const flood = 60;
  for (let i = 0; i < flood; i++) {
    const res = await api(base, "GET", "/api/users/me", { token: `bad-token-${i}` });
    assert.equal(res.status, 401);
  }
  // The sampler closes its minute, then its summary goes the durable way.
  let suppressed: AppEvent[] = [];
  await eventually(
    "the suppressed refusals are counted",
    async () => (suppressed = await events("audit.suppressed")).length >= 2,
    { timeoutMs: 90_000, intervalMs: 1_000 },
  );
  const refused = (await events("auth.token_refused")).length - before;
  assert.ok(refused <= 5, `${refused} auth.token_refused records for ${flood} bad tokens`);
  const access = (await events("http.access")).filter((e) => e.data.status === 401 && e.data.userId === null);
  assert.ok(access.length <= 5 + 5, `${access.length} anonymous 401 access records`);
  const counted = suppressed.find((e) => e.data.type === "auth.token_refused");
  assert.ok(counted && Number(counted.data.suppressed) >= flood - 5, JSON.stringify(suppressed));
});
