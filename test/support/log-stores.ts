/**
 * The audit log end to end, on one node per store — the embedded file store and MongoDB (FerretDB,
 * skipped without it, failing under CI) — for the log-*.test.ts files that share one scenario:
 *
 *   onEachLogStore("audit log: queries", (log) => {
 *     before(() => log.runActivity());      // or run it as a test of its own
 *     it("…", async () => { const { base, accounts } = log; … });
 *   });
 *
 * Each describe starts its own node (LOG_RETENTION_DAYS=1, root an admin through NOCHAT_ADMINS)
 * on a store of its own. runActivity() makes the system produce every kind of event once —
 * accounts, auth refusals and throttling, rooms, members, messages, reactions, an unknown route, a
 * socket — and keeps what the checks need: the accounts, request ids, session ids, the room and
 * the message, and every password and token sent or received (`secrets`).
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
import { api, type Account, type ApiResponse } from "./accounts-helpers.js";
import { newClientMsgId } from "./chat-helpers.js";
import { expectError } from "./errors.js";
import { startNode, type NodeHandle } from "./processes.js";
import { freePort, mongoUrl, serverSkip } from "./servers.js";
import { connectChat } from "./sockets.js";
import { eventually, sleep } from "./wait.js";

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const WAIT_MS = 15_000;

export interface LogStore {
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

export const secretSuffix = randomBytes(6).toString("hex");
/** Distinctive passwords, so a leak is found by a plain substring search. */
export const password = (who: string): string => `Pw-${who}-${secretSuffix}-long`;

/** One node on one store, and what runActivity() did; see the module comment. */
export interface LogNode {
  readonly store: LogStore;
  readonly dataDir: string;
  readonly base: string;
  /** The node now (start() replaces it). */
  readonly node: NodeHandle;
  readonly startedAt: number;
  /** Every password and token sent or received: none may reach the store. */
  readonly secrets: Set<string>;
  readonly accounts: Record<string, Account>;
  /** Request ids of the activity's requests, by name. */
  readonly rids: Record<string, string>;
  /** Session ids of the activity's logins, by name. */
  readonly sessions: Record<string, string>;
  readonly room: Room;
  readonly message: Message;
  /** (Re)starts the node on the same port, data and NODE_ID. */
  start(): Promise<void>;
  /** A REST call whose tokens are kept as secrets. */
  call(method: string, urlPath: string, token?: string, body?: unknown): Promise<ApiResponse>;
  requestId(res: ApiResponse): string;
  /** root's access token. */
  admin(): string;
  /** Every event matching the query string, through `before` pages of 500. */
  all(query?: string): Promise<AppEvent[]>;
  ofType(type: string, where?: (e: AppEvent) => boolean): Promise<AppEvent[]>;
  /** Waits for exactly `n` matching events (and a moment more, so a late duplicate would show). */
  expectEvents(type: string, where: (e: AppEvent) => boolean, n: number, what: string): Promise<AppEvent[]>;
  /** The scenario: every kind of event once (asserting each answer). */
  runActivity(): Promise<void>;
  /** Waits until the last event of each producer the activity used is stored. */
  awaitActivityRecorded(): Promise<void>;
}

function logNode(store: LogStore): LogNode {
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

  // Filled in by runActivity().
  let room: Room;
  let message: Message;
  const rids: Record<string, string> = {};
  const sessions: Record<string, string> = {};

  async function runActivity(): Promise<void> {
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
  }

  async function awaitActivityRecorded(): Promise<void> {
    const { ann, bob, dave } = accounts;
    const user = (id: number) => (e: AppEvent) => e.userId === id;
    const ofMessage = (e: AppEvent) => e.data.messageId === message.id;
    await expectEvents("user.updated", user(ann.user.id), 1, "users' last event");
    await expectEvents("auth.session_revoked", user(bob.user.id), 1, "auth's last event");
    await expectEvents("room.updated", (e) => e.roomId === room.id, 1, "chat's last room event");
    await expectEvents("message.deleted", ofMessage, 1, "chat's last event");
    await expectEvents("socket.disconnected", user(dave.user.id), 1, "the gateway's last event");
  }

  return {
    store,
    get dataDir() {
      return dataDir;
    },
    get base() {
      return base;
    },
    get node() {
      return node;
    },
    startedAt,
    secrets,
    accounts,
    rids,
    sessions,
    get room() {
      return room;
    },
    get message() {
      return message;
    },
    start,
    call,
    requestId,
    admin,
    all,
    ofType,
    expectEvents,
    runActivity,
    awaitActivityRecorded,
  };
}

/** Runs `body` once per store, in a describe of its own with its own node: `${title} on …`. */
export function onEachLogStore(title: string, body: (log: LogNode) => void): void {
  describe(`${title} on the embedded store`, () => {
    body(logNode(embeddedStore()));
  });
  describe(`${title} on MongoDB (FerretDB)`, async () => {
    const skip = await serverSkip("ferretdb");
    if (skip) {
      it("FerretDB", { skip }, () => {});
      return;
    }
    body(logNode(ferretStore()));
  });
}
/** The embedded store: one file under the node's DATA_DIR. */
function embeddedStore(): LogStore {
  return {
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
  };
}

/** A database of its own on the test FerretDB, dropped at the end. */
function ferretStore(): LogStore {
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
  return {
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
  };
}
