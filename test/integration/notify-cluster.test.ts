/**
 * Notifications in a real cluster (RabbitMQ + MariaDB, one process per node):
 *   G1, G2      SERVICES=api (two gateways)
 *   backend     SERVICES=auth,users,chat,log
 *   N1, N2      SERVICES=notify (two instances sharing the notify tables)
 *
 * 1. Every event is applied exactly once although two notify instances share the work: N mentions
 *    → exactly N notifications; the unread state reaches two tabs on two gateways.
 * 2. With every notify instance stopped, 100 acknowledged mentions wait in chat's outbox; one notify
 *    instance started later applies exactly 100.
 * 3. A RabbitMQ outage (`rabbitmqctl stop_app`, 15 s, `start_app`) while clients keep sending, each
 *    send retried with the same clientMsgId until acknowledged: afterwards every acknowledged
 *    message has exactly one mention notification and is in the history once, without gaps.
 *
 * Notifications are counted in MariaDB directly (notify's REST answers are unavailable while it is
 * down). The cluster runs on a private RabbitMQ node of its own (test/support/private-rabbitmq.ts),
 * so the outage never touches the machine's broker; it is restarted in a `finally` all the same.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { isDeepStrictEqual } from "node:util";
import mysql from "mysql2/promise";
import type { Message, Room } from "../../src/contracts/objects.js";
import type { Health } from "../../src/gateway/health.js";
import { api, register } from "../support/accounts-helpers.js";
import { newClientMsgId, createRoom, sendRest } from "../support/chat-helpers.js";
import { myRooms, pool } from "../support/notify-helpers.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { PrivateRabbitMQ, privateRabbitUnavailable } from "../support/private-rabbitmq.js";
import { createTestDatabase, freePort, requireServer, uniqueNamespace } from "../support/servers.js";
import { call, connectChat, Inbox, okData, type ChatSocket } from "../support/sockets.js";
import { eventually, sleep } from "../support/wait.js";

const PHASE1_MENTIONS = 40;
const PHASE2_MENTIONS = 100;
const OUTAGE_MS = 15_000;
const PER_SENDER = 25;

test("notify in a cluster: exactly once with two instances, catch-up after downtime, RabbitMQ outage", async (t) => {
  if (!(await requireServer("mariadb", t))) return;
  const noRabbit = privateRabbitUnavailable();
  if (noRabbit) {
    t.skip(`no private RabbitMQ: ${noRabbit}`);
    return;
  }
  const rabbit = await PrivateRabbitMQ.start();
  t.after(() => rabbit.destroy());
  const ctl = rabbit.ctl;

  const database = await createTestDatabase();
  t.after(() => database.drop());
  const sql = await mysql.createConnection({ uri: database.url });
  t.after(() => sql.end());
  const query = async <R>(text: string, params: unknown[] = []): Promise<R[]> =>
    (await sql.query(text, params))[0] as R[];

  const common = {
    TRANSPORTER: rabbit.url,
    NAMESPACE: uniqueNamespace("nochat-notify"),
    DATABASE_URL: database.url,
    MONGO_URL: undefined, // the log keeps its events in the backend's DATA_DIR
    HEALTH_DETAILS: "public", // the per-node details of /api/health
  };
  const [p1, p2] = [await freePort(), await freePort()];
  const g1Base = `http://127.0.0.1:${p1}`;
  const g2Base = `http://127.0.0.1:${p2}`;

  const started = Date.now();
  await startNode({ t, name: "backend", services: ["auth", "users", "chat", "log"], env: common });
  const gateway = (port: number, name: string): Promise<NodeHandle> =>
    startNode({ t, name, services: ["api"], env: { ...common, PORT: String(port) }, ready: { http: port } });
  const notifyNode = (name: string): Promise<NodeHandle> => startNode({ t, name, services: ["notify"], env: common });
  // Both gateways and both notify instances migrate their tables at the same moment.
  const [g1, g2, n1, n2] = await Promise.all([
    gateway(p1, "G1"),
    gateway(p2, "G2"),
    notifyNode("N1"),
    notifyNode("N2"),
  ]);
  const ids = (nodes: NodeHandle[]) => nodes.map((n) => n.env.NODE_ID).sort();
  for (const base of [g1Base, g2Base]) {
    await eventually(
      `${base} sees all five nodes`,
      async () => {
        const res = await api<Health>(base, "GET", "/api/health");
        const seen = res.body?.nodes?.map((n) => n.id) ?? [];
        return res.status === 200 && ids([g1, g2, n1, n2]).every((id) => seen.includes(id)) && seen.length === 5;
      },
      { timeoutMs: 20_000 },
    );
  }
  t.diagnostic(`cluster of 5 nodes up in ${Date.now() - started} ms`);

  const [ann, bob, dave] = await Promise.all(["ann", "bob", "dave"].map((name) => register(g1Base, name)));

  /** bob's mention notifications in a room, per message id, from the database. */
  const mentionCounts = async (roomId: number): Promise<Map<number, number>> => {
    const rows = await query<{ message_id: number; n: number }>(
      "select message_id, count(*) as n from notifications where user_id = ? and kind = 'mention' and room_id = ? " +
        "group by message_id",
      [bob.user.id, roomId],
    );
    return new Map(rows.map((r) => [Number(r.message_id), Number(r.n)]));
  };
  const total = (counts: Map<number, number>): number => [...counts.values()].reduce((a, b) => a + b, 0);
  const pendingForNotify = async (): Promise<number> =>
    Number((await query<{ n: number }>("select count(*) as n from chat_outbox where pending like '%notify%'"))[0].n);

  // bob: one tab on each gateway.
  const tabs: ChatSocket[] = [
    await connectChat(g1Base, bob.accessToken, { t }),
    await connectChat(g2Base, bob.accessToken, { t }),
  ];
  const inboxes = tabs.map((s, i) => new Inbox(s, `bob's tab ${i + 1}`));
  const general = await createRoom(g1Base, ann, { name: "general", kind: "public", members: [bob.user.id] });

  await t.test(
    `two notify instances: ${PHASE1_MENTIONS} mentions → exactly ${PHASE1_MENTIONS} notifications`,
    async () => {
      const sent = await pool(
        Array.from({ length: PHASE1_MENTIONS }, (_, i) => i),
        8,
        (i) => sendRest(i % 2 ? g2Base : g1Base, ann, general.id, `hey @bob #${i}`),
      );
      const sentIds = sent.map((m) => m.id).sort((a, b) => a - b);
      await eventually("all mentions", async () => total(await mentionCounts(general.id)) >= PHASE1_MENTIONS, {
        timeoutMs: 20_000,
      });
      await sleep(1_500); // anything delivered twice would show up by now
      const counts = await mentionCounts(general.id);
      assert.deepEqual(
        [...counts.keys()].sort((a, b) => a - b),
        sentIds,
        "one notification per message",
      );
      assert.ok(
        [...counts.values()].every((n) => n === 1),
        "none twice",
      );
      const processed = await query<{ n: number }>("select count(*) as n from notify_processed");
      assert.ok(Number(processed[0].n) >= PHASE1_MENTIONS + 1);
      await eventually("chat's outbox drained for notify", async () => (await pendingForNotify()) === 0, {
        timeoutMs: 10_000,
      });

      // Live, on both tabs (two gateways): the invite and every mention, once each.
      for (const [i, inbox] of inboxes.entries()) {
        const live = await inbox.waitFor("notification", () => true, PHASE1_MENTIONS + 1, 10_000);
        const messageIds = live.filter((n) => n.kind === "mention").map((n) => n.messageId);
        assert.equal(new Set(messageIds).size, PHASE1_MENTIONS, `tab ${i + 1}: each mention once`);
        assert.equal(new Set(live.map((n) => n.id)).size, live.length);
      }
    },
  );

  await t.test("unread state on two tabs on two gateways", async () => {
    const full = { roomId: general.id, unread: PHASE1_MENTIONS, mentions: PHASE1_MENTIONS, lastReadSeq: 0 };
    // Each tab was told about every mention.
    for (const inbox of inboxes) {
      await inbox.waitFor("unread", (u) => isDeepStrictEqual(u, full), 1, 10_000);
      inbox.clear("unread");
    }
    const state = okData(await call(tabs[0], "room:read", { roomId: general.id, seq: 20 }), "room:read");
    const half = { roomId: general.id, unread: 20, mentions: 20, lastReadSeq: 20 };
    assert.deepEqual(state, half);
    // On both tabs (on both gateways).
    for (const inbox of inboxes) await inbox.waitFor("unread", (u) => isDeepStrictEqual(u, half), 1, 10_000);
    const viaG2 = (await myRooms(g2Base, bob)).get(general.id) as Room;
    assert.deepEqual(
      { roomId: viaG2.id, unread: viaG2.unread, mentions: viaG2.mentions, lastReadSeq: viaG2.lastReadSeq },
      half,
    );
  });

  await t.test(
    `every notify instance down: ${PHASE2_MENTIONS} acknowledged mentions wait, then one instance applies exactly ${PHASE2_MENTIONS}`,
    async () => {
      const before = total(await mentionCounts(general.id));
      await Promise.all([n1.stop(), n2.stop()]);
      await eventually(
        "the gateways see notify gone",
        async () => (await api<Health>(g1Base, "GET", "/api/health")).body?.missing?.includes("notify") === true,
        { timeoutMs: 10_000 },
      );

      const sent = await pool(
        Array.from({ length: PHASE2_MENTIONS }, (_, i) => i),
        10,
        async (i) => {
          const res = await api<Message>(i % 2 ? g2Base : g1Base, "POST", `/api/rooms/${general.id}/messages`, {
            token: ann.accessToken,
            body: { body: `while notify is down @bob #${i}`, clientMsgId: newClientMsgId("down") },
          });
          assert.equal(res.status, 201, `send ${i} acknowledged: ${res.status} ${res.text}`);
          return res.body;
        },
      );
      // The log took its share; the rows wait for notify alone.
      await eventually(
        `${PHASE2_MENTIONS} events waiting for notify`,
        async () => (await pendingForNotify()) === PHASE2_MENTIONS,
        { timeoutMs: 10_000 },
      );
      await sleep(1_000);
      assert.equal(total(await mentionCounts(general.id)), before, "no notification while notify is down");

      const restartedAt = Date.now();
      await notifyNode("N3");
      const upAt = Date.now();
      await eventually(
        `${PHASE2_MENTIONS} notifications after notify is back`,
        async () => total(await mentionCounts(general.id)) >= before + PHASE2_MENTIONS,
        { timeoutMs: 30_000 },
      );
      t.diagnostic(
        `applied ${PHASE2_MENTIONS} waiting events ${Date.now() - upAt} ms after N3 started (start took ${upAt - restartedAt} ms)`,
      );
      await sleep(1_500);
      const counts = await mentionCounts(general.id);
      assert.equal(total(counts), before + PHASE2_MENTIONS, "exactly 100 more");
      for (const m of sent) assert.equal(counts.get(m.id), 1, `message ${m.id} notified once`);
      await eventually("chat's outbox drained", async () => (await pendingForNotify()) === 0, { timeoutMs: 10_000 });
    },
  );

  await t.test(
    "RabbitMQ outage while clients keep sending: every acknowledged message stored once and notified once",
    async () => {
      const room = await createRoom(g1Base, ann, {
        name: "outage",
        kind: "public",
        members: [bob.user.id, dave.user.id],
      });
      const annTab = await connectChat(g1Base, ann.accessToken, { t });
      const daveTab = await connectChat(g2Base, dave.accessToken, { t });
      const deadline = Date.now() + 120_000;
      const log: string[] = [];

      /** Sends PER_SENDER mentions one after another, each retried with its clientMsgId until acknowledged. */
      const sender = async (socket: ChatSocket, tag: string): Promise<Message[]> => {
        const acked: Message[] = [];
        for (let i = 0; i < PER_SENDER; i++) {
          const clientMsgId = newClientMsgId(tag);
          const payload = { roomId: room.id, body: `@bob ${tag} ${i}`, clientMsgId };
          for (let attempt = 1; ; attempt++) {
            try {
              const ack = await call(socket, "message:send", payload, 12_000);
              if (ack.ok) {
                assert.equal(ack.data.clientMsgId, clientMsgId);
                acked.push(ack.data);
                if (attempt > 1) log.push(`${tag} ${i}: acknowledged at attempt ${attempt}`);
                break;
              }
              if (attempt === 1 || attempt % 5 === 0) log.push(`${tag} ${i} attempt ${attempt}: ${ack.error.code}`);
            } catch (err) {
              log.push(`${tag} ${i} attempt ${attempt}: ${(err as Error).message}`);
            }
            assert.ok(socket.connected, `${tag}'s socket stays connected`);
            if (Date.now() > deadline) assert.fail(`${tag} ${i} not acknowledged after ${attempt} attempts`);
            await sleep(500);
          }
          await sleep(150);
        }
        return acked;
      };

      const sending = Promise.all([sender(annTab, "ann"), sender(daveTab, "dave")]);
      sending.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
      await sleep(2_000);
      let stopped = false;
      try {
        await ctl.stopApp();
        stopped = true;
        t.diagnostic(`RabbitMQ stopped (${ctl.command} stop_app)`);
        await sleep(OUTAGE_MS);
      } finally {
        // Always give the broker back, whatever happened above.
        await ctl.startApp();
        if (stopped) t.diagnostic("RabbitMQ started again");
      }
      const recovered = Date.now();
      const acked = (await sending).flat();
      t.diagnostic(`senders done ${Date.now() - recovered} ms after the restart; ${acked.length} acknowledged`);
      for (const line of log.slice(0, 30)) t.diagnostic(line);
      assert.equal(acked.length, 2 * PER_SENDER);
      const ackedIds = acked.map((m) => m.id).sort((a, b) => a - b);
      assert.equal(new Set(ackedIds).size, ackedIds.length, "every acknowledged message is a different one");

      // Nothing acknowledged is missing from history; nothing is there twice; no gap.
      const history: Message[] = [];
      for (let after = 0; ;) {
        // Right after the outage a node may still be re-announcing itself: 503 is "try again".
        const page = () =>
          api<{ messages: Message[]; hasMore: boolean }>(
            g1Base,
            "GET",
            `/api/rooms/${room.id}/messages?after=${after}&limit=100`,
            { token: bob.accessToken },
          );
        let res = await page();
        for (let tries = 0; res.status === 503 && tries < 30; tries++) {
          await sleep(500);
          res = await page();
        }
        assert.equal(res.status, 200, res.text);
        history.push(...res.body.messages);
        if (!res.body.hasMore) break;
        after = res.body.messages[res.body.messages.length - 1].seq;
      }
      assert.deepEqual(
        history.map((m) => m.seq),
        history.map((_, i) => i + 1),
        "seq 1..n without gaps",
      );
      assert.deepEqual(
        history.map((m) => m.id).sort((a, b) => a - b),
        ackedIds,
        "history holds exactly the acknowledged messages",
      );

      const finishedAt = Date.now();
      await eventually(
        "a mention notification for every acknowledged message",
        async () => total(await mentionCounts(room.id)) >= acked.length,
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      t.diagnostic(`all ${acked.length} notifications ${Date.now() - finishedAt} ms after the senders finished`);
      await sleep(2_000);
      const counts = await mentionCounts(room.id);
      assert.deepEqual(
        [...counts.keys()].sort((a, b) => a - b),
        ackedIds,
        "one for each acknowledged message, no other",
      );
      const twice = [...counts].filter(([, n]) => n > 1);
      assert.deepEqual(twice, [], "none twice");
    },
  );
  t.diagnostic(`total ${Date.now() - started} ms`);
});
