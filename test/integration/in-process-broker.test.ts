/**
 * The real users, auth, chat, notify and log services in one in-process broker (no transporter),
 * on SQLite and the embedded log store in a temp DATA_DIR, with the permission middleware: the
 * services working together through the broker, their outboxes and the log (an integration test,
 * though it needs no server).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { Errors, ServiceBroker } from "moleculer";
import AuthService from "../../services/auth.service.js";
import ChatService from "../../services/chat.service.js";
import LogService from "../../services/log.service.js";
import NotifyService from "../../services/notify.service.js";
import UsersService from "../../services/users.service.js";
import type { ResolvedToken } from "../../src/contracts/actions.js";
import type { AppEvent, AuthResult, Message, Notification, Principal, User } from "../../src/contracts/objects.js";
import { AppError, toErrorBody } from "../../src/errors.js";
import type { WithOutbox } from "../../src/infra/outbox-mixin.js";
import { OPERATOR, PermissionMiddleware } from "../../src/infra/permissions.js";
import { rejectsWith } from "../support/errors.js";
import { eventually } from "../support/wait.js";

/** The outbox relays deliver within milliseconds here: poll often. */
const POLL = { timeoutMs: 5_000, intervalMs: 50 };

describe("services in one broker (SQLite + embedded log store)", () => {
  let dataDir: string;
  let broker: ServiceBroker;
  let alice: AuthResult;
  let alicePrincipal: Principal;
  let bossPrincipal: Principal;
  let bobPrincipal: Principal;

  const as = (user: Principal) => ({ meta: { user } });
  const principalOf = async (token: string): Promise<Principal> =>
    (await broker.call<ResolvedToken, { token: string }>("auth.resolveToken", { token })).principal;

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-broker-"));
    broker = new ServiceBroker({
      nodeID: "unit-broker",
      transporter: null,
      logger: false,
      validator: true,
      middlewares: [PermissionMiddleware],
    });
    for (const schema of [UsersService, AuthService, ChatService, NotifyService, LogService]) {
      // Each service's database and the admin list come from its settings, not the environment.
      broker.createService({ ...schema, settings: { ...schema.settings, dataDir, admins: ["boss"] } });
    }
    await broker.start();
  });

  after(async () => {
    await broker?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("auth.register creates the account and a working session; users.me answers for it", async () => {
    alice = await broker.call<AuthResult, object>("auth.register", {
      username: "Alice",
      password: "correct horse battery",
      displayName: "Alice A.",
    });
    assert.equal(alice.user.username, "alice");
    assert.equal(alice.user.displayName, "Alice A.");
    assert.equal("roles" in alice.user, false, "no roles in the public user");
    assert.equal(typeof alice.accessToken, "string");
    assert.equal(typeof alice.refreshToken, "string");
    assert.equal(alice.expiresIn, 900);

    alicePrincipal = await principalOf(alice.accessToken);
    assert.equal(alicePrincipal.id, alice.user.id);
    assert.equal(alicePrincipal.username, "alice");
    assert.deepEqual(alicePrincipal.roles, []);

    const me = await broker.call<User, object>("users.me", {}, as(alicePrincipal));
    assert.deepEqual(me, alice.user);
  });

  it("registering a taken username (any case) → CONFLICT", async () => {
    await rejectsWith(broker.call("auth.register", { username: "ALICE", password: "another password" }), "CONFLICT");
  });

  it("login with the password; a wrong one → UNAUTHORIZED", async () => {
    const ok = await broker.call<AuthResult, object>("auth.login", {
      username: "alice",
      password: "correct horse battery",
    });
    assert.equal(ok.user.id, alice.user.id);
    await rejectsWith(broker.call("auth.login", { username: "alice", password: "wrong password" }), "UNAUTHORIZED");
  });

  it('an auth: "required" action without meta.user → UNAUTHORIZED', async () => {
    for (const [action, params] of [
      ["users.me", {}],
      ["chat.createRoom", { name: "x", kind: "public" }],
      ["notify.list", {}],
      ["auth.logout", {}],
    ] as const) {
      const err = await rejectsWith(broker.call(action, params), "UNAUTHORIZED", action);
      assert.ok(err instanceof AppError, action);
    }
  });

  it("log.query needs the admin role → FORBIDDEN without it, UNAUTHORIZED without a user", async () => {
    const forbidden = await rejectsWith(broker.call("log.query", {}, as(alicePrincipal)), "FORBIDDEN");
    assert.equal(toErrorBody(forbidden).status, 403);
    await rejectsWith(broker.call("log.query", {}), "UNAUTHORIZED");
  });

  it("users.create with a bad username → VALIDATION_ERROR naming the field", async () => {
    const err = await rejectsWith(broker.call("users.create", { username: "bad name!" }), "VALIDATION_ERROR");
    assert.ok(err instanceof Errors.ValidationError);
    const { status, body } = toErrorBody(err);
    assert.equal(status, 422);
    assert.deepEqual(
      body.fields?.map((f) => f.field),
      ["username"],
    );
    assert.match(body.fields![0].message, /may contain only/);

    const short = await rejectsWith(
      broker.call("auth.register", { username: "ab", password: "short" }),
      "VALIDATION_ERROR",
    );
    assert.deepEqual(
      toErrorBody(short)
        .body.fields?.map((f) => f.field)
        .sort(),
      ["password", "username"],
    );
  });

  it("chat: createRoom, send (idempotent on clientMsgId), history; non-members: 403 in a public room, 404 in a private one", async () => {
    const { id: roomId } = await broker.call<{ id: number }, object>(
      "chat.createRoom",
      { name: "  general  ", kind: "public", topic: "talk" },
      as(alicePrincipal),
    );
    assert.ok(Number.isInteger(roomId) && roomId > 0);

    const first = await broker.call<Message, object>(
      "chat.send",
      { roomId, body: " hello ", clientMsgId: "client-0001" },
      as(alicePrincipal),
    );
    assert.equal(first.seq, 1);
    assert.equal(first.body, "hello", "bodies are trimmed");
    assert.equal(first.userId, alice.user.id);
    const second = await broker.call<Message, object>(
      "chat.send",
      { roomId: String(roomId), body: "second", clientMsgId: "client-0002", replyTo: first.id },
      as(alicePrincipal),
    );
    assert.equal(second.seq, 2);
    assert.equal(second.replyTo, first.id);
    const retry = await broker.call<Message, object>(
      "chat.send",
      { roomId, body: "hello again", clientMsgId: "client-0001" },
      as(alicePrincipal),
    );
    assert.deepEqual(retry, first, "a retried clientMsgId answers with the original");

    const { messages } = await broker.call<{ messages: Message[] }, object>(
      "chat.history",
      { roomId },
      as(alicePrincipal),
    );
    assert.deepEqual(
      messages.map((m) => [m.seq, m.body]),
      [
        [1, "hello"],
        [2, "second"],
      ],
    );
    const after1 = await broker.call<{ messages: Message[] }, object>(
      "chat.history",
      { roomId, after: "1" },
      as(alicePrincipal),
    );
    assert.deepEqual(
      after1.messages.map((m) => m.seq),
      [2],
    );

    const bob = await broker.call<AuthResult, object>("auth.register", { username: "bob", password: "bobs password" });
    bobPrincipal = await principalOf(bob.accessToken);
    // A public room is visible to everyone, but reading and writing it need membership (403);
    // a private room does not exist for non-members (404).
    const { id: secretId } = await broker.call<{ id: number }, object>(
      "chat.createRoom",
      { name: "secret", kind: "private" },
      as(alicePrincipal),
    );
    for (const [room, type] of [
      [roomId, "FORBIDDEN"],
      [secretId, "NOT_FOUND"],
    ] as const) {
      for (const [action, params] of [
        ["chat.history", { roomId: room }],
        ["chat.send", { roomId: room, body: "let me in", clientMsgId: `bob-0000${room}` }],
      ] as const) {
        await rejectsWith(
          broker.call(action, params, as(bobPrincipal)),
          type,
          `${action} by a non-member of room ${room}`,
        );
      }
    }

    await rejectsWith(
      broker.call("chat.send", { roomId, body: "x".repeat(4001), clientMsgId: "client-0003" }, as(alicePrincipal)),
      "PAYLOAD_TOO_LARGE",
    );
    await rejectsWith(
      broker.call("chat.send", { roomId, body: "x", clientMsgId: "no spaces allowed" }, as(alicePrincipal)),
      "VALIDATION_ERROR",
    );
  });

  it("notify.list and markSeen answer for the caller", async () => {
    const list = async (who: Principal, unseen = false): Promise<Notification[]> =>
      (await broker.call<{ notifications: Notification[] }, object>("notify.list", { unseen }, as(who))).notifications;
    // alice invites bob to a room and mentions him there: two notifications for bob, none for alice.
    const { id: roomId } = await broker.call<{ id: number }, object>(
      "chat.createRoom",
      { name: "notified", kind: "public" },
      as(alicePrincipal),
    );
    await broker.call("chat.invite", { id: roomId, userId: bobPrincipal.id }, as(alicePrincipal));
    const mention = await broker.call<Message, object>(
      "chat.send",
      { roomId, body: "welcome, @bob", clientMsgId: "client-0004" },
      as(alicePrincipal),
    );
    const bobs = await eventually(
      "bob's invite and mention",
      async () => {
        const notifications = await list(bobPrincipal);
        return notifications.length === 2 && notifications;
      },
      POLL,
    );
    assert.deepEqual(
      bobs.map((n) => [n.kind, n.roomId, n.messageId, n.fromUserId, n.seen]),
      [
        ["mention", roomId, mention.id, alice.user.id, false],
        ["invite", roomId, null, alice.user.id, false],
      ],
      "bob's, newest first",
    );
    assert.deepEqual(await list(alicePrincipal), [], "the sender is told nothing");

    // markSeen touches the caller's own notifications only, even when given another user's ids.
    await broker.call("notify.markSeen", { all: true }, as(alicePrincipal));
    await broker.call("notify.markSeen", { ids: bobs.map((n) => n.id) }, as(alicePrincipal));
    assert.equal((await list(bobPrincipal, true)).length, 2, "bob's are still unseen");
    await broker.call("notify.markSeen", { ids: [bobs[1].id] }, as(bobPrincipal));
    assert.deepEqual(
      (await list(bobPrincipal, true)).map((n) => n.id),
      [bobs[0].id],
      "only the invite is seen",
    );
    await broker.call("notify.markSeen", { all: true }, as(bobPrincipal));
    assert.deepEqual(await list(bobPrincipal, true), []);
    assert.ok(
      (await list(bobPrincipal)).every((n) => n.seen),
      "all of bob's seen, none gone",
    );
  });

  it("registering a NOCHAT_ADMINS name grants nothing; an operator's users.setAdmin does", async () => {
    const registered = await broker.call<AuthResult, object>("auth.register", {
      username: "Boss",
      password: "the boss password",
    });
    assert.deepEqual((await principalOf(registered.accessToken)).roles, []);
    await broker.call("users.setAdmin", { username: "boss", admin: true }, { meta: { user: OPERATOR } });
    const boss = await broker.call<AuthResult, object>("auth.login", {
      username: "boss",
      password: "the boss password",
    });
    bossPrincipal = await principalOf(boss.accessToken);
    assert.deepEqual(bossPrincipal.roles, ["admin"]);
    const me = await broker.call<User, object>("users.me", {}, as(bossPrincipal));
    assert.deepEqual(me.roles, ["admin"], "users.me shows an admin their roles");
  });

  it("log records user.registered (through users' outbox); an admin queries it", async () => {
    const events = await eventually(
      "every user.registered in the log",
      async () => {
        const { events } = await broker.call<{ events: AppEvent[] }, object>(
          "log.query",
          { type: "user.registered" },
          as(bossPrincipal),
        );
        return events.length >= 3 && events;
      },
      POLL,
    );
    const created = events.filter((e) => e.type === "user.registered");
    assert.equal(created.length, events.length, "the type filter holds");
    assert.deepEqual(created.map((e) => e.data.username).sort(), ["alice", "bob", "boss"], "each exactly once");
    const aliceEvent = created.find((e) => e.userId === alice.user.id)!;
    assert.deepEqual(aliceEvent.data, { userId: alice.user.id, username: "alice", admin: false });
    assert.equal(created.find((e) => e.data.username === "boss")?.data.admin, false);
    assert.equal(aliceEvent.nodeId, "unit-broker");
    assert.ok(Math.abs(Date.parse(aliceEvent.ts) - Date.now()) < 60_000);
    // Newest first.
    const times = events.map((e) => Date.parse(e.ts));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => b - a),
    );

    const { events: byUser } = await broker.call<{ events: AppEvent[] }, object>(
      "log.query",
      { userId: alice.user.id },
      as(bossPrincipal),
    );
    assert.ok(byUser.length >= 1 && byUser.every((e) => e.userId === alice.user.id));
    // Nothing is left behind in the producers' outboxes once delivered.
    await eventually(
      "empty outboxes",
      async () => {
        const backlogs = await Promise.all(
          ["users", "auth", "chat"].map((name) =>
            (broker.getLocalService(name) as unknown as WithOutbox).relay.backlog(),
          ),
        );
        return backlogs.every((n) => n === 0);
      },
      POLL,
    );
  });

  it("logout ends the session: its token no longer resolves, and the log records the revocation", async () => {
    const session = await broker.call<AuthResult, object>("auth.login", {
      username: "alice",
      password: "correct horse battery",
    });
    const principal = await principalOf(session.accessToken);
    await broker.call("auth.logout", {}, as(principal));
    await rejectsWith(principalOf(session.accessToken), "UNAUTHORIZED");
    // The first session is still alive.
    assert.equal((await principalOf(alice.accessToken)).id, alice.user.id);

    const logout = await eventually(
      "the auth.logout event",
      async () => {
        const { events } = await broker.call<{ events: AppEvent[] }, object>(
          "log.query",
          { type: "auth.logout" },
          as(bossPrincipal),
        );
        return events.find((e) => e.data.sessionId === principal.sessionId);
      },
      POLL,
    );
    assert.equal(logout.userId, alice.user.id);
  });
});
