/**
 * The audit log records what the system does (on the embedded store and on MongoDB/FerretDB):
 * every kind of event the system produces — accounts, auth refusals, rooms, members, messages,
 * reactions, HTTP access records, socket connects — exactly once, with its data and request id.
 * The scenario: test/support/log-stores.ts.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { AppEvent } from "../../src/contracts/objects.js";
import { onEachLogStore, secretSuffix, WAIT_MS } from "../support/log-stores.js";
import { eventually } from "../support/wait.js";

onEachLogStore("audit log: recording", (log) => {
  it("the system's actions: accounts, auth refusals, rooms, members, messages, reactions, sockets", () =>
    log.runActivity());

  it("every event is recorded exactly once, with its data", async () => {
    const { accounts, rids, sessions, room, message, expectEvents } = log;
    const { root, ann, bob, carol, dave, mallory } = accounts;
    const user = (id: number) => (e: AppEvent) => e.userId === id;

    for (const [name, acc] of Object.entries(accounts)) {
      const [reg] = await expectEvents("user.registered", user(acc.user.id), 1, name);
      assert.deepEqual(reg.data, { userId: acc.user.id, username: name, admin: false });
    }
    // Registration opens a session too: ann has two logins, everyone else one (bob: two).
    const annLogins = await expectEvents("auth.login", user(ann.user.id), 2, "ann");
    assert.deepEqual(annLogins.map((e) => e.data.sessionId).sort(), [sessions.annRegister, sessions.annLogin].sort());
    assert.ok(
      annLogins.some((e) => e.requestId === rids.login),
      "the login's request id",
    );
    await expectEvents("auth.login", user(root.user.id), 2, "root (registration, and the login after the restart)");
    const [promoted] = await expectEvents("user.admin_changed", user(root.user.id), 1, "root");
    assert.deepEqual(promoted.data, { userId: root.user.id, username: "root", admin: true, by: "NOCHAT_ADMINS" });
    await expectEvents("auth.login", user(bob.user.id), 2, "bob");

    const [failed] = await expectEvents("auth.login_failed", user(ann.user.id), 1, "ann's wrong password");
    assert.equal(typeof failed.data.usernameTag, "string");
    const { usernameTag: _annTag, ...annFailed } = failed.data;
    assert.deepEqual(annFailed, { username: "ann", reason: "bad_password", userId: ann.user.id });
    assert.equal(failed.requestId, rids.wrong);
    // An unknown name is whatever was typed (perhaps a password): only its keyed hash is kept.
    const [unknown] = await expectEvents(
      "auth.login_failed",
      (e) => e.data.reason === "unknown_user",
      1,
      "unknown user",
    );
    assert.equal(unknown.data.username, null);
    assert.match(String(unknown.data.usernameTag), /^[0-9a-f]{16}$/);
    assert.ok(!JSON.stringify(unknown).includes(`nobody_${secretSuffix}`), "the typed name is not stored");
    await expectEvents("auth.login_failed", user(mallory.user.id), 5, "mallory's 5 failures");
    const [throttled] = await expectEvents("auth.throttled", (e) => e.data.username === "mallory", 1, "mallory");
    assert.ok(Number(throttled.data.retryAfter) > 0);

    const [invalid] = await expectEvents(
      "auth.token_refused",
      (e) => e.data.reason === "invalid_token",
      1,
      "the bad token",
    );
    assert.deepEqual(invalid.data, { reason: "invalid_token", userId: null });
    assert.equal(invalid.requestId, rids.badToken);
    await expectEvents(
      "auth.token_refused",
      (e) => e.data.reason === "session_ended" && e.userId === ann.user.id,
      1,
      "the logged-out token",
    );
    const [refreshed] = await expectEvents("auth.refreshed", user(ann.user.id), 1, "ann");
    assert.equal(refreshed.data.sessionId, sessions.annLogin);
    const [logout] = await expectEvents("auth.logout", user(ann.user.id), 1, "ann");
    assert.equal(logout.data.sessionId, sessions.annLogin);
    await expectEvents("auth.refreshed", user(bob.user.id), 1, "bob");
    const [revoked] = await expectEvents("auth.session_revoked", user(bob.user.id), 1, "bob's reused token");
    assert.deepEqual(revoked.data, { userId: bob.user.id, sessionId: sessions.bob, reason: "reuse" });
    const [updated] = await expectEvents("user.updated", user(ann.user.id), 1, "ann");
    assert.deepEqual(updated.data.fields, ["displayName"]);

    const inRoom = (e: AppEvent) => e.roomId === room.id;
    const [roomCreated] = await expectEvents("room.created", inRoom, 1, "lobby");
    assert.deepEqual(roomCreated.data, {
      roomId: room.id,
      userId: ann.user.id,
      kind: "public",
      name: "lobby",
      memberIds: [bob.user.id],
    });
    assert.equal(roomCreated.requestId, rids.createRoom);
    const members = await expectEvents("room.member_changed", inRoom, 4, "lobby");
    assert.deepEqual(
      members
        .map((e) => [e.data.action, e.data.userId, e.data.byUserId])
        .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      [
        ["invited", bob.user.id, ann.user.id],
        ["joined", carol.user.id, carol.user.id],
        ["kicked", carol.user.id, ann.user.id],
        ["left", bob.user.id, bob.user.id],
      ],
    );
    await expectEvents("room.updated", inRoom, 1, "lobby");

    const ofMessage = (e: AppEvent) => e.data.messageId === message.id;
    const [createdMsg] = await expectEvents("message.created", ofMessage, 1, "the message");
    assert.equal(createdMsg.requestId, rids.send);
    assert.equal(createdMsg.userId, ann.user.id);
    assert.equal(createdMsg.roomId, room.id);
    assert.equal("body" in createdMsg.data, false, "bodies stay in chat");
    await expectEvents("message.edited", ofMessage, 1, "the message");
    await expectEvents("reaction.toggled", ofMessage, 1, "the message");
    const [deleted] = await expectEvents("message.deleted", ofMessage, 1, "the message");
    assert.equal(deleted.data.authorId, ann.user.id);

    const [connected] = await expectEvents("socket.connected", user(dave.user.id), 1, "dave's socket");
    const [gone] = await expectEvents("socket.disconnected", user(dave.user.id), 1, "dave's socket");
    assert.equal(gone.data.socketId, connected.data.socketId);
    assert.equal(gone.data.reason, "client namespace disconnect");
    assert.ok(Date.parse(gone.ts) >= Date.parse(connected.ts));
  });

  it("http.access: one record per request with method, route, status, duration, user and request id", async () => {
    const { accounts, rids, ofType } = log;
    const { ann } = accounts;
    const access = async (rid: string): Promise<AppEvent> => {
      await eventually(
        `the access record of ${rid}`,
        async () => (await ofType("http.access", (e) => e.requestId === rid)).length > 0,
        { timeoutMs: WAIT_MS, intervalMs: 250 },
      );
      const found = await ofType("http.access", (e) => e.requestId === rid);
      assert.equal(found.length, 1, JSON.stringify(found));
      const [record] = found;
      assert.equal(typeof record.data.durationMs, "number");
      assert.ok(Number(record.data.durationMs) >= 0 && Number(record.data.durationMs) < 60_000);
      assert.deepEqual(Object.keys(record.data).sort(), ["durationMs", "method", "route", "status", "userId"]);
      return record;
    };
    const pick = (e: AppEvent) => ({ ...e.data, durationMs: undefined, userId: e.userId });

    assert.deepEqual(pick(await access(rids.createRoom)), {
      method: "POST",
      route: "/api/rooms",
      status: 201,
      durationMs: undefined,
      userId: ann.user.id,
    });
    assert.deepEqual(pick(await access(rids.send)), {
      method: "POST",
      route: "/api/rooms/:roomId/messages",
      status: 201,
      durationMs: undefined,
      userId: ann.user.id,
    });
    assert.deepEqual(pick(await access(rids.wrong)), {
      method: "POST",
      route: "/api/auth/login",
      status: 401,
      durationMs: undefined,
      userId: null,
    });
    assert.deepEqual(pick(await access(rids.badToken)), {
      method: "GET",
      route: "/api/users/me",
      status: 401,
      durationMs: undefined,
      userId: null,
    });
    // The unknown route: recorded with its path (no query string), never with a body or header.
    const nowhere = await ofType("http.access", (e) => e.data.route === `/api/nowhere-${secretSuffix}`);
    assert.equal(nowhere.length, 1);
    assert.equal(nowhere[0].data.status, 404);
    assert.equal(nowhere[0].data.method, "GET");
  });
});
