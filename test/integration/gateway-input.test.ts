/**
 * Hostile input at the gateway, against one embedded node (issue 10, items 1 and 6):
 * `__proto__` keys in REST bodies and socket payloads, deeply nested JSON, stale and oversized
 * Authorization headers on public routes, `application/*+json` bodies, and the security headers
 * on API answers.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { api, register, type Account } from "../support/accounts-helpers.js";

import { expectAckError, expectError } from "../support/errors.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { freePort } from "../support/servers.js";
import { connectChat, rawCall, type ChatSocket } from "../support/sockets.js";

describe("gateway input hardening (embedded node)", () => {
  let node: NodeHandle;
  let base = "";
  let alice: Account;
  let socket: ChatSocket;

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    node = await startNode({
      env: { PORT: String(port), TRANSPORTER: undefined, DATABASE_URL: undefined, MONGO_URL: undefined },
      ready: { http: port },
    });
    alice = await register(base);
    socket = await connectChat(base, alice.accessToken);
  });

  after(async () => {
    socket?.close();
    await node?.stop();
  });

  it("a __proto__ key in a REST body never becomes the params' prototype", async () => {
    // Before: Object.assign({}, body) made { username, password } the params' prototype, so the
    // validator and the handler saw them, and this logged in.
    const raw = JSON.stringify({ x: 1 }).replace(
      '"x":1',
      `"__proto__":${JSON.stringify({ username: alice.user.username, password: alice.password })}`,
    );
    const res = await api(base, "POST", "/api/auth/login", { raw });
    expectError(res, 422, "VALIDATION_ERROR", "credentials only under __proto__");

    const nested = `{"username":${JSON.stringify(alice.user.username)},"password":${JSON.stringify(alice.password)},"constructor":{"prototype":{"x":1}}}`;
    const ok = await api(base, "POST", "/api/auth/login", { raw: nested });
    assert.equal(ok.status, 200, `constructor/prototype keys are dropped, the rest is served: ${ok.text}`);
  });

  it("deeply nested JSON is 400 BAD_REQUEST, on REST and on the socket", async () => {
    const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
    const res = await api(base, "POST", "/api/auth/login", {
      raw: `{"username":${deep(10_000)},"password":"x"}`,
    });
    expectError(res, 400, "BAD_REQUEST", "10,000 nested arrays in a body");

    const ack = await rawCall(socket, "message:send", [JSON.parse(`{"roomId":1,"body":${deep(3_000)}}`)]);
    expectAckError(ack, "BAD_REQUEST", "3,000 nested arrays in a socket payload");
    assert.ok(socket.connected, "the socket is still connected");
  });

  it("a __proto__ key in a socket payload is dropped", async () => {
    // `typing` is served by the gateway itself: a payload whose fields arrive only as __proto__ is
    // refused like one without them.
    const payload = JSON.parse('{"__proto__":{"roomId":1,"typing":true}}') as Record<string, unknown>;
    const ack = await rawCall(socket, "typing", [payload]);
    expectAckError(ack, "VALIDATION_ERROR", "typing with its fields under __proto__");
  });

  it("public routes ignore a stale Authorization header", async () => {
    const stale = { authorization: "Bearer not-a-token-any-more" };
    const login = await api(base, "POST", "/api/auth/login", {
      body: { username: alice.user.username, password: alice.password },
      headers: stale,
    });
    assert.equal(login.status, 200, `login with a stale header: ${login.text}`);
    const refresh = await api(base, "POST", "/api/auth/refresh", {
      body: { refreshToken: login.body.refreshToken },
      headers: stale,
    });
    assert.equal(refresh.status, 200, `refresh with a stale header: ${refresh.text}`);
    const registered = await api(base, "POST", "/api/auth/register", {
      body: { username: `s${Date.now().toString(36)}`, password: "a long enough password" },
      headers: { authorization: "Basic Zm9vOmJhcg==" },
    });
    assert.equal(registered.status, 201, `register with a foreign scheme: ${registered.text}`);
    // A route that needs a user still refuses it.
    expectError(await api(base, "GET", "/api/users/me", { headers: stale }), 401, "UNAUTHORIZED", "users/me");
  });

  it("an oversized bearer token is 401, naming no internal field", async () => {
    const res = await api(base, "GET", "/api/users/me", { token: "a".repeat(5_000) });
    const error = expectError(res, 401, "UNAUTHORIZED", "5,000-character token");
    assert.equal(error.fields, undefined);
    assert.doesNotMatch(res.text, /token' field/);
  });

  it("application/*+json bodies are parsed like application/json", async () => {
    for (const type of ["application/vnd.api+json", "application/merge-patch+json; charset=utf-8"]) {
      const res = await api(base, "POST", "/api/auth/login", {
        body: { username: alice.user.username, password: alice.password },
        contentType: type,
      });
      assert.equal(res.status, 200, `${type}: ${res.text}`);
    }
    const text = await api(base, "POST", "/api/auth/login", { raw: "username=x", contentType: "text/plain" });
    expectError(text, 400, "BAD_REQUEST", "text/plain body");
  });

  it("API answers carry the security headers, errors included", async () => {
    const answers = [
      ["GET /api/health", await api(base, "GET", "/api/health")],
      ["GET /api/users/me (401)", await api(base, "GET", "/api/users/me")],
      ["GET /api/nowhere (404)", await api(base, "GET", "/api/nowhere")],
      ["POST /api/auth/login (422)", await api(base, "POST", "/api/auth/login", { body: {} })],
    ] as const;
    for (const [what, res] of answers) {
      assert.equal(res.headers.get("x-content-type-options"), "nosniff", what);
      assert.ok(res.headers.get("referrer-policy"), `${what}: Referrer-Policy`);
      const framing = `${res.headers.get("x-frame-options") ?? ""} ${res.headers.get("content-security-policy") ?? ""}`;
      assert.match(framing, /DENY|frame-ancestors 'none'/i, `${what}: framing is refused`);
    }
  });
});
