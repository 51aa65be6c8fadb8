/**
 * A model-based property test against one embedded node: fast-check generates users (3–5), rooms
 * (public/private, created by random users) and ~30 actions (send, join, leave, invite, kick,
 * history, sync, react, reconnect), runs them over sockets and REST one after another, and checks
 * every answer against a model of the memberships. After each run:
 *   - no leak: every message:new / message:updated a socket received belongs to a room its user
 *     was a member of at that moment;
 *   - delivery: every connected member got each new message exactly once;
 *   - non-members are refused (public room → 403/FORBIDDEN, private room → 404/NOT_FOUND) on
 *     history, sync, send and reactions;
 *   - members' history and sync return gap-free seqs equal to the model's.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import type { ErrorCode } from "../../src/contracts/errors.js";
import type { Message, MemberRole, RoomKind } from "../../src/contracts/objects.js";
import { api, register, uniqueName, type Account } from "../support/accounts-helpers.js";
import { newClientMsgId, range } from "../support/chat-helpers.js";
import { expectAckError, expectError } from "../support/errors.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { freePort } from "../support/servers.js";
import { Inbox, call, connectChat, okData, type ChatSocket, waitSubscribed } from "../support/sockets.js";
import { sleep } from "../support/wait.js";

const NUM_RUNS = Number(process.env.MODEL_RUNS) || 15;
const DELIVERY_TIMEOUT_MS = 3_000;
/** After the expected deliveries arrived: how long a leak to a non-member would have to show up. */
const SETTLE_MS = 25;
const EMOJIS = ["👍", "❤️", "😂", "🎉"];

type Action =
  | { t: "send"; u: number; r: number; rest: boolean }
  | { t: "join"; u: number; r: number }
  | { t: "leave"; u: number; r: number }
  | { t: "invite"; u: number; r: number; target: number }
  | { t: "kick"; u: number; r: number; target: number }
  | { t: "history"; u: number; r: number }
  | { t: "sync"; u: number; r: number; from: number }
  | { t: "react"; u: number; r: number; pick: number; emoji: number; rest: boolean }
  | { t: "reconnect"; u: number };

interface Scenario {
  users: number;
  rooms: { creator: number; kind: "public" | "private"; members: number[] }[];
  actions: Action[];
}

const who = fc.nat(9);
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant("send" as const), u: who, r: who, rest: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("join" as const), u: who, r: who }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("leave" as const), u: who, r: who }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("invite" as const), u: who, r: who, target: who }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("kick" as const), u: who, r: who, target: who }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("history" as const), u: who, r: who }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("sync" as const), u: who, r: who, from: fc.nat(100) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("react" as const),
      u: who,
      r: who,
      pick: fc.nat(50),
      emoji: fc.nat(EMOJIS.length - 1),
      rest: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("reconnect" as const), u: who }) },
);

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  users: fc.integer({ min: 3, max: 5 }),
  rooms: fc.array(
    fc.record({
      creator: who,
      kind: fc.constantFrom("public" as const, "private" as const),
      members: fc.array(who, { maxLength: 3 }),
    }),
    {
      minLength: 2,
      maxLength: 3,
    },
  ),
  actions: fc.array(actionArb, { minLength: 25, maxLength: 35 }),
});

interface ModelUser {
  account: Account;
  socket: ChatSocket;
  /** What the current socket received. */
  inbox: Inbox;
  /** Every socket's inbox (one more after each reconnect); each event tagged with the action it arrived during. */
  inboxes: Inbox[];
}

interface ModelRoom {
  id: number;
  kind: RoomKind;
  members: Map<number, MemberRole>;
  messages: Message[];
  /** messageId → emoji → user indexes, in the order they reacted. */
  reactions: Map<number, Map<string, number[]>>;
}

describe("chat model: random users, rooms and actions never leak and never lose (embedded node)", () => {
  /** What the runs exercised: "<action> ok|refused" → count, and deliveries checked. */
  const stats = new Map<string, number>();
  const count = (key: string, n = 1) => stats.set(key, (stats.get(key) ?? 0) + n);
  let node: NodeHandle;
  let base = "";

  before(async () => {
    const port = await freePort();
    node = await startNode({ name: "chat-model", env: { PORT: String(port) }, ready: { http: port } });
    base = `http://127.0.0.1:${port}`;
  });
  after(() => node?.stop());

  async function runScenario(scn: Scenario): Promise<void> {
    let current = -1; // the action being executed
    const log: string[] = [];
    const users: ModelUser[] = [];
    const accounts = await Promise.all(range(scn.users).map((i) => register(base, uniqueName(`mdl${i}`))));
    const inboxOf = (socket: ChatSocket, label: string) => new Inbox(socket, label, () => current);
    for (const account of accounts) {
      const socket = await connectChat(base, account.accessToken);
      const inbox = inboxOf(socket, account.user.username);
      users.push({ account, socket, inbox, inboxes: [inbox] });
    }
    const rooms: ModelRoom[] = [];
    /** messageId → the users who were members when it was sent. */
    const sentTo = new Map<number, Set<number>>();
    /** messageId → for each reaction change: the action index and who were members then. */
    const updatedTo = new Map<number, { action: number; members: Set<number> }[]>();
    const uid = (i: number) => users[i].account.user.id;

    try {
      for (const spec of scn.rooms) {
        const creator = spec.creator % scn.users;
        const initial = [...new Set(spec.members.map((m) => m % scn.users))].filter((m) => m !== creator);
        const res = await api(base, "POST", "/api/rooms", {
          token: users[creator].account.accessToken,
          body: { name: uniqueName("room"), kind: spec.kind, members: initial.map(uid) },
        });
        assert.equal(res.status, 201, res.text);
        assert.equal(res.body.memberCount, initial.length + 1);
        const members = new Map<number, MemberRole>([[creator, "owner"]]);
        for (const m of initial) members.set(m, "member");
        rooms.push({ id: res.body.id, kind: spec.kind, members, messages: [], reactions: new Map() });
        log.push(
          `room ${rooms.length - 1} (#${res.body.id}, ${spec.kind}) by u${creator} with ${JSON.stringify(initial)}`,
        );
      }

      /** How a non-member is refused: a public room exists for them, a private one does not. */
      const refusal = (room: ModelRoom): { status: number; code: ErrorCode } =>
        room.kind === "public" ? { status: 403, code: "FORBIDDEN" } : { status: 404, code: "NOT_FOUND" };

      for (const [i, action] of scn.actions.entries()) {
        current = i;
        const u = "u" in action ? action.u % scn.users : 0;
        const user = users[u];
        const token = user.account.accessToken;
        const room = "r" in action ? rooms[action.r % rooms.length] : rooms[0];
        const r = rooms.indexOf(room);
        const member = room.members.has(u);
        const what = `#${i} ${JSON.stringify({ ...action, u, r })}`;
        log.push(what);

        switch (action.t) {
          case "send": {
            const clientMsgId = newClientMsgId(`m${i}`);
            const body = `message ${i} from u${u}`;
            let message: Message;
            if (action.rest) {
              const res = await api(base, "POST", `/api/rooms/${room.id}/messages`, {
                token,
                body: { body, clientMsgId },
              });
              if (!member) {
                const { status, code } = refusal(room);
                expectError(res, status, code, `${what}: a non-member's send`);
                count("send refused");
                break;
              }
              assert.equal(res.status, 201, `${what}: a member's send failed: ${res.text}`);
              message = res.body;
            } else {
              let ack = await call(user.socket, "message:send", { roomId: room.id, body, clientMsgId });
              if (!ack.ok && ack.error.code === "RATE_LIMITED") {
                await sleep((ack.error.retryAfter ?? 1) * 1000 + 50);
                ack = await call(user.socket, "message:send", { roomId: room.id, body, clientMsgId });
              }
              if (!member) {
                expectAckError(ack, refusal(room).code, `${what}: a non-member's send`);
                count("send refused");
                break;
              }
              message = okData(ack, `${what}: a member's send`);
            }
            count("send ok");
            count("deliveries checked", room.members.size);
            assert.equal(message.seq, room.messages.length + 1, `${what}: the next seq`);
            room.messages.push(message);
            sentTo.set(message.id, new Set(room.members.keys()));
            for (const m of room.members.keys()) {
              await users[m].inbox.waitFor("message:new", (x) => x.id === message.id, 1, DELIVERY_TIMEOUT_MS);
            }
            await sleep(SETTLE_MS);
            break;
          }

          case "join": {
            const res = await api(base, "POST", `/api/rooms/${room.id}/join`, { token });
            if (room.kind === "public") {
              assert.equal(res.status, 200, `${what}: ${res.text}`);
              if (!member) room.members.set(u, "member");
              count(member ? "join again" : "join ok");
              assert.equal(res.body.role, room.members.get(u), what);
            } else {
              expectError(res, 403, "FORBIDDEN", what);
              count("join refused");
            }
            break;
          }

          case "leave": {
            const res = await api(base, "POST", `/api/rooms/${room.id}/leave`, { token });
            if (!member) {
              const { status, code } = refusal(room);
              expectError(res, status, code, what);
              count("leave refused (non-member)");
            } else {
              assert.equal(res.status, 204, `${what}: ${res.text}`);
              room.members.delete(u);
              count("leave ok");
            }
            break;
          }

          case "invite": {
            const target = action.target % scn.users;
            const res = await api(base, "POST", `/api/rooms/${room.id}/members`, {
              token,
              body: { userId: uid(target) },
            });
            const role = room.members.get(u);
            if (!member) {
              const { status, code } = refusal(room);
              expectError(res, status, code, what);
              count("invite refused (non-member)");
            } else if (room.kind === "private" && role !== "owner" && role !== "admin") {
              expectError(res, 403, "FORBIDDEN", what);
            } else if (room.members.has(target)) {
              expectError(res, 409, "CONFLICT", what);
            } else {
              assert.equal(res.status, 201, `${what}: ${res.text}`);
              room.members.set(target, "member");
              count("invite ok");
            }
            break;
          }

          case "kick": {
            const target = action.target % scn.users;
            const res = await api(base, "DELETE", `/api/rooms/${room.id}/members/${uid(target)}`, { token });
            const role = room.members.get(u);
            const targetRole = room.members.get(target);
            if (!member) {
              const { status, code } = refusal(room);
              expectError(res, status, code, what);
              count("kick refused (non-member)");
            } else if (role !== "owner" && role !== "admin") {
              expectError(res, 403, "FORBIDDEN", what);
            } else if (targetRole === undefined) {
              expectError(res, 404, "NOT_FOUND", what);
            } else if (targetRole === "owner" && role !== "owner") {
              expectError(res, 403, "FORBIDDEN", what);
            } else {
              assert.equal(res.status, 204, `${what}: ${res.text}`);
              room.members.delete(target);
              count("kick ok");
            }
            break;
          }

          case "history": {
            const res = await api(base, "GET", `/api/rooms/${room.id}/messages?after=0&limit=100`, { token });
            if (!member) {
              const { status, code } = refusal(room);
              expectError(res, status, code, what);
              count("history refused (non-member)");
            } else {
              assert.equal(res.status, 200, `${what}: ${res.text}`);
              const got: Message[] = res.body.messages;
              assert.deepEqual(
                got.map((m) => m.seq),
                range(room.messages.length),
                `${what}: gap-free history`,
              );
              count("history ok");
              assert.deepEqual(
                got.map((m) => m.id),
                room.messages.map((m) => m.id),
                what,
              );
            }
            break;
          }

          case "sync": {
            const from = room.messages.length === 0 ? 0 : action.from % (room.messages.length + 1);
            const ack = await call(user.socket, "sync", { rooms: { [room.id]: from } });
            if (!member) {
              expectAckError(ack, refusal(room).code, what);
              count("sync refused");
            } else {
              const page = okData(ack, what).rooms[String(room.id)];
              assert.deepEqual(
                page.messages.map((m) => m.seq),
                range(room.messages.length - from, from + 1),
                `${what}: gap-free sync after ${from}`,
              );
              assert.equal(page.hasMore, false, what);
              count("sync ok");
            }
            break;
          }

          case "react": {
            if (room.messages.length === 0) break;
            const message = room.messages[action.pick % room.messages.length];
            const emoji = EMOJIS[action.emoji];
            let reacted: Message;
            if (action.rest) {
              const res = await api(base, "POST", `/api/rooms/${room.id}/messages/${message.id}/reactions`, {
                token,
                body: { emoji },
              });
              if (!member) {
                const { status, code } = refusal(room);
                expectError(res, status, code, `${what}: a non-member's reaction`);
                count("react refused");
                break;
              }
              assert.equal(res.status, 200, `${what}: a member's reaction failed: ${res.text}`);
              reacted = res.body;
            } else {
              const ack = await call(user.socket, "reaction:toggle", { messageId: message.id, emoji });
              if (!member) {
                expectAckError(ack, refusal(room).code, `${what}: a non-member's reaction`);
                count("react refused");
                break;
              }
              reacted = okData(ack, `${what}: a member's reaction`);
            }
            const byEmoji = room.reactions.get(message.id) ?? new Map<string, number[]>();
            const list = byEmoji.get(emoji) ?? [];
            byEmoji.set(emoji, list.includes(u) ? list.filter((x) => x !== u) : [...list, u]);
            if (byEmoji.get(emoji)!.length === 0) byEmoji.delete(emoji);
            room.reactions.set(message.id, byEmoji);
            const expected = Object.fromEntries([...byEmoji].map(([e, us]) => [e, us.map(uid)]));
            assert.deepEqual(reacted.reactions, expected, `${what}: reactions`);
            count("react ok");
            const members = new Set(room.members.keys());
            updatedTo.set(message.id, [...(updatedTo.get(message.id) ?? []), { action: i, members }]);
            for (const m of members) {
              await users[m].inbox.waitFor(
                "message:updated",
                (x) => x.id === message.id && JSON.stringify(x.reactions) === JSON.stringify(expected),
                1,
                DELIVERY_TIMEOUT_MS,
              );
            }
            await sleep(SETTLE_MS);
            break;
          }

          case "reconnect": {
            user.socket.close();
            user.socket = await connectChat(base, token);
            user.inbox = inboxOf(user.socket, `${user.account.user.username} (reconnected)`);
            user.inboxes.push(user.inbox);
            for (const rm of rooms) if (rm.members.has(u)) await waitSubscribed(user.socket, rm.id);
            break;
          }
        }
      }

      // No leak, nothing twice.
      for (const [ui, user] of users.entries()) {
        const received = user.inboxes.flatMap((inbox) =>
          inbox.events.filter((e) => e.name === "message:new" || e.name === "message:updated"),
        );
        for (const event of received) {
          const m = event.payload as Message;
          if (event.name === "message:new") {
            const allowed = sentTo.get(m.id);
            assert.ok(allowed, `u${ui} got message:new ${m.id}, which no action of this run sent`);
            assert.ok(
              allowed.has(ui),
              `leak: u${ui} got message:new ${m.id} (room #${m.roomId}) without being a member`,
            );
          } else {
            const changes = updatedTo.get(m.id) ?? [];
            assert.ok(
              changes.some((c) => c.action <= event.tag! && c.members.has(ui)),
              `leak: u${ui} got message:updated ${m.id} (room #${m.roomId}) without being a member`,
            );
          }
        }
        const perSocketIds = user.inbox.of("message:new").map((m) => m.id);
        assert.equal(new Set(perSocketIds).size, perSocketIds.length, `u${ui} got a message twice`);
      }
    } catch (err) {
      process.stderr.write(`chat-model: failing run:\n  ${log.join("\n  ")}\n`);
      throw err;
    } finally {
      for (const user of users) user.socket.close();
    }
  }

  it(`holds for ${NUM_RUNS} random runs`, { timeout: 240_000 }, async (t) => {
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scn) => {
        await runScenario(scn);
      }),
      { numRuns: NUM_RUNS, endOnFailure: true, verbose: 1 },
    );
    t.diagnostic(`${NUM_RUNS} runs in ${Date.now() - started} ms; ${JSON.stringify(Object.fromEntries(stats))}`);
    for (const key of ["send ok", "join ok", "invite ok", "history ok", "sync ok"]) {
      assert.ok((stats.get(key) ?? 0) > 0, `the runs never exercised "${key}"`);
    }
  });
});
