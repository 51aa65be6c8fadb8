/**
 * Accounts over the public API (docs/API.md): registration, login, refresh rotation, logout,
 * validation, error shape, login throttling, token checks at REST and at the socket handshake,
 * admins, user search — the same suite against a real node on each SQL engine:
 *   (a) embedded: no TRANSPORTER, no DATABASE_URL → SQLite under DATA_DIR;
 *   (b) MariaDB: DATABASE_URL = a fresh test database.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies of a black-box HTTP API */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeJwt, SignJWT } from "jose";
import { api, login, PASSWORD, register, uniqueName, type Account } from "../support/accounts-helpers.js";
import { expectError, expectValidation } from "../support/errors.js";
import { startNode, TEST_JWT_SECRET, type NodeHandle } from "../support/processes.js";
import { createTestDatabase, freePort, serverSkip, type ServerName, type TestDatabase } from "../support/servers.js";
import { connectChat, expectSocketRefused, Inbox } from "../support/sockets.js";
import { eventually, GiveUp, withTimeout } from "../support/wait.js";

interface Engine {
  name: string;
  server?: ServerName;
  /** Extra node env; may create resources, released by the returned cleanup. */
  prepare(): Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>;
}

const ENGINES: Engine[] = [
  {
    name: "embedded SQLite",
    async prepare() {
      return { env: {}, cleanup: async () => undefined };
    },
  },
  {
    name: "MariaDB",
    server: "mariadb",
    async prepare() {
      const db: TestDatabase = await createTestDatabase();
      return { env: { DATABASE_URL: db.url }, cleanup: () => db.drop() };
    },
  },
];

const USER_KEYS = ["createdAt", "displayName", "id", "lastSeenAt", "status", "username"];
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** The contract's User object, with no credentials or roles (unless `roles` is expected). */
function assertPublicUser(user: any, expected: { username?: string; roles?: string[] } = {}): void {
  assert.ok(user && typeof user === "object", `not a user: ${JSON.stringify(user)}`);
  const keys = Object.keys(user).sort();
  const wanted = expected.roles ? [...USER_KEYS, "roles"].sort() : USER_KEYS;
  assert.deepEqual(keys, wanted, `user keys: ${JSON.stringify(user)}`);
  for (const key of keys) assert.doesNotMatch(key, /pass|hash|token|secret/i, `user has ${key}`);
  assert.ok(Number.isInteger(user.id) && user.id > 0, `id ${user.id}`);
  assert.equal(typeof user.username, "string");
  assert.equal(user.username, user.username.toLowerCase(), "username is lower-cased");
  if (expected.username !== undefined) assert.equal(user.username, expected.username.toLowerCase());
  assert.equal(typeof user.displayName, "string");
  assert.ok(["online", "away", "offline"].includes(user.status), `status ${user.status}`);
  assert.ok(user.lastSeenAt === null || ISO.test(user.lastSeenAt), `lastSeenAt ${user.lastSeenAt}`);
  assert.match(user.createdAt, ISO);
  if (expected.roles) assert.deepEqual(user.roles, expected.roles);
}

function assertTokenPair(body: any, what: string): void {
  assert.equal(typeof body.accessToken, "string", `${what}: accessToken`);
  assert.equal(body.accessToken.split(".").length, 3, `${what}: accessToken is a JWT`);
  assert.equal(typeof body.refreshToken, "string", `${what}: refreshToken`);
  assert.ok(body.refreshToken.length >= 16, `${what}: refreshToken too short`);
  assert.ok(Number.isInteger(body.expiresIn) && body.expiresIn > 0, `${what}: expiresIn ${body.expiresIn}`);
}

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A token signed with `secret`, otherwise built from the claims of a real token (`like`). */
async function forge(
  like: string,
  opts: { secret?: string; iss?: string; aud?: string; exp?: number; iat?: number } = {},
): Promise<string> {
  const claims = decodeJwt(like);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sid: claims.sid, name: claims.name, roles: claims.roles })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(String(claims.sub))
    .setIssuer(opts.iss ?? "nochat")
    .setAudience(opts.aud ?? "nochat")
    .setIssuedAt(opts.iat ?? now)
    .setExpirationTime(opts.exp ?? now + 600)
    .sign(new TextEncoder().encode(opts.secret ?? TEST_JWT_SECRET));
}

/** `alg: none`: the real token's claims, unsigned. */
function unsigned(like: string): string {
  const claims = decodeJwt(like);
  return `${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims)}.`;
}

for (const engine of ENGINES) {
  describe(`accounts on ${engine.name}`, async () => {
    const skip = engine.server ? await serverSkip(engine.server) : false;
    let node: NodeHandle | undefined;
    let cleanup: (() => Promise<void>) | undefined;
    let base = "";
    let dataDir = "";

    before(async () => {
      if (skip) return;
      const prepared = await engine.prepare();
      cleanup = prepared.cleanup;
      const port = await freePort();
      // Its own DATA_DIR, kept over the restart in the admins test (NOCHAT_ADMINS applies at start).
      dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-accounts-"));
      node = await startNode({
        name: `accounts-${engine.server ?? "sqlite"}`,
        env: { ...prepared.env, DATA_DIR: dataDir, PORT: String(port), NOCHAT_ADMINS: "boss" },
        ready: { http: port },
        timeoutMs: 60_000,
      });
      base = `http://127.0.0.1:${port}`;
    });

    after(async () => {
      await node?.stop();
      await cleanup?.();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    const me = (token: string) => api(base, "GET", "/api/users/me", { token });
    const refresh = (refreshToken: string) => api(base, "POST", "/api/auth/refresh", { body: { refreshToken } });

    it("register → login → me → refresh (rotation) → logout → tokens refused", { skip }, async (t) => {
      const typed = uniqueName("Flow");
      const reg = await api(base, "POST", "/api/auth/register", {
        body: { username: typed, password: PASSWORD, displayName: "Flow Tester" },
      });
      assert.equal(reg.status, 201, reg.text);
      assert.deepEqual(Object.keys(reg.body).sort(), ["accessToken", "expiresIn", "refreshToken", "user"]);
      assertPublicUser(reg.body.user, { username: typed });
      assert.equal(reg.body.user.displayName, "Flow Tester");
      assertTokenPair(reg.body, "register");
      assert.doesNotMatch(reg.text, /argon|\$2[aby]\$|password/i, "no hash or password in the answer");
      const userId = reg.body.user.id;

      const claims = decodeJwt(reg.body.accessToken);
      assert.equal(claims.iss, "nochat");
      assert.equal(claims.aud, "nochat");
      assert.equal(claims.sub, String(userId));
      assert.equal(typeof claims.sid, "string");

      // Login is case-insensitive on the username.
      const lin = await api(base, "POST", "/api/auth/login", {
        body: { username: typed.toUpperCase(), password: PASSWORD },
      });
      assert.equal(lin.status, 200, lin.text);
      assertPublicUser(lin.body.user, { username: typed });
      assert.equal(lin.body.user.id, userId);
      assertTokenPair(lin.body, "login");
      assert.notEqual(decodeJwt(lin.body.accessToken).sid, claims.sid, "a login is a new session");

      const meRes = await me(lin.body.accessToken);
      assert.equal(meRes.status, 200, meRes.text);
      assertPublicUser(meRes.body, { username: typed });
      assert.equal(meRes.body.id, userId);

      // Refresh: a new pair; the spent refresh token is refused afterwards.
      const r1 = await refresh(lin.body.refreshToken);
      assert.equal(r1.status, 200, r1.text);
      assert.deepEqual(Object.keys(r1.body).sort(), ["accessToken", "expiresIn", "refreshToken"]);
      assertTokenPair(r1.body, "refresh");
      assert.notEqual(r1.body.refreshToken, lin.body.refreshToken);
      assert.equal(decodeJwt(r1.body.accessToken).sid, decodeJwt(lin.body.accessToken).sid, "same session");
      assert.equal((await me(r1.body.accessToken)).status, 200);
      expectError(await refresh(lin.body.refreshToken), 401, "UNAUTHORIZED", "spent refresh token");

      // That reuse revoked the login session; start another one to test logout on its own.
      const session = await login(base, typed);
      const meOk = await me(session.accessToken);
      assert.equal(meOk.status, 200, meOk.text);
      const socket = await connectChat(base, session.accessToken, { t });
      const watch = new Inbox(socket);

      const out = await api(base, "POST", "/api/auth/logout", { token: session.accessToken, body: {} });
      assert.equal(out.status, 204, out.text);
      assert.equal(out.text, "");

      const loggedOutAt = Date.now();
      await eventually(
        "the access token to be refused after logout",
        async () => (await me(session.accessToken)).status === 401,
        { timeoutMs: 3_000 },
      );
      t.diagnostic(`access token refused ${Date.now() - loggedOutAt} ms after logout`);
      expectError(await me(session.accessToken), 401, "UNAUTHORIZED", "access token after logout");
      expectError(await refresh(session.refreshToken), 401, "UNAUTHORIZED", "refresh token after logout");
      await expectSocketRefused(base, session.accessToken, "access token after logout");

      const gone = await withTimeout(watch.disconnected, 3_000, "the session's socket was not disconnected");
      assert.equal(gone.reason, "io server disconnect");
      assert.deepEqual(
        watch.names(["session:revoked", "disconnect"]),
        ["session:revoked", "disconnect"],
        "session:revoked comes right before the disconnect",
      );

      // The registration's own session is untouched by the other sessions' ends.
      assert.equal((await me(reg.body.accessToken)).status, 200);
    });

    it("register without displayName uses the username; the user is public", { skip }, async () => {
      const name = uniqueName("Plain");
      const acc = await register(base, name);
      assertPublicUser(acc.user, { username: name });
      assert.equal(typeof acc.user.displayName, "string");
      assert.ok((acc.user.displayName as string).toLowerCase() === name.toLowerCase());
      const got = await api(base, "GET", `/api/users/${acc.user.id}`, { token: acc.accessToken });
      assert.equal(got.status, 200, got.text);
      assertPublicUser(got.body, { username: name });
    });

    it("invalid inputs → 422 VALIDATION_ERROR naming the field", { skip }, async (t) => {
      const ok = uniqueName("valid");
      const cases: [string, unknown, string][] = [
        ["username too short", { username: "ab", password: PASSWORD }, "username"],
        ["username too long", { username: "a".repeat(33), password: PASSWORD }, "username"],
        ["username with a space", { username: "bad name", password: PASSWORD }, "username"],
        ["username with bad characters", { username: "bad!name", password: PASSWORD }, "username"],
        ["username non-ASCII", { username: "jösé_x", password: PASSWORD }, "username"],
        ["username missing", { password: PASSWORD }, "username"],
        ["username not a string", { username: 12345, password: PASSWORD }, "username"],
        ["password too short", { username: ok, password: "1234567" }, "password"],
        ["password too long", { username: ok, password: "p".repeat(257) }, "password"],
        ["password missing", { username: ok }, "password"],
        ["displayName empty", { username: ok, password: PASSWORD, displayName: "" }, "displayName"],
        ["displayName blank", { username: ok, password: PASSWORD, displayName: "   " }, "displayName"],
        ["displayName too long", { username: ok, password: PASSWORD, displayName: "d".repeat(65) }, "displayName"],
      ];
      for (const [what, body, field] of cases) {
        expectValidation(await api(base, "POST", "/api/auth/register", { body }), field, `register: ${what}`);
      }
      // None of those created the account.
      const acc = await register(base, ok);

      // Boundaries that are valid.
      const edge = await api(base, "POST", "/api/auth/register", {
        body: { username: "a.b", password: "p".repeat(8), displayName: "d".repeat(64) },
      });
      assert.equal(edge.status, 201, edge.text);
      const longest = await api(base, "POST", "/api/auth/register", {
        body: { username: `z${uniqueName("max")}`.padEnd(32, "9"), password: "p".repeat(256) },
      });
      assert.equal(longest.status, 201, longest.text);

      const patchCases: [string, unknown, string][] = [
        ["status offline (not settable)", { status: "offline" }, "status"],
        ["status unknown", { status: "busy" }, "status"],
        ["status not a string", { status: 1 }, "status"],
        ["displayName empty", { displayName: "" }, "displayName"],
        ["displayName too long", { displayName: "x".repeat(65) }, "displayName"],
      ];
      for (const [what, body, field] of patchCases) {
        const res = await api(base, "PATCH", "/api/users/me", { token: acc.accessToken, body });
        expectValidation(res, field, `PATCH /users/me: ${what}`);
      }
      // Everyone, the caller too, sees presence: offline until a socket connects — right after
      // registering as well — then the status the user chose.
      assert.equal(acc.user.status, "offline", "right after registering");
      const chosen = await api(base, "PATCH", "/api/users/me", { token: acc.accessToken, body: { status: "away" } });
      assert.equal(chosen.status, 200, chosen.text);
      assert.equal(chosen.body.status, "offline", "chosen, but no socket yet");
      const seenByOthers = () => api(base, "GET", `/api/users/${acc.user.id}`, { token: acc.accessToken });
      assert.equal((await seenByOthers()).body.status, "offline");
      await connectChat(base, acc.accessToken, { t });
      await eventually(
        "the chosen status once a socket is connected",
        async () => (await seenByOthers()).body.status === "away",
        { timeoutMs: 5_000 },
      );
      const patched = await api(base, "PATCH", "/api/users/me", {
        token: acc.accessToken,
        body: { status: "away", displayName: "Away Person" },
      });
      assert.equal(patched.status, 200, patched.text);
      assertPublicUser(patched.body, { username: ok });
      assert.equal(patched.body.status, "away");
      assert.equal(patched.body.displayName, "Away Person");

      for (const query of ["limit=0", "limit=-1", "limit=51", "limit=abc", "limit=1.5"]) {
        const res = await api(base, "GET", `/api/users?${query}`, { token: acc.accessToken });
        expectValidation(res, "limit", `GET /users?${query}`);
      }
      expectValidation(
        await api(base, "GET", `/api/users?q=${"q".repeat(33)}`, { token: acc.accessToken }),
        "q",
        "GET /users with a 33-character q",
      );

      for (const [what, body, field] of [
        ["login without username", { password: PASSWORD }, "username"],
        ["login without password", { username: ok }, "password"],
        ["refresh without token", {}, "refreshToken"],
      ] as [string, unknown, string][]) {
        const path = what.startsWith("refresh") ? "/api/auth/refresh" : "/api/auth/login";
        expectValidation(await api(base, "POST", path, { body }), field, what);
      }
    });

    it("a taken username, in any case → 409 CONFLICT", { skip }, async () => {
      const name = uniqueName("dup");
      await register(base, name);
      for (const variant of [name, name.toUpperCase(), name[0].toUpperCase() + name.slice(1)]) {
        const res = await api(base, "POST", "/api/auth/register", { body: { username: variant, password: PASSWORD } });
        expectError(res, 409, "CONFLICT", `register ${variant}`);
      }
      // The original password still works: the conflict did not overwrite anything.
      await login(base, name);
    });

    it("malformed, non-JSON, oversized bodies and unknown routes", { skip }, async () => {
      const acc = await register(base);
      expectError(
        await api(base, "POST", "/api/auth/login", { raw: '{"username": "x", "password": ' }),
        400,
        "BAD_REQUEST",
        "truncated JSON",
      );
      expectError(
        await api(base, "POST", "/api/auth/login", { raw: "{'username': 'x'}" }),
        400,
        "BAD_REQUEST",
        "single-quoted JSON",
      );
      expectError(
        await api(base, "POST", "/api/auth/register", { raw: '"just a string"' }),
        400,
        "BAD_REQUEST",
        "a JSON string, not an object (strict)",
      );
      expectError(
        await api(base, "POST", "/api/auth/login", {
          raw: JSON.stringify({ username: acc.user.username, password: PASSWORD }),
          contentType: "text/plain",
        }),
        400,
        "BAD_REQUEST",
        "text/plain body",
      );
      expectError(
        await api(base, "POST", "/api/auth/login", {
          raw: `username=${acc.user.username}&password=x`,
          contentType: "application/x-www-form-urlencoded",
        }),
        400,
        "BAD_REQUEST",
        "form body",
      );
      expectError(
        await api(base, "PATCH", "/api/users/me", {
          token: acc.accessToken,
          raw: "status=away",
          contentType: "text/plain",
        }),
        400,
        "BAD_REQUEST",
        "text/plain PATCH",
      );
      const big = JSON.stringify({ username: acc.user.username, password: PASSWORD, pad: "x".repeat(70 * 1024) });
      expectError(await api(base, "POST", "/api/auth/login", { raw: big }), 413, "PAYLOAD_TOO_LARGE", "70 KiB body");
      expectError(
        await api(base, "PATCH", "/api/users/me", {
          token: acc.accessToken,
          body: { displayName: "y".repeat(65 * 1024) },
        }),
        413,
        "PAYLOAD_TOO_LARGE",
        "65 KiB PATCH",
      );
      // Just under the limit is parsed (and then validated).
      const under = await api(base, "POST", "/api/auth/login", {
        raw: JSON.stringify({ username: acc.user.username, password: "p".repeat(60 * 1024) }),
      });
      assert.notEqual(under.status, 413, under.text);
      assert.notEqual(under.status, 400, under.text);

      for (const [method, path] of [
        ["GET", "/api/nope"],
        ["GET", "/api/users/me/extra"],
        ["DELETE", "/api/users/me"],
        ["POST", "/api/auth/nothing"],
        ["GET", "/api/auth/login"],
      ]) {
        const res = await api(base, method, path, { token: acc.accessToken });
        const error = expectError(res, 404, "NOT_FOUND", `${method} ${path}`);
        assert.equal(error.fields, undefined);
      }
    });

    it("login: same 401 for unknown user and wrong password; throttled after 5 failures", { skip }, async () => {
      const victim = await register(base, uniqueName("Victim"));
      const bystander = await register(base, uniqueName("bystander"));
      const attempt = (username: string, password: string) =>
        api(base, "POST", "/api/auth/login", { body: { username, password } });

      const wrong = expectError(await attempt(bystander.user.username, "wrong password!"), 401, "UNAUTHORIZED");
      const unknown = expectError(await attempt(uniqueName("ghost"), PASSWORD), 401, "UNAUTHORIZED");
      assert.equal(wrong.message, unknown.message, "unknown user and wrong password must be indistinguishable");
      await login(base, bystander.user.username); // a success clears the bystander's one failure

      // 5 wrong passwords (in mixed case: the count is per username, case-insensitively) → 401.
      const name = victim.user.username;
      const spellings = [name, name.toUpperCase(), name, name.toUpperCase(), name];
      for (const [i, spelling] of spellings.entries()) {
        const res = await attempt(spelling, `wrong password ${i}`);
        const err = expectError(res, 401, "UNAUTHORIZED", `failure ${i + 1}`);
        assert.equal(err.message, wrong.message);
      }
      // The 6th → 429 with Retry-After.
      const limited = await attempt(name, "wrong again");
      const err = expectError(limited, 429, "RATE_LIMITED", "6th failure");
      const retryAfter = Number(limited.headers.get("retry-after"));
      assert.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 15 * 60, `Retry-After ${retryAfter}`);
      assert.equal(err.fields, undefined);
      // Even the right password is refused now, in any case.
      expectError(await attempt(name, PASSWORD), 429, "RATE_LIMITED", "right password while throttled");
      expectError(await attempt(name.toUpperCase(), PASSWORD), 429, "RATE_LIMITED", "upper case while throttled");
      // The victim's existing session is not affected, nor is another account.
      assert.equal((await me(victim.accessToken)).status, 200);
      await login(base, bystander.user.username);

      // An unknown username is throttled the same way.
      const ghost = uniqueName("ghost");
      for (let i = 0; i < 5; i++) {
        const res = await attempt(i % 2 ? ghost.toUpperCase() : ghost, PASSWORD);
        assert.equal(expectError(res, 401, "UNAUTHORIZED", `ghost failure ${i + 1}`).message, wrong.message);
      }
      const ghostLimited = await attempt(ghost, PASSWORD);
      expectError(ghostLimited, 429, "RATE_LIMITED", "ghost 6th");
      assert.ok(Number(ghostLimited.headers.get("retry-after")) > 0, "Retry-After for the unknown user");
    });

    it("bad tokens are refused at REST (401) and at the socket handshake (UNAUTHORIZED)", { skip }, async (t) => {
      const acc = await register(base);
      const valid = acc.accessToken;
      const now = Math.floor(Date.now() / 1000);
      const bad: [string, string | undefined][] = [
        ["missing", undefined],
        ["empty", ""],
        ["garbage", "garbage"],
        ["three garbage parts", "aaa.bbb.ccc"],
        ["alg none", unsigned(valid)],
        ["alg none with the real signature dropped", valid.split(".").slice(0, 2).join(".") + "."],
        ["wrong signature", await forge(valid, { secret: "another-secret-0123456789abcdefghijklmnopqrstuvwxyz" })],
        [
          "tampered payload",
          `${valid.split(".")[0]}.${b64url({ ...decodeJwt(valid), sub: "999999" })}.${valid.split(".")[2]}`,
        ],
        ["expired", await forge(valid, { iat: now - 3600, exp: now - 60 })],
        ["wrong audience", await forge(valid, { aud: "someone-else" })],
        ["wrong issuer", await forge(valid, { iss: "evil" })],
        // The right secret and claims, but a session id that never existed.
        [
          "unknown session",
          await new SignJWT({ sid: "00000000-0000-4000-8000-000000000000", name: "x", roles: [] })
            .setProtectedHeader({ alg: "HS256", typ: "JWT" })
            .setSubject(String(acc.user.id))
            .setIssuer("nochat")
            .setAudience("nochat")
            .setIssuedAt()
            .setExpirationTime(now + 600)
            .sign(new TextEncoder().encode(TEST_JWT_SECRET)),
        ],
      ];

      // Our forgery is right apart from the one defect: with the real secret and claims it works.
      const control = await forge(valid);
      assert.equal((await me(control)).status, 200, "a correctly forged token is accepted (test sanity)");

      for (const [what, token] of bad) {
        const res =
          token === undefined
            ? await api(base, "GET", "/api/users/me")
            : await api(base, "GET", "/api/users/me", { headers: { authorization: `Bearer ${token}` } });
        expectError(res, 401, "UNAUTHORIZED", `REST, ${what} token`);
        await expectSocketRefused(base, token, `socket, ${what} token`);
      }
      for (const header of ["Basic dXNlcjpwYXNz", `Token ${valid}`, "Bearer", `Bearer ${valid} extra`]) {
        const res = await api(base, "GET", "/api/users/me", { headers: { authorization: header } });
        expectError(res, 401, "UNAUTHORIZED", `Authorization: ${header.slice(0, 20)}`);
      }
      const longToken = "a".repeat(5000);
      await expectSocketRefused(base, longToken, "socket, 5000-character token");

      // The valid token connects, and works at REST.
      assert.equal((await me(valid)).status, 200);
      const socket = await connectChat(base, valid, { t });
      assert.ok(socket.connected);
    });

    it("admins: NOCHAT_ADMINS users get role admin and /api/admin/events", { skip }, async () => {
      const registered = await register(base, "Boss");
      assertPublicUser(registered.user, { username: "boss" });
      // Registering a listed name grants nothing; the list applies at start to accounts that exist.
      assert.equal((await me(registered.accessToken)).body.roles, undefined, "not an admin by registering");
      const port = new URL(base).port;
      const env = node!.env;
      await node!.stop();
      node = await startNode({
        name: env.NODE_ID,
        env: { ...env, PORT: port },
        ready: { http: Number(port) },
        timeoutMs: 60_000,
      });
      const boss = await login(base, "boss");
      const bossMe = await me(boss.accessToken);
      assert.equal(bossMe.status, 200, bossMe.text);
      assertPublicUser(bossMe.body, { username: "boss", roles: ["admin"] });
      assert.deepEqual(decodeJwt(boss.accessToken).roles, ["admin"]);

      const worker = await register(base, uniqueName("worker"));
      const workerMe = await me(worker.accessToken);
      assertPublicUser(workerMe.body, { username: worker.user.username });
      assert.equal(workerMe.body.roles, undefined, "no roles for a non-admin");

      // Roles never appear on other users' views of the admin.
      const bossSeen = await api(base, "GET", `/api/users/${boss.user.id}`, { token: worker.accessToken });
      assert.equal(bossSeen.status, 200, bossSeen.text);
      assertPublicUser(bossSeen.body, { username: "boss" });

      const events = await eventually(
        "user.registered for the worker in /api/admin/events",
        async () => {
          const res = await api(base, "GET", "/api/admin/events", { token: boss.accessToken });
          if (res.status !== 200 || !Array.isArray(res.body.events)) throw new GiveUp(`${res.status} ${res.text}`);
          return res.body.events.some(
            (e: { type: string; userId: number | null }) => e.type === "user.registered" && e.userId === worker.user.id,
          );
        },
        { timeoutMs: 5_000 },
      ).then(() => api(base, "GET", "/api/admin/events?limit=5", { token: boss.accessToken }));
      assert.equal(events.status, 200, events.text);
      assert.ok(events.body.events.length <= 5);
      for (const e of events.body.events) {
        for (const key of ["id", "ts", "type", "nodeId", "requestId", "userId", "roomId", "data"]) {
          assert.ok(key in e, `event lacks ${key}: ${JSON.stringify(e)}`);
        }
      }
      const ts = events.body.events.map((e: { ts: string }) => Date.parse(e.ts));
      assert.deepEqual(
        ts,
        [...ts].sort((a: number, b: number) => b - a),
        "newest first",
      );

      expectError(
        await api(base, "GET", "/api/admin/events", { token: worker.accessToken }),
        403,
        "FORBIDDEN",
        "non-admin",
      );
      expectError(await api(base, "GET", "/api/admin/events"), 401, "UNAUTHORIZED", "no token");
    });

    it("users: search by prefix, get by id, 404 / 422", { skip }, async () => {
      const prefix = `srch${Math.random().toString(36).slice(2, 7)}`;
      const names = [`${prefix}_c`, `${prefix}_a`, `${prefix}_b`, `${prefix.toUpperCase()}_D`];
      const accounts: Account[] = [];
      for (const n of names) accounts.push(await register(base, n));
      const other = await register(base, uniqueName("zz"));
      const token = other.accessToken;

      const all = await api(base, "GET", `/api/users?q=${prefix}`, { token });
      assert.equal(all.status, 200, all.text);
      assert.deepEqual(Object.keys(all.body), ["users"]);
      for (const u of all.body.users) assertPublicUser(u);
      assert.deepEqual(
        all.body.users.map((u: { username: string }) => u.username),
        [`${prefix}_a`, `${prefix}_b`, `${prefix}_c`, `${prefix}_d`],
        "prefix matches, sorted by username",
      );
      const upper = await api(base, "GET", `/api/users?q=${prefix.toUpperCase()}`, { token });
      assert.equal(upper.body.users.length, 4, "search is case-insensitive");
      const limited = await api(base, "GET", `/api/users?q=${prefix}&limit=2`, { token });
      assert.equal(limited.status, 200, limited.text);
      assert.equal(limited.body.users.length, 2);
      const none = await api(base, "GET", `/api/users?q=${prefix}_zzz`, { token });
      assert.deepEqual(none.body, { users: [] });
      // LIKE wildcards are literal: "%" and "_" match only themselves.
      const wildcard = await api(base, "GET", `/api/users?q=${encodeURIComponent("%")}`, { token });
      assert.equal(wildcard.status, 200, wildcard.text);
      assert.deepEqual(wildcard.body.users, []);
      const underscore = await api(base, "GET", `/api/users?q=${prefix.slice(0, 3)}_`, { token });
      assert.deepEqual(underscore.body.users, [], "'_' is not a wildcard");

      const first = accounts[1];
      const got = await api(base, "GET", `/api/users/${first.user.id}`, { token });
      assert.equal(got.status, 200, got.text);
      assertPublicUser(got.body, { username: `${prefix}_a` });
      assert.equal(got.body.id, first.user.id);

      expectError(await api(base, "GET", "/api/users/987654321", { token }), 404, "NOT_FOUND", "unknown id");
      expectValidation(await api(base, "GET", "/api/users/abc", { token }), "id", "id abc");
      expectValidation(await api(base, "GET", "/api/users/0", { token }), "id", "id 0");
      expectValidation(await api(base, "GET", "/api/users/-3", { token }), "id", "id -3");
      expectError(await api(base, "GET", `/api/users/${first.user.id}`), 401, "UNAUTHORIZED", "get without token");
      expectError(await api(base, "GET", `/api/users?q=${prefix}`), 401, "UNAUTHORIZED", "search without token");
    });

    it("refresh-token reuse revokes the whole session", { skip }, async (t) => {
      const acc = await register(base);
      const session = await login(base, acc.user.username);
      const socket = await connectChat(base, session.accessToken, { t });
      const watch = new Inbox(socket);

      const a = session.refreshToken;
      const rotated = await refresh(a);
      assert.equal(rotated.status, 200, rotated.text);
      const b = rotated.body.refreshToken as string;
      const newAccess = rotated.body.accessToken as string;
      assert.equal((await me(newAccess)).status, 200);
      assert.equal((await me(session.accessToken)).status, 200, "the old access token lives until it expires");

      // A again: reuse → 401, and the family is revoked.
      expectError(await refresh(a), 401, "UNAUTHORIZED", "reused refresh token");
      expectError(await refresh(b), 401, "UNAUTHORIZED", "the rotated refresh token after reuse");
      for (const [what, token] of [
        ["login access token", session.accessToken],
        ["refreshed access token", newAccess],
      ]) {
        const checkedAt = Date.now();
        await eventually(`the ${what} to be refused`, async () => (await me(token)).status === 401, {
          timeoutMs: 3_000,
        });
        t.diagnostic(`${what} refused ${Date.now() - checkedAt} ms after the reuse`);
        await expectSocketRefused(base, token, what);
      }
      const gone = await withTimeout(watch.disconnected, 3_000, "the session's socket was not disconnected");
      assert.equal(gone.reason, "io server disconnect");
      assert.deepEqual(watch.names(["session:revoked", "disconnect"]), ["session:revoked", "disconnect"]);

      // Other sessions of the user are untouched, and the user can log in again.
      assert.equal((await me(acc.accessToken)).status, 200);
      const again = await login(base, acc.user.username);
      assert.equal((await refresh(again.refreshToken)).status, 200);
    });
  });
}
