/**
 * The browser UI on a real cluster: alice's page on gateway G1, bob's on gateway G2 (SERVICES=api
 * each), every other service on node S, over RabbitMQ with a namespace of its own and a MariaDB
 * database of its own (as test/integration/realtime-cluster.test.ts). Messages live both ways, an
 * operator's announcement shows as the server's on both, typing and presence cross the bus.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  browserTest,
  ensureUiBuilt,
  joinRest,
  openRoom,
  sendMessage,
  signIn,
  ui,
  visible,
  gone,
  expectCount,
} from "../support/browser.js";
import { ServiceBroker } from "moleculer";
import { OPERATOR } from "../../src/infra/permissions.js";
import { api, register } from "../support/accounts-helpers.js";
import { createRoom } from "../support/chat-helpers.js";
import { startNode, TEST_JWT_SECRET, type NodeHandle } from "../support/processes.js";
import { createTestDatabase, freePort, rabbitUrl, requireServer, uniqueNamespace } from "../support/servers.js";

test(
  "cluster: alice on G1, bob on G2, services on S — live messages, typing, presence",
  { timeout: 170_000 },
  async (t) => {
    for (const server of ["rabbitmq", "mariadb"] as const) {
      if (!(await requireServer(server, t))) return;
    }
    const env = await browserTest(t, { server: false });
    if (!env) return;
    await ensureUiBuilt();

    const db = await createTestDatabase();
    const common = {
      TRANSPORTER: rabbitUrl(),
      NAMESPACE: uniqueNamespace("nochat-browser"),
      DATABASE_URL: db.url,
      JWT_SECRET: TEST_JWT_SECRET,
    };
    const S = await startNode({
      t,
      name: "S",
      services: ["auth", "users", "chat", "notify", "log"],
      env: { ...common, NODE_ID: `S-${common.NAMESPACE}` },
      timeoutMs: 60_000,
    });
    const [p1, p2] = [await freePort(), await freePort()];
    const [G1, G2] = await Promise.all(
      (
        [
          ["G1", p1],
          ["G2", p2],
        ] as const
      ).map(([name, port]) =>
        startNode({
          t,
          name,
          services: ["api"],
          env: { ...common, PORT: String(port), NODE_ID: `${name}-${common.NAMESPACE}` },
          ready: { http: port },
          timeoutMs: 60_000,
        }),
      ),
    );
    // After the nodes' own t.after hooks (which stop them), the database goes.
    t.after(() => db.drop());
    // Broadcasts reach a node only once the sender has discovered it: wait for the full mesh.
    const ids = { S: S.env.NODE_ID, G1: G1.env.NODE_ID, G2: G2.env.NODE_ID };
    const mesh: [NodeHandle, string[]][] = [
      [S, [ids.G1, ids.G2]],
      [G1, [ids.S, ids.G2]],
      [G2, [ids.S, ids.G1]],
    ];
    await Promise.all(
      mesh.flatMap(([node, others]) =>
        others.map((other) => node.waitForOutput(`Node '${other}' connected`, { timeoutMs: 30_000 })),
      ),
    );
    const g1 = `http://127.0.0.1:${p1}`;
    const g2 = `http://127.0.0.1:${p2}`;
    for (const base of [g1, g2]) {
      const health = await api(base, "GET", "/api/health");
      assert.equal(health.status, 200, health.text);
    }

    // Accounts and the room over REST (each on "its" gateway); the rest in the browsers.
    const aliceAcc = await register(g1, "alice", { displayName: "Alice" });
    const bobAcc = await register(g2, "bob", { displayName: "Bob" });
    const room = await createRoom(g1, aliceAcc, { name: "Across", kind: "public", topic: "two gateways" });
    await joinRest(g2, bobAcc, room.id);

    const alice = await env.newPage("alice@G1", { base: g1 });
    const bob = await env.newPage("bob@G2", { base: g2 });
    const A = alice.page;
    const B = bob.page;
    await signIn(A, { username: "alice" });
    await signIn(B, { username: "bob" });
    await openRoom(A, "Across");
    await openRoom(B, "Across");

    // ---- messages both ways ----------------------------------------------------------------------------
    await sendMessage(A, "from G1 to G2");
    await visible(ui.article(B, "from G1 to G2"));
    await sendMessage(B, "and back from G2");
    await visible(ui.article(A, "and back from G2"));
    for (let i = 1; i <= 3; i++) await sendMessage(A, `burst ${i} from alice`);
    for (let i = 1; i <= 3; i++)
      await expectCount(ui.article(B, `burst ${i} from alice`), 1, `burst ${i} on bob's side`);
    const bodies = await ui.articles(B).allTextContents();
    const order = [1, 2, 3].map((i) => bodies.findIndex((text) => text.includes(`burst ${i} from alice`)));
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
      `in order on bob's side: ${order}`,
    );

    // ---- an operator's announcement: shown on both sides as the server's, not a user's ----------------
    const operator = new ServiceBroker({
      namespace: common.NAMESPACE,
      nodeID: `operator-${common.NAMESPACE}`,
      transporter: { type: "AMQP", options: { url: rabbitUrl() } },
      logger: false,
    });
    await operator.start();
    t.after(() => operator.stop());
    await operator.waitForServices(["chat"], 15_000);
    await operator.call(
      "chat.announce",
      { room: "Across", body: "Maintenance at 18:00" },
      { meta: { user: OPERATOR } },
    );
    for (const page of [A, B]) {
      const announcement = await visible(ui.article(page, "Maintenance at 18:00"));
      assert.match((await announcement.textContent()) ?? "", /^Announcement/);
      assert.match((await announcement.getAttribute("class")) ?? "", /\bsystem\b/);
      await expectCount(announcement.getByRole("button", { name: "Edit" }), 0, "nobody edits an announcement");
    }

    // ---- typing across gateways ------------------------------------------------------------------------
    await ui.composer(B).click();
    await ui.composer(B).pressSequentially("bob thinks", { delay: 60 });
    await visible(ui.typing(A, "Bob"));
    await ui.composer(B).fill("");
    await gone(ui.typing(A, "Bob"), 12_000);

    // ---- presence across gateways ----------------------------------------------------------------------
    await visible(ui.member(A, "Bob", "online"), 15_000);
    await B.close();
    await visible(ui.member(A, "Bob", "offline"), 20_000);

    alice.problems.assertClean();
    bob.problems.assertClean();
  },
);
