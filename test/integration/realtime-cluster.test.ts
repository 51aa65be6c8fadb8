/**
 * The real-time channel across a real cluster: two gateway processes (G1, G2: SERVICES=api) and one
 * services process (S: auth, users, chat, notify, log) over RabbitMQ, on a MariaDB database of its
 * own. Users' sockets are spread over both gateways; the tests check the delivery promise of
 * docs/API.md (every member, every gateway, exactly once, gap-free seq), exactly-once sends
 * under retries, catch-up with `sync`, membership changes, typing, presence (including a gateway
 * that dies) and the send rate limit.
 *
 * Order matters: the presence test SIGKILLs G2, so it runs last.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Message } from "../../src/contracts/objects.js";
import { api, register, uniqueName, type Account } from "../support/accounts-helpers.js";
import { createRoom, fullHistory, newClientMsgId, range, sendRest } from "../support/chat-helpers.js";
import { expectAckError } from "../support/errors.js";
import { startNode, TEST_JWT_SECRET, type NodeHandle } from "../support/processes.js";
import {
  createTestDatabase,
  freePort,
  rabbitUrl,
  serverSkip,
  uniqueNamespace,
  type TestDatabase,
} from "../support/servers.js";
import { Inbox, call, connectChat, okData, type ChatSocket } from "../support/sockets.js";
import { sleep } from "../support/wait.js";

/** How long to keep listening after the expected events arrived, to catch duplicates and leaks. */
const SETTLE_MS = 600;

describe("real-time over a cluster: G1 + G2 gateways, S services, RabbitMQ, MariaDB", async () => {
  const skip = (await serverSkip("rabbitmq")) || (await serverSkip("mariadb"));

  let db: TestDatabase | undefined;
  let S: NodeHandle;
  let G1: NodeHandle;
  let G2: NodeHandle;
  let g1 = "";
  let g2 = "";
  let servicesStartedAt = 0;
  const sockets: ChatSocket[] = [];

  /** A socket on the given gateway, subscribed to `rooms` before it resolves; closed at the end. */
  async function open(base: string, who: Account, rooms: number[] = [], label = who.user.username) {
    const socket = await connectChat(base, who.accessToken, { rooms });
    sockets.push(socket);
    return { socket, inbox: new Inbox(socket, `${label}@${base === g1 ? "G1" : "G2"}`) };
  }

  async function users(n: number, prefix: string): Promise<Account[]> {
    const out: Account[] = [];
    // Registration hashes a password: a few at a time is plenty.
    for (let i = 0; i < n; i++) out.push(await register(i % 2 ? g2 : g1, uniqueName(`${prefix}${i}`)));
    return out;
  }

  async function join(base: string, who: Account, roomId: number): Promise<void> {
    const res = await api(base, "POST", `/api/rooms/${roomId}/join`, { token: who.accessToken });
    assert.equal(res.status, 200, res.text);
  }

  before(async () => {
    if (skip) return;
    db = await createTestDatabase();
    const env = {
      TRANSPORTER: rabbitUrl(),
      NAMESPACE: uniqueNamespace(),
      DATABASE_URL: db.url,
      JWT_SECRET: TEST_JWT_SECRET,
    };
    S = await startNode({
      name: "S",
      services: ["auth", "users", "chat", "notify", "log"],
      env: { ...env, NODE_ID: `S-${env.NAMESPACE}` },
      timeoutMs: 60_000,
    });
    servicesStartedAt = Date.now();
    const [p1, p2] = [await freePort(), await freePort()];
    [G1, G2] = await Promise.all(
      (
        [
          ["G1", p1],
          ["G2", p2],
        ] as const
      ).map(([name, port]) =>
        startNode({
          name,
          services: ["api"],
          // Send limits raised for the bulk tests: burst 50, 50/s (the limit test sends 80 at once).
          env: {
            ...env,
            PORT: String(port),
            NODE_ID: `${name}-${env.NAMESPACE}`,
            SEND_BURST: "50",
            SEND_PER_SECOND: "50",
            SEND_PER_MINUTE: "100000",
          },
          ready: { http: port },
          timeoutMs: 60_000,
        }),
      ),
    );
    // Health on a gateway only says that gateway sees the services. Broadcasts reach a node only
    // once the sender has discovered it, so wait until every node has seen every other one.
    const ids = { S: S.env.NODE_ID, G1: G1.env.NODE_ID, G2: G2.env.NODE_ID };
    await Promise.all(
      (
        [
          [S, [ids.G1, ids.G2]],
          [G1, [ids.S, ids.G2]],
          [G2, [ids.S, ids.G1]],
        ] as const
      ).flatMap(([node, others]) =>
        others.map((other) => node.waitForOutput(`Node '${other}' connected`, { timeoutMs: 30_000 })),
      ),
    );
    g1 = `http://127.0.0.1:${p1}`;
    g2 = `http://127.0.0.1:${p2}`;
    for (const base of [g1, g2]) {
      const health = await api(base, "GET", "/api/health");
      assert.equal(health.status, 200, health.text);
      assert.equal(health.body.status, "ok");
    }
  });

  after(async () => {
    for (const s of sockets) s.close();
    await Promise.all([G1?.stop(), G2?.stop()]);
    await S?.stop();
    await db?.drop();
  });

  it(
    "delivers to every member on both gateways (the sender's other tab too), exactly once, and not to others",
    { skip },
    async () => {
      const [a, b, c, d, e] = await users(5, "dl");
      const room = await createRoom(g1, a, { name: uniqueName("deliver"), kind: "public" });
      await join(g2, b, room.id);
      await join(g1, c, room.id);
      const elsewhere = await createRoom(g2, d, { name: uniqueName("elsewhere"), kind: "public" });
      await join(g1, e, elsewhere.id);

      const a1 = await open(g1, a, [room.id], "a1");
      const a2 = await open(g2, a, [room.id], "a2");
      const bS = await open(g1, b, [room.id]);
      const cS = await open(g2, c, [room.id]);
      const dS = await open(g1, d, [elsewhere.id]);
      const eS = await open(g2, e, [elsewhere.id]);
      const members = [a1, a2, bS, cS];

      const sent: Message[] = [];
      sent.push(
        okData(
          await call(a1.socket, "message:send", {
            roomId: room.id,
            body: "from a, tab 1",
            clientMsgId: newClientMsgId(),
          }),
          "a1",
        ),
      );
      sent.push(
        okData(
          await call(a2.socket, "message:send", {
            roomId: room.id,
            body: "from a, tab 2",
            clientMsgId: newClientMsgId(),
          }),
          "a2",
        ),
      );
      sent.push(
        okData(
          await call(bS.socket, "message:send", { roomId: room.id, body: "from b", clientMsgId: newClientMsgId() }),
          "b",
        ),
      );
      sent.push(
        okData(
          await call(cS.socket, "message:send", { roomId: room.id, body: "from c", clientMsgId: newClientMsgId() }),
          "c",
        ),
      );
      sent.push(await sendRest(g2, c, room.id, "from c over REST"));
      const other = okData(
        await call(dS.socket, "message:send", {
          roomId: elsewhere.id,
          body: "other room",
          clientMsgId: newClientMsgId(),
        }),
        "d",
      );

      for (const m of members) await m.inbox.waitFor("message:new", (x) => x.roomId === room.id, sent.length);
      await eS.inbox.waitFor("message:new", (x) => x.id === other.id);
      await sleep(SETTLE_MS);

      for (const m of members) {
        const got = m.inbox.messages(room.id);
        assert.deepEqual(
          got.map((x) => x.id).sort((x, y) => x - y),
          sent.map((x) => x.id).sort((x, y) => x - y),
          `${m.inbox.label}: each message exactly once`,
        );
        for (const x of got)
          assert.deepEqual(
            x,
            sent.find((s) => s.id === x.id),
            `${m.inbox.label}: the stored message`,
          );
        assert.equal(m.inbox.messages(elsewhere.id).length, 0, `${m.inbox.label} got another room's message`);
      }
      for (const n of [dS, eS]) {
        assert.equal(n.inbox.messages(room.id).length, 0, `${n.inbox.label} (not a member) got a message of the room`);
      }
      assert.equal(dS.inbox.messages(elsewhere.id).length, 1);
      assert.equal(eS.inbox.messages(elsewhere.id).length, 1);
      assert.deepEqual(
        sent.map((m) => m.seq),
        range(5),
      );
    },
  );

  it(
    "a room created, or a direct room opened, after connecting reaches its creator's open sockets",
    { skip },
    async () => {
      const [a, b, c] = await users(3, "cr");
      const a1 = await open(g1, a, [], "a1");
      const a2 = await open(g2, a, [], "a2");
      const bS = await open(g2, b, [], "b");
      const cS = await open(g1, c, [], "c");

      const room = await createRoom(g2, a, { name: uniqueName("fresh"), kind: "private", members: [b.user.id] });
      const first = await sendRest(g1, b, room.id, "first words in a new room");
      const dm = await api(g1, "POST", "/api/rooms/direct", { token: a.accessToken, body: { userId: c.user.id } });
      assert.equal(dm.status, 201, dm.text);
      const hello = await sendRest(g2, c, dm.body.id, "hello, direct");
      for (const s of [a1, a2, bS]) await s.inbox.waitFor("message:new", (m) => m.id === first.id);
      for (const s of [a1, a2, cS]) await s.inbox.waitFor("message:new", (m) => m.id === hello.id);
      await sleep(SETTLE_MS);
      assert.equal(cS.inbox.messages(room.id).length, 0, "a non-member got the private room's message");
      assert.equal(bS.inbox.messages(dm.body.id).length, 0, "a third user got the direct message");
      for (const s of [a1, a2]) {
        assert.equal(s.inbox.messages(room.id).length, 1, `${s.inbox.label}: once`);
        assert.equal(s.inbox.messages(dm.body.id).length, 1, `${s.inbox.label}: once`);
      }
    },
  );

  it(
    "retries of one clientMsgId — sequential, concurrent, across gateways and REST — store and deliver one message",
    { skip },
    async () => {
      const [a, b] = await users(2, "rt");
      const room = await createRoom(g1, a, { name: uniqueName("retry"), kind: "public" });
      await join(g2, b, room.id);
      const a1 = await open(g1, a, [room.id], "a1");
      const a2 = await open(g2, a, [room.id], "a2");
      const bS = await open(g2, b, [room.id]);
      const watchers = [a1, a2, bS];
      const send = (s: ChatSocket, clientMsgId: string, body: string) =>
        call(s, "message:send", { roomId: room.id, body, clientMsgId });

      // Sequential retries on one socket.
      const seqId = newClientMsgId("seq");
      const first = okData(await send(a1.socket, seqId, "sequential"), "first");
      for (let i = 0; i < 3; i++) {
        const again = okData(await send(a1.socket, seqId, `sequential retry ${i}`), "retry");
        assert.deepEqual(again, first, "a retry answers the original message");
      }
      await sleep(1_100); // the rate limiter's bucket refills (10 per second)

      // Ten at once, five on each gateway.
      const concId = newClientMsgId("conc");
      const acks = await Promise.all(
        range(10).map((i) => send(i % 2 ? a1.socket : a2.socket, concId, `concurrent ${i}`)),
      );
      const conc = acks.map((ack, i) => okData(ack, `concurrent ${i}`));
      assert.equal(
        new Set(conc.map((m) => m.id)).size,
        1,
        `one message for ten concurrent sends: ${JSON.stringify(conc.map((m) => m.id))}`,
      );
      await sleep(1_100);

      // The same clientMsgId through G1 and G2 at once, then over REST on both gateways.
      const crossId = newClientMsgId("cross");
      const [viaG1, viaG2] = await Promise.all([
        send(a1.socket, crossId, "via G1"),
        send(a2.socket, crossId, "via G2"),
      ]);
      const cross = okData(viaG1, "via G1");
      assert.deepEqual(okData(viaG2, "via G2"), cross);
      for (const base of [g1, g2]) {
        const res = await api(base, "POST", `/api/rooms/${room.id}/messages`, {
          token: a.accessToken,
          body: { body: "via REST", clientMsgId: crossId },
        });
        assert.equal(res.status, 200, `a REST repeat answers 200: ${res.text}`);
        assert.deepEqual(res.body, cross);
      }

      const history = await fullHistory(g1, b, room.id);
      assert.deepEqual(
        history.map((m) => [m.seq, m.clientMsgId]),
        [
          [1, seqId],
          [2, concId],
          [3, crossId],
        ],
        "one stored row per clientMsgId, gap-free",
      );
      assert.deepEqual(
        history.map((m) => m.id),
        [first.id, conc[0].id, cross.id],
      );
      for (const w of watchers) await w.inbox.waitFor("message:new", (m) => m.roomId === room.id, 3);
      await sleep(SETTLE_MS);
      for (const w of watchers) {
        assert.deepEqual(
          w.inbox
            .messages(room.id)
            .map((m) => m.clientMsgId)
            .sort(),
          [seqId, concId, crossId].sort(),
          `${w.inbox.label}: exactly one message:new per clientMsgId`,
        );
      }
    },
  );

  it(
    "concurrent senders on both gateways get seqs 1..100 with no gap or duplicate, and every socket sees all, live, in seq order",
    { skip },
    async () => {
      const people = await users(5, "cc");
      const room = await createRoom(g1, people[0], { name: uniqueName("concurrent"), kind: "public" });
      for (const p of people.slice(1)) await join(g2, p, room.id);
      const tabs = [];
      for (const p of people) {
        tabs.push({ who: p, ...(await open(g1, p, [room.id])) });
        tabs.push({ who: p, ...(await open(g2, p, [room.id])) });
      }
      // 20 per user: 10 on each of their two tabs (the per-gateway burst is 10), all at once.
      const acks = await Promise.all(
        tabs.flatMap((tab, ti) =>
          range(10).map((i) =>
            call(tab.socket, "message:send", {
              roomId: room.id,
              body: `t${ti} m${i}`,
              clientMsgId: newClientMsgId(`t${ti}`),
            }),
          ),
        ),
      );
      const stored = acks.map((ack, i) => okData(ack, `send ${i}`));
      assert.deepEqual(
        stored.map((m) => m.seq).sort((x, y) => x - y),
        range(100),
        "acked seqs are exactly 1..100",
      );
      const history = await fullHistory(g2, people[3], room.id);
      assert.deepEqual(
        history.map((m) => m.seq),
        range(100),
      );
      assert.deepEqual(
        history.map((m) => m.id).sort((x, y) => x - y),
        stored.map((m) => m.id).sort((x, y) => x - y),
      );

      let outOfOrder = 0;
      const inversions = new Set<string>();
      for (const tab of tabs) await tab.inbox.waitFor("message:new", (m) => m.roomId === room.id, 100, 20_000);
      await sleep(SETTLE_MS);
      for (const tab of tabs) {
        const seqs = tab.inbox.messages(room.id).map((m) => m.seq);
        assert.deepEqual(
          [...seqs].sort((x, y) => x - y),
          range(100),
          `${tab.inbox.label}: all 100, once each`,
        );
        for (let i = 1; i < seqs.length; i++) {
          if (seqs[i] < seqs[i - 1]) {
            outOfOrder++;
            inversions.add(`${seqs[i - 1]}>${seqs[i]}`);
          }
        }
      }
      // Live events too come in seq order: chat broadcasts each batch after its commit, and each
      // gateway holds a message that skips a seq until the one before it arrives (RoomSequencer).
      assert.equal(
        outOfOrder,
        0,
        `live message:new arrived out of seq order ${outOfOrder} times over ${tabs.length} sockets: ${[...inversions].join(", ")}`,
      );
    },
  );

  it("a client that was away catches up with sync: exactly the missed seqs, in order", { skip }, async () => {
    const [a, f] = await users(2, "sy");
    const room = await createRoom(g1, a, { name: uniqueName("sync"), kind: "public" });
    await join(g2, f, room.id);
    const first = await open(g2, f, [room.id], "f-before");
    for (let i = 0; i < 5; i++) await sendRest(g1, a, room.id, `before ${i}`);
    const seen = await first.inbox.waitFor("message:new", (m) => m.roomId === room.id, 5);
    const lastSeq = Math.max(...seen.map((m) => m.seq));
    assert.equal(lastSeq, 5);
    first.socket.close();

    const missed = await Promise.all(range(50).map((i) => sendRest(i % 2 ? g1 : g2, a, room.id, `while away ${i}`)));
    assert.deepEqual(
      missed.map((m) => m.seq).sort((x, y) => x - y),
      range(50, 6),
    );

    const back = await open(g1, f, [room.id], "f-after");
    const ack = await call(back.socket, "sync", { rooms: { [room.id]: lastSeq } });
    const result = okData(ack, "sync");
    const page = result.rooms[String(room.id)];
    assert.ok(page, `sync answered no entry for the room: ${JSON.stringify(result).slice(0, 200)}`);
    assert.deepEqual(
      page.messages.map((m) => m.seq),
      range(50, 6),
      "exactly the missed seqs, ascending",
    );
    assert.equal(page.hasMore, false);
    assert.deepEqual(
      page.messages.map((m) => m.id).sort((x, y) => x - y),
      missed.map((m) => m.id).sort((x, y) => x - y),
    );
    const nothing = okData(await call(back.socket, "sync", { rooms: { [room.id]: 55 } }), "sync at the end");
    assert.deepEqual(nothing.rooms[String(room.id)], { messages: [], hasMore: false });
  });

  it(
    "a socket that syncs right after connecting never misses a message (sync + live cover every seq)",
    { skip },
    async () => {
      const [sender, reader] = await users(2, "cs");
      const room = await createRoom(g1, sender, { name: uniqueName("connect-sync"), kind: "public" });
      await join(g2, reader, room.id);

      // A steady stream of messages while the reader keeps connecting.
      let lastAcked = 0;
      let stop = false;
      const streams = range(3).map(async (k) => {
        let n = 0;
        while (!stop) {
          const m = await sendRest(k % 2 ? g2 : g1, sender, room.id, `stream ${k}.${n++}`);
          lastAcked = Math.max(lastAcked, m.seq);
          await sleep(60); // ~16 sends/s per stream: under the gateways' send limit (50/s)
        }
      });
      await sleep(200);
      const checks: { label: string; from: number; seen: Set<number>; inbox: Inbox }[] = [];
      try {
        for (let i = 0; i < 16; i++) {
          const base = i % 2 ? g2 : g1;
          const from = lastAcked;
          // No waiting for the subscription: a real client syncs as soon as it is connected.
          const socket = await connectChat(base, reader.accessToken);
          sockets.push(socket);
          const inbox = new Inbox(socket, `reader#${i}`);
          const seen = new Set<number>();
          let after = from;
          for (;;) {
            const page = okData(await call(socket, "sync", { rooms: { [room.id]: after } }), "sync").rooms[
              String(room.id)
            ];
            for (const m of page.messages) seen.add(m.seq);
            if (!page.hasMore) break;
            after = page.messages[page.messages.length - 1].seq;
          }
          checks.push({ label: `reader#${i} on ${base === g1 ? "G1" : "G2"}`, from, seen, inbox });
          await sleep(30);
        }
      } finally {
        stop = true;
        await Promise.all(streams);
      }
      const last = lastAcked;
      // The last message arrives live, unless a reader's sync already had it or it came before the
      // reader connected (the stream may stop before the last readers connect or sync: nothing is
      // sent after them then).
      for (const c of checks.filter((check) => last > check.from && !check.seen.has(last)))
        await c.inbox.waitFor("message:new", (m) => m.roomId === room.id && m.seq === last, 1, 10_000);
      const missing: string[] = [];
      for (const c of checks) {
        for (const m of c.inbox.messages(room.id)) c.seen.add(m.seq);
        const gaps = range(last - c.from, c.from + 1).filter((seq) => !c.seen.has(seq));
        if (gaps.length > 0) missing.push(`${c.label}: seqs ${gaps.join(",")} neither synced nor delivered`);
      }
      assert.deepEqual(missing, [], `${last} messages in the stream`);
    },
  );

  it("an invited user's open sockets receive at once; a kicked user's stop at once", { skip }, async () => {
    const [owner, member, guest] = await users(3, "ik");
    const room = await createRoom(g1, owner, {
      name: uniqueName("private"),
      kind: "private",
      members: [member.user.id],
    });
    const ownerS = await open(g1, owner, [room.id]);
    const memberS = await open(g2, member, [room.id]);
    const guest1 = await open(g1, guest, [], "guest1");
    const guest2 = await open(g2, guest, [], "guest2");

    const before = await sendRest(g1, owner, room.id, "before the invite");
    await memberS.inbox.waitFor("message:new", (m) => m.id === before.id);

    const invite = await api(g2, "POST", `/api/rooms/${room.id}/members`, {
      token: owner.accessToken,
      body: { userId: guest.user.id },
    });
    assert.equal(invite.status, 201, invite.text);
    // No waiting for subscriptions here: the invite itself must subscribe the open sockets.
    const hello = await sendRest(g1, owner, room.id, "welcome");
    for (const g of [guest1, guest2]) {
      await g.inbox.waitFor("message:new", (m) => m.id === hello.id);
      const names = g.inbox.events
        .filter((e) => e.name === "room:member" || e.name === "message:new")
        .map((e) => `${e.name}:${e.name === "room:member" ? e.payload.action : e.payload.id}`);
      assert.deepEqual(
        names,
        ["room:member:invited", `message:new:${hello.id}`],
        `${g.inbox.label}: invited, then the message`,
      );
      assert.deepEqual(g.inbox.of("room:member")[0], { roomId: room.id, userId: guest.user.id, action: "invited" });
      assert.equal(
        g.inbox.messages(room.id).some((m) => m.id === before.id),
        false,
        "no replay of older messages",
      );
    }
    for (const m of [ownerS, memberS]) {
      await m.inbox.waitFor("room:member", (x) => x.userId === guest.user.id && x.action === "invited");
    }
    const guestSays = okData(
      await call(guest2.socket, "message:send", { roomId: room.id, body: "thanks", clientMsgId: newClientMsgId() }),
      "the guest sends",
    );
    await memberS.inbox.waitFor("message:new", (m) => m.id === guestSays.id);

    const kick = await api(g2, "DELETE", `/api/rooms/${room.id}/members/${guest.user.id}`, {
      token: owner.accessToken,
    });
    assert.equal(kick.status, 204, kick.text);
    const after = await sendRest(g1, owner, room.id, "after the kick");
    const edited = await api(g1, "PATCH", `/api/rooms/${room.id}/messages/${hello.id}`, {
      token: owner.accessToken,
      body: { body: "welcome (edited)" },
    });
    assert.equal(edited.status, 200, edited.text);
    for (const g of [guest1, guest2]) {
      await g.inbox.waitFor("room:member", (x) => x.action === "kicked");
      assert.deepEqual(
        g.inbox.of("room:member", (x) => x.action === "kicked"),
        [{ roomId: room.id, userId: guest.user.id, action: "kicked" }],
      );
    }
    await memberS.inbox.waitFor("message:new", (m) => m.id === after.id);
    await memberS.inbox.waitFor("message:updated", (m) => m.id === hello.id);
    await sleep(SETTLE_MS);
    for (const g of [guest1, guest2]) {
      assert.equal(
        g.inbox.messages(room.id).some((m) => m.id === after.id),
        false,
        `${g.inbox.label} got a message after the kick`,
      );
      assert.equal(g.inbox.of("message:updated").length, 0, `${g.inbox.label} got an edit after the kick`);
      expectAckError(
        await call(g.socket, "message:send", { roomId: room.id, body: "still here?", clientMsgId: newClientMsgId() }),
        "NOT_FOUND",
        "sending after the kick",
      );
      expectAckError(
        await call(g.socket, "typing", { roomId: room.id, typing: true }),
        "FORBIDDEN",
        "typing after the kick",
      );
    }
  });

  it("typing reaches other members on the other gateway, not the typist, and expires by itself", { skip }, async () => {
    const [typist, reader, outsider] = await users(3, "ty");
    const room = await createRoom(g1, typist, { name: uniqueName("typing"), kind: "public" });
    await join(g2, reader, room.id);
    const elsewhere = await createRoom(g1, outsider, { name: uniqueName("typing-else"), kind: "public" });
    const tab1 = await open(g1, typist, [room.id], "typist1");
    const tab2 = await open(g2, typist, [room.id], "typist2");
    const readerS = await open(g2, reader, [room.id]);
    const outsiderS = await open(g1, outsider, [elsewhere.id]);

    const ack = await call(tab1.socket, "typing", { roomId: room.id, typing: true });
    assert.deepEqual(ack, { ok: true, data: null });
    const [on] = await readerS.inbox.waitFor("typing", (x) => x.roomId === room.id && x.typing);
    const onAt = readerS.inbox.events.find((e) => e.name === "typing")!.at;
    assert.deepEqual(on, { roomId: room.id, userId: typist.user.id, typing: true });

    await readerS.inbox.waitFor("typing", (x) => x.roomId === room.id && !x.typing, 1, 10_000);
    const offAt = readerS.inbox.events.filter((e) => e.name === "typing").at(-1)!.at;
    const lasted = offAt - onAt;
    assert.ok(lasted >= 5_000 && lasted <= 7_500, `typing expired after ${lasted} ms (expected about 6 s)`);
    assert.deepEqual(readerS.inbox.of("typing"), [
      { roomId: room.id, userId: typist.user.id, typing: true },
      { roomId: room.id, userId: typist.user.id, typing: false },
    ]);
    for (const s of [tab1, tab2, outsiderS])
      assert.equal(s.inbox.of("typing").length, 0, `${s.inbox.label} saw typing`);

    expectAckError(
      await call(outsiderS.socket, "typing", { roomId: room.id, typing: true }),
      "FORBIDDEN",
      "typing in a room one is not in",
    );
    expectAckError(
      await call(readerS.socket, "typing", { roomId: elsewhere.id, typing: true }),
      "FORBIDDEN",
      "typing elsewhere",
    );
    await sleep(SETTLE_MS);
    assert.equal(tab1.inbox.of("typing").length, 0, "a refused typing flag went out");
  });

  it("the send rate limit answers RATE_LIMITED with retryAfter; the accepted sends are stored", { skip }, async () => {
    const [sender, reader] = await users(2, "rl");
    const room = await createRoom(g1, sender, { name: uniqueName("rate"), kind: "public" });
    await join(g2, reader, room.id);
    const s = await open(g1, sender, [room.id]);
    const r = await open(g2, reader, [room.id]);
    const ids = range(80).map((i) => newClientMsgId(`rl${i}`));
    const acks = await Promise.all(
      ids.map((clientMsgId, i) => call(s.socket, "message:send", { roomId: room.id, body: `burst ${i}`, clientMsgId })),
    );
    const accepted = ids.filter((_, i) => acks[i].ok);
    const limited = acks.filter((a) => !a.ok);
    for (const a of limited) {
      const error = expectAckError(a, "RATE_LIMITED", "a limited send");
      assert.ok(Number.isInteger(error.retryAfter) && error.retryAfter! >= 1, `retryAfter: ${JSON.stringify(error)}`);
    }
    assert.ok(accepted.length >= 50 && accepted.length < 80, `accepted ${accepted.length} of 80`);
    assert.ok(limited.length > 0, "nothing was rate limited");

    const history = await fullHistory(g2, reader, room.id);
    assert.deepEqual(
      history.map((m) => m.clientMsgId).sort(),
      [...accepted].sort(),
      "exactly the accepted sends are stored",
    );
    assert.deepEqual(
      history.map((m) => m.seq),
      range(accepted.length),
    );
    await r.inbox.waitFor("message:new", (m) => m.roomId === room.id, accepted.length);
    assert.ok(s.socket.connected, "the limited socket stays connected");
    await sleep(1_100);
    okData(
      await call(s.socket, "message:send", { roomId: room.id, body: "after waiting", clientMsgId: newClientMsgId() }),
      "a send after retryAfter",
    );
  });

  it(
    "presence: online, offline after the grace period, and offline when a gateway dies",
    { skip, timeout: 120_000 },
    async () => {
      const [x, y] = await users(2, "pr");
      const room = await createRoom(g1, y, { name: uniqueName("presence"), kind: "public" });
      await join(g2, x, room.id);
      const yS = await open(g1, y, [room.id]);
      const presenceOfX = () => yS.inbox.of("presence", (p) => p.userId === x.user.id);

      // X comes online on G2.
      const x1 = await connectChat(g2, x.accessToken, { rooms: [room.id] });
      await yS.inbox.waitFor("presence", (p) => p.userId === x.user.id && p.status === "online");
      assert.equal((await api(g1, "GET", `/api/users/${x.user.id}`, { token: y.accessToken })).body.status, "online");

      // A second tab on G1: closing the first one (on G2) is no reason to go offline.
      const xTab = await connectChat(g1, x.accessToken, { rooms: [room.id] });
      x1.close();
      await sleep(6_500);
      assert.deepEqual(
        presenceOfX().map((p) => p.status),
        ["online"],
        "X still has a socket on G1: no offline",
      );

      // X leaves: offline only after the grace period.
      const closedAt = Date.now();
      xTab.close();
      await yS.inbox.waitFor("presence", (p) => p.userId === x.user.id && p.status === "offline", 1, 15_000);
      const offlineAfter =
        yS.inbox.events.filter((e) => e.name === "presence" && e.payload.userId === x.user.id).at(-1)!.at - closedAt;
      assert.ok(
        offlineAfter >= 4_500 && offlineAfter <= 9_000,
        `offline ${offlineAfter} ms after the last socket closed`,
      );
      assert.deepEqual(
        presenceOfX().map((p) => p.status),
        ["online", "offline"],
      );
      assert.equal((await api(g1, "GET", `/api/users/${x.user.id}`, { token: y.accessToken })).body.status, "offline");

      // X is back on G2, then G2 dies without a word.
      const x2 = await connectChat(g2, x.accessToken, { rooms: [room.id] });
      sockets.push(x2);
      await yS.inbox.waitFor("presence", (p) => p.userId === x.user.id && p.status === "online", 2);
      // The users service ignores node losses during its first 15 s (the registry is still filling).
      const warm = servicesStartedAt + 16_000 - Date.now();
      if (warm > 0) await sleep(warm);
      const killedAt = Date.now();
      assert.ok(G2.kill("SIGKILL"), "G2 was already gone");
      await G2.exited;
      await yS.inbox.waitFor("presence", (p) => p.userId === x.user.id && p.status === "offline", 2, 30_000);
      const tookMs = Date.now() - killedAt;
      assert.ok(tookMs <= 25_000, `offline ${tookMs} ms after G2 died`);
      assert.deepEqual(
        presenceOfX().map((p) => p.status),
        ["online", "offline", "online", "offline"],
      );
      const res = await api(g1, "GET", `/api/users/${x.user.id}`, { token: y.accessToken });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.status, "offline");
      assert.ok(yS.socket.connected, "G1's sockets are unaffected");
      const health = await api(g1, "GET", "/api/health");
      assert.equal(health.status, 200, health.text);
    },
  );
});
