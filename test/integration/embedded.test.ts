/**
 * Embedded mode: one process, no TRANSPORTER, DATABASE_URL or MONGO_URL — SQLite and the file log
 * store in DATA_DIR. Accounts, sessions and the JWT secret survive a restart on the same DATA_DIR.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import type { AuthResult, User } from "../../src/contracts/objects.js";
import type { Health } from "../../src/gateway/health.js";
import { api, type ApiOptions } from "../support/accounts-helpers.js";
import { expectError } from "../support/errors.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { freePort } from "../support/servers.js";

const ALL = ["api", "auth", "chat", "log", "notify", "users"];

/** REST on a node's port, through the shared helper (which also fails on leaked internals). */
const request = <T = unknown>(port: number, method: string, urlPath: string, opts: ApiOptions = {}) =>
  api<T>(`http://127.0.0.1:${port}`, method, urlPath, opts);

test("embedded node: all services in one process, data and tokens survive a restart", async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-embedded-"));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const env = {
    PORT: String(port),
    DATA_DIR: dataDir,
    // Embedded: nothing external. JWT_SECRET unset too, so the node generates and keeps its own.
    TRANSPORTER: undefined,
    DATABASE_URL: undefined,
    MONGO_URL: undefined,
    JWT_SECRET: undefined,
  };
  const start = (): Promise<NodeHandle> => startNode({ t, env, ready: { http: port } });

  // ---- first run -------------------------------------------------------------------------------
  const first = await start();
  assert.match(first.output(), /NoChat node \S+ up: \[api, auth, users, chat, notify, log\] embedded, one process/);
  assert.equal(first.dataDir, dataDir);

  const health = await request<Health>(port, "GET", "/api/health");
  assert.equal(health.status, 200);
  assert.equal(health.body.status, "ok");
  assert.deepEqual(health.body.services, ALL);
  assert.deepEqual(health.body.missing, []);
  // Node ids and per-node services are for admins (HEALTH_DETAILS=admins, the default).
  assert.equal(health.body.nodes, undefined, "no node details for anonymous callers");

  const page = await request(port, "GET", "/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type") ?? "", /text\/html/);
  assert.match(page.text, /<html/i);

  const registered = await request<AuthResult>(port, "POST", "/api/auth/register", {
    body: { username: "Dave", password: "daves password" },
  });
  assert.equal(registered.status, 201, registered.text);
  const { user, accessToken } = registered.body;
  assert.equal(user.username, "dave");
  assert.equal(user.displayName, "Dave", "the display name defaults to the username as typed");

  const me = await request<User>(port, "GET", "/api/users/me", { token: accessToken });
  assert.equal(me.status, 200, me.text);
  assert.deepEqual(me.body, user);

  // Everything is on disk in DATA_DIR: SQLite, the log store and the generated JWT secret.
  const files = readdirSync(dataDir);
  for (const file of ["nochat.sqlite", "jwt-secret", "log"]) assert.ok(files.includes(file), `${file} in ${files}`);
  assert.ok(existsSync(path.join(dataDir, "log", "events.db")));

  const stopped = await first.stop();
  assert.equal(stopped.code, 0, `first run exited with ${JSON.stringify(stopped)}`);
  assert.ok(existsSync(dataDir), "stop() keeps a DATA_DIR it did not create");
  const down = await fetch(`http://127.0.0.1:${port}/api/health`).then(
    () => "answered",
    () => "refused",
  );
  assert.equal(down, "refused", "the first node is gone");

  // ---- second run on the same DATA_DIR ---------------------------------------------------------
  await start();

  const stillMe = await request<User>(port, "GET", "/api/users/me", { token: accessToken });
  assert.equal(stillMe.status, 200, `the access token from before the restart: ${stillMe.text}`);
  assert.deepEqual(stillMe.body, user);

  const login = await request<AuthResult>(port, "POST", "/api/auth/login", {
    body: { username: "DAVE", password: "daves password" },
  });
  assert.equal(login.status, 200, login.text);
  assert.deepEqual(login.body.user, user);

  const wrong = await request(port, "POST", "/api/auth/login", { body: { username: "dave", password: "not it" } });
  assert.equal(wrong.status, 401);

  const again = await request(port, "POST", "/api/auth/register", {
    body: { username: "dave", password: "x".repeat(8) },
  });
  expectError(again, 409, "CONFLICT", "the account is still there after the restart");
});
