/**
 * The audit log end to end, on one node per store: MongoDB (FerretDB) and the embedded file store.
 * Every kind of event the system produces is recorded exactly once (accounts, auth refusals, rooms,
 * members, messages, reactions, HTTP access records, socket connects); the admin API filters,
 * pages with `before` without gaps or duplicates, newest first, and counts per hour; only admins
 * see it; retention (LOG_RETENTION_DAYS=1) purges old events; the stored documents hold no
 * password, password hash or token.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeJwt } from "jose";
import { MongoClient } from "mongodb";
import type { AppEvent, Message, Room } from "../../src/contracts/objects.js";
import { openDocStore } from "../../src/infra/docstore.js";
import { EventLog, type EventDoc } from "../../src/log/event-log.js";
import { api, type Account, type ApiResponse } from "../support/accounts-helpers.js";
import { newClientMsgId } from "../support/chat-helpers.js";
import { expectError } from "../support/errors.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { freePort, mongoUrl, serverSkip } from "../support/servers.js";
import { connectChat } from "../support/sockets.js";
import { eventually, sleep } from "../support/wait.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const WAIT_MS = 15_000;

interface Store {
  name: string;
  /** MONGO_URL for the node (undefined: the embedded store under DATA_DIR). */
  mongoUrl?: string;
  /** Every stored document, as the store holds it (read around the service). */
  rawDocuments(dataDir: string): Promise<string>;
  /** Writes events straight into the store (the node may have to be stopped for that). */
  insert(dataDir: string, docs: EventDoc[]): Promise<void>;
  /** Whether insert() needs the node stopped (the embedded store is one process's file). */
  insertNeedsRestart: boolean;
  cleanup(): Promise<void>;
}

const secretSuffix = randomBytes(6).toString("hex");
/** Distinctive passwords, so a leak is found by a plain substring search. */
const password = (who: string): string => `Pw-${who}-${secretSuffix}-long`;

function logSuite(store: Store): void {
  let dataDir: string;
  let port: number;
  let base: string;
  let node: NodeHandle;
  const startedAt = Date.now();
  /** Every password and token this suite sent or received: none may reach the store. */
  const secrets = new Set<string>();

  const start = async (): Promise<void> => {
    node = await startNode({
      name: `log-${store.name}`,
      env: {
        PORT: String(port),
        DATA_DIR: dataDir,
        TRANSPORTER: undefined,
        DATABASE_URL: undefined,
        MONGO_URL: store.mongoUrl,
        NOCHAT_ADMINS: "root",
        // The same node id over the restart that makes root an admin.
        NODE_ID: `test-log-${store.name}-${process.pid}`,
        LOG_RETENTION_DAYS: "1",
      },
      ready: { http: port },
    });
  };

  /** A REST call whose response's X-Request-ID is kept: the access record and events carry it. */
  const call = async (method: string, urlPath: string, token?: string, body?: unknown): Promise<ApiResponse> => {
    const res = await api(base, method, urlPath, { token, body });
    for (const key of ["accessToken", "refreshToken"]) {
      if (typeof res.body?.[key] === "string") secrets.add(res.body[key]);
    }
    return res;
  };
  const requestId = (res: ApiResponse): string => {
    const id = res.headers.get("x-request-id");
    assert.ok(id, `no X-Request-ID on ${res.status} ${res.text}`);
    return id;
  };

  const accounts: Record<string, Account> = {};
  const register = async (name: string): Promise<Account> => {
    secrets.add(password(name));
    const res = await call("POST", "/api/auth/register", undefined, { username: name, password: password(name) });
    assert.equal(res.status, 201, res.text);
    accounts[name] = { ...res.body, password: password(name) };
    return accounts[name];
  };
  const admin = (): string => accounts.root.accessToken;

  /** Every event matching the query string, through `before` pages of 500. */
  const all = async (query = ""): Promise<AppEvent[]> => {
    const events: AppEvent[] = [];
    let before: string | null = null;
    for (;;) {
      const qs: string = [query, "limit=500", before ? `before=${before}` : ""].filter(Boolean).join("&");
      const res: ApiResponse = await api(base, "GET", `/api/admin/events?${qs}`, { token: admin() });
      assert.equal(res.status, 200, res.text);
      events.push(...res.body.events);
      before = res.body.nextBefore;
      if (!before) return events;
    }
  };
  const ofType = async (type: string, where: (e: AppEvent) => boolean = () => true): Promise<AppEvent[]> =>
    (await all(`type=${encodeURIComponent(type)}`)).filter(where);

  /** Waits for exactly `n` matching events (and a moment more, so a late duplicate would show). */
  async function expectEvents(
    type: string,
    where: (e: AppEvent) => boolean,
    n: number,
    what: string,
  ): Promise<AppEvent[]> {
    await eventually(`${what}: ${n} × ${type}`, async () => (await ofType(type, where)).length >= n, {
      timeoutMs: WAIT_MS,
      intervalMs: 250,
    });
    const found = await ofType(type, where);
    assert.equal(found.length, n, `${what}: ${type} × ${found.length}: ${JSON.stringify(found)}`);
    for (const e of found) assert.equal(e.nodeId, node.env.NODE_ID);
    return found;
  }

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), `nochat-log-${store.name}-`));
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    await start();
  });

  after(async () => {
    await node?.stop();
    await store.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });

  // Filled in by the first test, checked by the next ones.
  let room: Room;
  let message: Message;
  const rids: Record<string, string> = {};
  const sessions: Record<string, string> = {};

  it("the system's actions: accounts, auth refusals, rooms, members, messages, reactions, sockets", async () => {
    for (const name of ["root", "ann", "bob", "carol", "dave", "mallory"]) await register(name);
    // NOCHAT_ADMINS applies at start to accounts that exist: root is an admin after a restart.
    await node.stop();
    await start();
    const rootLogin = await call("POST", "/api/auth/login", undefined, {
      username: "root",
      password: password("root"),
    });
    assert.equal(rootLogin.status, 200, rootLogin.text);
    accounts.root = { ...rootLogin.body, password: password("root") };
    const { ann, bob, carol, dave, mallory } = accounts;
    sessions.annRegister = decodeJwt(ann.accessToken).sid as string;

    // Login, failed logins (wrong password, unknown user), throttling after 5 failures.
    const login = await call("POST", "/api/auth/login", undefined, { username: "ann", password: password("ann") });
    assert.equal(login.status, 200, login.text);
    sessions.annLogin = decodeJwt(login.body.accessToken).sid as string;
    rids.login = requestId(login);
    const wrong = await call("POST", "/api/auth/login", undefined, {
      username: "ann",
      password: "not-" + password("ann"),
    });
    secrets.add("not-" + password("ann"));
    expectError(wrong, 401, "UNAUTHORIZED");
    rids.wrong = requestId(wrong);
    expectError(
      await call("POST", "/api/auth/login", undefined, { username: `nobody_${secretSuffix}`, password: "whatever-pw" }),
      401,
      "UNAUTHORIZED",
    );
    for (let i = 0; i < 5; i++) {
      expectError(
        await call("POST", "/api/auth/login", undefined, {
          username: "mallory",
          password: `guess-${i}-${secretSuffix}`,
        }),
        401,
        "UNAUTHORIZED",
      );
      secrets.add(`guess-${i}-${secretSuffix}`);
    }
    const throttled = await call("POST", "/api/auth/login", undefined, {
      username: "mallory",
      password: password("mallory"),
    });
    expectError(throttled, 429, "RATE_LIMITED");
    assert.ok(mallory.user.id > 0);

    // A bad token; refresh; logout, then the logged-out token refused.
    const bad = await call("GET", "/api/users/me", "not-a-token");
    expectError(bad, 401, "UNAUTHORIZED");
    rids.badToken = requestId(bad);
    const refreshed = await call("POST", "/api/auth/refresh", undefined, { refreshToken: login.body.refreshToken });
    assert.equal(refreshed.status, 200, refreshed.text);
    const logout = await call("POST", "/api/auth/logout", refreshed.body.accessToken, {});
    assert.equal(logout.status, 204, logout.text);
    expectError(await call("GET", "/api/users/me", refreshed.body.accessToken), 401, "UNAUTHORIZED");
    // Refresh-token reuse revokes bob's session.
    const bobRotated = await call("POST", "/api/auth/refresh", undefined, { refreshToken: bob.refreshToken });
    assert.equal(bobRotated.status, 200, bobRotated.text);
    expectError(
      await call("POST", "/api/auth/refresh", undefined, { refreshToken: bob.refreshToken }),
      401,
      "UNAUTHORIZED",
    );
    sessions.bob = decodeJwt(bob.accessToken).sid as string;
    const bobNow = await call("POST", "/api/auth/login", undefined, { username: "bob", password: password("bob") });
    accounts.bob = { ...bobNow.body, password: password("bob") };

    const patched = await call("PATCH", "/api/users/me", ann.accessToken, { displayName: "Ann A." });
    assert.equal(patched.status, 200, patched.text);

    // A room with an invited member; join, leave, kick; a topic change.
    const created = await call("POST", "/api/rooms", ann.accessToken, {
      name: "lobby",
      kind: "public",
      members: [bob.user.id],
    });
    assert.equal(created.status, 201, created.text);
    room = created.body;
    rids.createRoom = requestId(created);
    assert.equal((await call("POST", `/api/rooms/${room.id}/join`, carol.accessToken)).status, 200);
    assert.equal((await call("POST", `/api/rooms/${room.id}/leave`, accounts.bob.accessToken)).status, 204);
    assert.equal((await call("DELETE", `/api/rooms/${room.id}/members/${carol.user.id}`, ann.accessToken)).status, 204);
    assert.equal((await call("PATCH", `/api/rooms/${room.id}`, ann.accessToken, { topic: "audit me" })).status, 200);

    // A message: sent, edited, reacted to, deleted.
    const sent = await call("POST", `/api/rooms/${room.id}/messages`, ann.accessToken, {
      body: "first words",
      clientMsgId: newClientMsgId(),
    });
    assert.equal(sent.status, 201, sent.text);
    message = sent.body;
    rids.send = requestId(sent);
    const mid = `/api/rooms/${room.id}/messages/${message.id}`;
    assert.equal((await call("PATCH", mid, ann.accessToken, { body: "second thoughts" })).status, 200);
    assert.equal((await call("POST", `${mid}/reactions`, ann.accessToken, { emoji: "👍" })).status, 200);
    assert.equal((await call("DELETE", mid, ann.accessToken)).status, 204);

    // An unknown route, answered by the gateway itself.
    const nowhere = await call("GET", `/api/nowhere-${secretSuffix}`, ann.accessToken);
    assert.equal(nowhere.status, 404);

    // A socket connects and goes.
    const socket = await connectChat(base, dave.accessToken);
    await sleep(300);
    socket.close();
  });

  it("every event is recorded exactly once, with its data", async () => {
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

  it("queries: newest first; filters by type, userId, roomId, from, to; `before` pages without gaps or duplicates", async () => {
    const { ann } = accounts;
    const to = new Date();
    await sleep(2_500); // access records of requests made before `to` are buffered for up to a second
    const window = `to=${to.toISOString()}`;
    const everything = await all(window);
    assert.ok(everything.length > 50, `${everything.length} events`);
    for (let i = 1; i < everything.length; i++) {
      const [a, b] = [everything[i - 1], everything[i]];
      const order = Date.parse(a.ts) - Date.parse(b.ts) || (a.id > b.id ? 1 : -1);
      assert.ok(order > 0, `newest first at ${i}: ${a.ts} ${a.id} then ${b.ts} ${b.id}`);
    }
    assert.equal(new Set(everything.map((e) => e.id)).size, everything.length);
    for (const e of everything) {
      for (const key of ["id", "ts", "type", "nodeId", "requestId", "userId", "roomId", "data"]) {
        assert.ok(key in e, `event lacks ${key}: ${JSON.stringify(e)}`);
      }
      assert.ok(Date.parse(e.ts) <= to.getTime());
    }

    // Small pages, chained through nextBefore, give the same sequence.
    const paged: AppEvent[] = [];
    let before: string | null = null;
    let pages = 0;
    do {
      const res: ApiResponse = await api(
        base,
        "GET",
        `/api/admin/events?${window}&limit=7${before ? `&before=${before}` : ""}`,
        {
          token: admin(),
        },
      );
      assert.equal(res.status, 200, res.text);
      assert.ok(res.body.events.length <= 7);
      paged.push(...res.body.events);
      before = res.body.nextBefore;
      if (before) assert.equal(before, res.body.events[res.body.events.length - 1].id);
      pages += 1;
    } while (before);
    assert.ok(pages > 5);
    assert.deepEqual(
      paged.map((e) => e.id),
      everything.map((e) => e.id),
      "pages: no gap, no duplicate",
    );

    const check = async (query: string, expected: (e: AppEvent) => boolean): Promise<AppEvent[]> => {
      const got = await all(`${window}&${query}`);
      assert.deepEqual(
        got.map((e) => e.id),
        everything.filter(expected).map((e) => e.id),
        query,
      );
      return got;
    };
    assert.ok((await check("type=http.access", (e) => e.type === "http.access")).length > 10);
    assert.ok((await check(`userId=${ann.user.id}`, (e) => e.userId === ann.user.id)).length > 10);
    assert.equal((await check(`roomId=${room.id}`, (e) => e.roomId === room.id)).length >= 10, true);
    await check(`type=auth.login&userId=${ann.user.id}`, (e) => e.type === "auth.login" && e.userId === ann.user.id);
    await check(`type=room.member_changed&roomId=${room.id}&userId=${accounts.carol.user.id}`, (e) => {
      return e.type === "room.member_changed" && e.roomId === room.id && e.userId === accounts.carol.user.id;
    });
    const mid = everything[Math.floor(everything.length / 2)];
    const from = new Date(mid.ts);
    await check(`from=${from.toISOString()}`, (e) => Date.parse(e.ts) >= from.getTime());
    const narrowTo = new Date(Date.parse(mid.ts) - 1);
    const narrow = await all(`to=${narrowTo.toISOString()}`);
    assert.deepEqual(
      narrow.map((e) => e.id),
      everything.filter((e) => Date.parse(e.ts) <= narrowTo.getTime()).map((e) => e.id),
      "to is inclusive",
    );
    await check("type=no.such.type", () => false);

    const limited = await api(base, "GET", `/api/admin/events?${window}&limit=3`, { token: admin() });
    assert.deepEqual(
      limited.body.events.map((e: AppEvent) => e.id),
      everything.slice(0, 3).map((e) => e.id),
    );
    assert.equal(limited.body.nextBefore, everything[2].id);

    for (const query of ["limit=0", "limit=501", "userId=abc", "from=yesterday", "before=no-such-event"]) {
      expectError(await api(base, "GET", `/api/admin/events?${query}`, { token: admin() }), 422, "VALIDATION_ERROR");
    }
  });

  it("stats: counts per type per hour match the events", async () => {
    const to = new Date();
    await sleep(2_500);
    const from = new Date(Math.floor((startedAt - HOUR) / HOUR) * HOUR);
    const res = await api(base, "GET", `/api/admin/events/stats?from=${from.toISOString()}&to=${to.toISOString()}`, {
      token: admin(),
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.from, from.toISOString());
    assert.equal(res.body.to, to.toISOString());
    // [from, to): the events up to the millisecond before `to`.
    const events = await all(`from=${from.toISOString()}&to=${new Date(to.getTime() - 1).toISOString()}`);
    const expected = new Map<string, number>();
    for (const e of events) {
      const hour = new Date(Math.floor(Date.parse(e.ts) / HOUR) * HOUR).toISOString();
      const key = `${hour} ${e.type}`;
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    const got = new Map<string, number>(
      res.body.counts.map((c: { hour: string; type: string; count: number }) => [`${c.hour} ${c.type}`, c.count]),
    );
    assert.deepEqual([...got].sort(), [...expected].sort());
    const sorted = res.body.counts.map((c: { hour: string; type: string }) => `${c.hour} ${c.type}`);
    assert.deepEqual(sorted, [...sorted].sort(), "by hour, then type");
    assert.ok(res.body.counts.every((c: { count: number }) => Number.isInteger(c.count) && c.count > 0));
    assert.equal(
      got.get(`${new Date(Math.floor(Date.parse(message.createdAt) / HOUR) * HOUR).toISOString()} message.created`),
      1,
    );

    // Default: the last 24 hours.
    const recent = await api(base, "GET", "/api/admin/events/stats", { token: admin() });
    assert.equal(recent.status, 200, recent.text);
    assert.equal(Date.parse(recent.body.to) - Date.parse(recent.body.from), DAY);
    expectError(
      await api(base, "GET", `/api/admin/events/stats?from=${to.toISOString()}&to=${from.toISOString()}`, {
        token: admin(),
      }),
      422,
      "VALIDATION_ERROR",
    );
  });

  it("admins only: 403 for other users, 401 without a token", async () => {
    for (const [method, urlPath] of [
      ["GET", "/api/admin/events"],
      ["GET", "/api/admin/events/stats"],
      ["POST", "/api/admin/events/purge"],
    ] as const) {
      expectError(await api(base, method, urlPath, { token: accounts.dave.accessToken }), 403, "FORBIDDEN", urlPath);
      expectError(await api(base, method, urlPath), 401, "UNAUTHORIZED", urlPath);
    }
  });

  it("retention (LOG_RETENTION_DAYS=1): the purge deletes events older than a day and keeps the rest", async () => {
    const countBefore = (await all()).length;
    const doc = (id: string, ageMs: number): EventDoc => ({
      _id: `retention-${id}-${secretSuffix}`,
      ts: new Date(Date.now() - ageMs),
      type: "test.retention",
      nodeId: "elsewhere",
      requestId: null,
      userId: null,
      roomId: null,
      data: { age: id },
    });
    const docs = [doc("old", 3 * DAY), doc("day-and-a-bit", DAY + HOUR), doc("recent", 12 * HOUR)];
    if (store.insertNeedsRestart) {
      await node.stop();
      await store.insert(dataDir, docs);
      await start();
      // The purge runs at every start (and hourly): the old ones are gone already.
      await node.waitForOutput(/retention: purged 2 events/, { timeoutMs: WAIT_MS });
    } else {
      await store.insert(dataDir, docs);
      assert.deepEqual(
        (await ofType("test.retention")).map((e) => e.data.age).sort(),
        ["day-and-a-bit", "old", "recent"],
        "stored, and visible before the purge",
      );
      const purged = await api(base, "POST", "/api/admin/events/purge", { token: admin(), body: {} });
      assert.equal(purged.status, 200, purged.text);
      assert.deepEqual(purged.body, { deleted: 2 });
    }
    assert.match(node.output(), /no TTL indexes here: retention is the hourly purge job/);
    assert.deepEqual(
      (await ofType("test.retention")).map((e) => e.data.age),
      ["recent"],
      "older than a day: gone; younger: kept",
    );
    const again = await api(base, "POST", "/api/admin/events/purge", { token: admin(), body: {} });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.body, { deleted: 0 });
    const countAfter = (await all()).length;
    assert.ok(countAfter >= countBefore + 1, `the application's events are kept (${countBefore} → ${countAfter})`);
    assert.ok(
      (await ofType("message.created", (e) => e.data.messageId === message.id)).length === 1,
      "today's events are kept",
    );
  });

  it("the stored documents hold no password, password hash or token", async () => {
    await sleep(1_500); // the access records of the last requests
    const raw = await store.rawDocuments(dataDir);
    assert.ok(raw.includes("user.registered") && raw.includes("http.access"), "read the real store");
    assert.ok(secrets.size >= 15, `${secrets.size} secrets checked`);
    for (const secret of secrets) {
      assert.equal(raw.includes(secret), false, `the store contains a secret (${secret.slice(0, 12)}…)`);
    }
    assert.equal(raw.includes("$argon2"), false, "no password hash");
    assert.doesNotMatch(raw, /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/, "no JWT at all");
    assert.doesNotMatch(raw, /"(password|passwordHash|accessToken|refreshToken|authorization)"/i, "no secret keys");
  });
}

describe("audit log on the embedded store", () => {
  logSuite({
    name: "embedded",
    mongoUrl: undefined,
    insertNeedsRestart: true,
    async rawDocuments(dataDir) {
      return readFileSync(path.join(dataDir, "log", "events.db"), "utf8");
    },
    async insert(dataDir, docs) {
      const docs_ = await openDocStore({ mongoUrl: undefined, dataDir });
      try {
        assert.equal(await new EventLog(docs_).record(docs), docs.length);
      } finally {
        await docs_.close();
      }
    },
    async cleanup() {},
  });
});

describe("audit log on MongoDB (FerretDB)", async () => {
  const skip = await serverSkip("ferretdb");
  if (skip) {
    it("FerretDB", { skip }, () => {});
    return;
  }
  const dbName = `nochat_logtest_${randomBytes(5).toString("hex")}`;
  const url = new URL(mongoUrl()!);
  url.pathname = `/${dbName}`;
  const withClient = async <T>(fn: (client: MongoClient) => Promise<T>): Promise<T> => {
    const client = new MongoClient(url.toString(), { serverSelectionTimeoutMS: 5_000 });
    try {
      await client.connect();
      return await fn(client);
    } finally {
      await client.close();
    }
  };
  logSuite({
    name: "ferretdb",
    mongoUrl: url.toString(),
    insertNeedsRestart: false,
    rawDocuments: () =>
      withClient(async (client) => JSON.stringify(await client.db().collection("events").find({}).toArray())),
    insert: (_dataDir, docs) =>
      withClient(async (client) => {
        const store = await openDocStore({ mongoUrl: url.toString(), dataDir: os.tmpdir() });
        try {
          assert.equal(await new EventLog(store).record(docs), docs.length);
        } finally {
          await store.close();
        }
        assert.equal(await client.db().collection("events").countDocuments({ type: "test.retention" }), docs.length);
      }),
    cleanup: () =>
      withClient((client) =>
        client
          .db()
          .dropDatabase()
          .then(() => undefined),
      ),
  });
});
