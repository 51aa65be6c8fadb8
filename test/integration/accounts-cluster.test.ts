/**
 * Session revocation across a cluster (RabbitMQ + MariaDB): two gateway nodes (SERVICES=api) and
 * one node with the other services. A logout on gateway 1 must reach gateway 2, which drops the
 * session's cached tokens and disconnects its sockets (after `session:revoked`), while another
 * session of the same user stays connected.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeJwt } from "jose";
import { api, login, register, uniqueName } from "../support/accounts-helpers.js";
import { expectError } from "../support/errors.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import {
  createTestDatabase,
  freePort,
  rabbitUrl,
  serverSkip,
  uniqueNamespace,
  type TestDatabase,
} from "../support/servers.js";
import { connectChat, expectSocketRefused, Inbox, type ChatSocket } from "../support/sockets.js";
import { eventually, GiveUp, sleep, withTimeout } from "../support/wait.js";

describe("accounts across a cluster (RabbitMQ + MariaDB)", async () => {
  const skip = (await serverSkip("rabbitmq")) || (await serverSkip("mariadb"));
  const nodes: NodeHandle[] = [];
  let db: TestDatabase | undefined;
  let gw1 = "";
  let gw2 = "";

  before(async () => {
    if (skip) return;
    db = await createTestDatabase();
    const shared = {
      TRANSPORTER: rabbitUrl(),
      NAMESPACE: uniqueNamespace("accounts"),
      DATABASE_URL: db.url,
      HEALTH_DETAILS: "public", // the per-node details of /api/health
    };
    // JWT_SECRET: startNode gives every node the same TEST_JWT_SECRET.
    nodes.push(
      await startNode({
        name: "services",
        services: ["auth", "users", "chat", "notify", "log"],
        env: { ...shared, NODE_ID: `services-${shared.NAMESPACE}` },
        timeoutMs: 60_000,
      }),
    );
    const [port1, port2] = [await freePort(), await freePort()];
    const gateways = await Promise.all(
      [port1, port2].map((port, i) =>
        startNode({
          name: `gateway-${i + 1}`,
          services: ["api"],
          env: { ...shared, PORT: String(port), NODE_ID: `gateway${i + 1}-${shared.NAMESPACE}` },
          // /api/health answers 200 only once every service is seen through the bus.
          ready: { http: port },
          timeoutMs: 60_000,
        }),
      ),
    );
    nodes.push(...gateways);
    gw1 = `http://127.0.0.1:${port1}`;
    gw2 = `http://127.0.0.1:${port2}`;
    // A gateway's /api/health is ok as soon as IT sees the services, but the other nodes learn
    // about the gateway (and its `auth.session.revoked` listener) only from its INFO packet, which
    // Moleculer sends up to ~1 s later (serviceChangedDebounceTime). Until then a broadcast skips it.
    for (const gateway of gateways) {
      await nodes[0].waitForOutput(`Node '${gateway.env.NODE_ID}' connected`, { timeoutMs: 15_000 });
    }
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await db?.drop();
  });

  it("both gateways are healthy and see the whole cluster", { skip }, async () => {
    for (const base of [gw1, gw2]) {
      await eventually(
        `${base} to list the 3 nodes`,
        async () => {
          const res = await api(base, "GET", "/api/health");
          // Every service is there from the start: only the node count may lag.
          const healthy =
            res.status === 200 &&
            res.body.status === "ok" &&
            ["api", "auth", "users", "chat", "notify", "log"].every((s) => res.body.services.includes(s));
          if (!healthy) throw new GiveUp(`${base}: GET /api/health ${res.status} ${res.text}`);
          assert.equal(res.body.nodes.length, 3, res.text);
          return true;
        },
        { timeoutMs: 15_000 },
      );
    }
  });

  it("logout on gateway 1 revokes the session's socket and token on gateway 2", { skip }, async (t) => {
    const username = uniqueName("Cluster");
    const acc = await register(gw1, username);
    const token = acc.accessToken;

    // Warm gateway 2's token cache, so the revocation must come from the broadcast, not the TTL.
    const warm = await api(gw2, "GET", "/api/users/me", { token });
    assert.equal(warm.status, 200, warm.text);
    assert.equal(warm.body.id, acc.user.id);
    const socket = await connectChat(gw2, token, { t });
    const watch = new Inbox(socket);

    // Another session of the same user, with sockets on both gateways.
    const other = await login(gw2, username);
    assert.notEqual(decodeJwt(other.accessToken).sid, decodeJwt(token).sid);
    const otherSocket2 = await connectChat(gw2, other.accessToken, { t });
    const otherSocket1 = await connectChat(gw1, other.accessToken, { t });
    const otherInboxes = [otherSocket1, otherSocket2].map((s) => new Inbox(s));

    const started = Date.now();
    const out = await api(gw1, "POST", "/api/auth/logout", { token, body: {} });
    assert.equal(out.status, 204, out.text);

    const gone = await withTimeout(watch.disconnected, 2_000, "the socket on gateway 2 was not disconnected");
    const revoked = watch.events.find((e) => e.name === "session:revoked");
    assert.ok(revoked, `session:revoked not received; events: ${JSON.stringify(watch.events)}`);
    assert.deepEqual(watch.names(["session:revoked", "disconnect"]), ["session:revoked", "disconnect"]);
    assert.equal(gone.reason, "io server disconnect");
    t.diagnostic(
      `gateway 2 socket: session:revoked after ${revoked.at - started} ms, disconnect after ${gone.at - started} ms`,
    );

    const checkedAt = Date.now();
    await eventually(
      "gateway 2 to refuse the logged-out token",
      async () => (await api(gw2, "GET", "/api/users/me", { token })).status === 401,
      { timeoutMs: 2_000, intervalMs: 50 },
    );
    t.diagnostic(`gateway 2 REST refuses the token ${Date.now() - checkedAt} ms after the check started`);
    expectError(await api(gw2, "GET", "/api/users/me", { token }), 401, "UNAUTHORIZED", "gateway 2 after logout");
    expectError(await api(gw1, "GET", "/api/users/me", { token }), 401, "UNAUTHORIZED", "gateway 1 after logout");
    expectError(
      await api(gw2, "POST", "/api/auth/refresh", { body: { refreshToken: acc.refreshToken } }),
      401,
      "UNAUTHORIZED",
      "refresh token after logout",
    );
    await expectSocketRefused(gw2, token, "gateway 2 handshake after logout");
    await expectSocketRefused(gw1, token, "gateway 1 handshake after logout");

    // The other session is untouched, on both gateways, beyond the token cache's lifetime.
    await sleep(2_500);
    assert.ok(otherSocket2.connected, "the other session's socket on gateway 2 was disconnected");
    assert.ok(otherSocket1.connected, "the other session's socket on gateway 1 was disconnected");
    assert.deepEqual(
      otherInboxes.flatMap((inbox) => inbox.of("session:revoked")),
      [],
      "the other session received session:revoked",
    );
    for (const base of [gw1, gw2]) {
      const res = await api(base, "GET", "/api/users/me", { token: other.accessToken });
      assert.equal(res.status, 200, res.text);
    }
    const fresh = await connectChat(gw2, other.accessToken, { t });
    assert.ok(fresh.connected);
  });

  it("refresh-token reuse through gateway 2 revokes the session's socket on gateway 1", { skip }, async (t) => {
    const acc = await register(gw2, uniqueName("reuse"));
    const socket = await connectChat(gw1, acc.accessToken, { t });
    const watch = new Inbox(socket);
    assert.equal((await api(gw1, "GET", "/api/users/me", { token: acc.accessToken })).status, 200);

    const rotated = await api(gw1, "POST", "/api/auth/refresh", { body: { refreshToken: acc.refreshToken } });
    assert.equal(rotated.status, 200, rotated.text);
    expectError(
      await api(gw2, "POST", "/api/auth/refresh", { body: { refreshToken: acc.refreshToken } }),
      401,
      "UNAUTHORIZED",
      "reuse",
    );
    await withTimeout(watch.disconnected, 2_000, "the socket on gateway 1 was not disconnected");
    assert.deepEqual(watch.names(["session:revoked", "disconnect"]), ["session:revoked", "disconnect"]);
    for (const token of [acc.accessToken, rotated.body.accessToken as string]) {
      await eventually(
        "gateway 1 to refuse a revoked session's access token",
        async () => (await api(gw1, "GET", "/api/users/me", { token })).status === 401,
        { timeoutMs: 2_000, intervalMs: 50 },
      );
    }
    expectError(
      await api(gw1, "POST", "/api/auth/refresh", { body: { refreshToken: rotated.body.refreshToken } }),
      401,
      "UNAUTHORIZED",
      "the rotated refresh token after reuse",
    );
  });

  it("a gateway that just turned healthy also gets its sockets revoked", { skip }, async (t) => {
    const port = await freePort();
    const shared = nodes[1].env;
    const gw3node = await startNode({
      name: "gateway-3",
      services: ["api"],
      env: {
        TRANSPORTER: shared.TRANSPORTER,
        NAMESPACE: shared.NAMESPACE,
        DATABASE_URL: shared.DATABASE_URL,
        PORT: String(port),
        NODE_ID: `gateway3-${shared.NAMESPACE}`,
      },
      ready: { http: port },
      timeoutMs: 60_000,
    });
    const held: { socket?: ChatSocket } = {};
    // Close the client first: a gateway with a connected socket does not stop on SIGTERM (see report).
    t.after(async () => {
      held.socket?.close();
      await gw3node.stop();
    });
    const gw3 = `http://127.0.0.1:${port}`;
    // As a client would: the node is healthy, so use it.
    const acc = await register(gw3, uniqueName("early"));
    const socket = await connectChat(gw3, acc.accessToken);
    held.socket = socket;
    const watch = new Inbox(socket);
    const out = await api(gw1, "POST", "/api/auth/logout", { token: acc.accessToken, body: {} });
    assert.equal(out.status, 204, out.text);
    await withTimeout(watch.disconnected, 2_000, "the socket on the new gateway was not disconnected");
    assert.deepEqual(watch.names(["session:revoked", "disconnect"]), ["session:revoked", "disconnect"]);
  });
});
