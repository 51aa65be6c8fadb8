/**
 * The operator's REPL (issue 12, item 1), typed into through its stdin like an operator would,
 * joined to a two-process cluster over RabbitMQ and MariaDB:
 *   gateway   SERVICES=api
 *   backend   SERVICES=auth,users,chat,notify,log
 *   console   SERVICES=none --repl, without JWT_SECRET (it signs nothing)
 *
 * Each NoChat command's output and its effect: `online` lists a connected user on the gateway node;
 * `rooms --top` and `user` show counts, roles, sessions and rooms; `admin grant|revoke` changes the
 * role; `announce` reaches a connected client as a system message (userId 0); `events tail` shows a
 * login done meanwhile and stops on Enter; `events stats` and `outbox` answer; `kick` removes the
 * member; `sessions revoke` disconnects the user's socket within 2 s and ends their refresh token.
 * Mistakes get one line, never a stack; `--help` explains a command. A piped script runs line by
 * line (an `events tail --for` too) and exits at its end; a wrong RabbitMQ password is said at once.
 * The operator actions refuse everyone but the operator on the bus, and none is reachable over REST.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ServiceBroker } from "moleculer";
import { SYSTEM_USER_ID } from "../../src/contracts/objects.js";
import { api, login, PASSWORD, register } from "../support/accounts-helpers.js";
import { createRoom } from "../support/chat-helpers.js";
import { rejectsWith } from "../support/errors.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { createTestDatabase, freePort, rabbitUrl, requireServer, uniqueNamespace } from "../support/servers.js";
import { connectChat, Inbox, waitSubscribed } from "../support/sockets.js";
import { eventually, withTimeout } from "../support/wait.js";

/** Types one line into the REPL; returns what it printed up to its next prompt. */
async function type(repl: NodeHandle, prompt: string, line: string, timeoutMs = 15_000): Promise<string> {
  const since = repl.outputOffset();
  repl.child.stdin!.write(`${line}\n`);
  const out = await repl.waitForOutput(prompt, { since, timeoutMs });
  return out.slice(0, out.lastIndexOf(prompt));
}

test("operator REPL: every NoChat command against a two-process cluster", async (t) => {
  for (const server of ["rabbitmq", "mariadb"] as const) {
    if (!(await requireServer(server, t))) return;
  }
  const database = await createTestDatabase();
  t.after(() => database.drop());
  const namespace = uniqueNamespace("nochat-repl");
  const common = { TRANSPORTER: rabbitUrl(), NAMESPACE: namespace, DATABASE_URL: database.url };
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const [gateway] = await Promise.all([
    startNode({ t, name: "gateway", services: ["api"], env: { ...common, PORT: String(port) } }),
    startNode({ t, name: "backend", services: ["auth", "users", "chat", "notify", "log"], env: common }),
  ]);
  const prompt = `nochat ${namespace} $`;
  /** `npm run repl` with its defaults: no signing key, and quiet (errors, and why it cannot connect). */
  const startConsole = (name: string, env: Record<string, string | undefined> = {}, ready: string | RegExp = prompt) =>
    startNode({
      t,
      name,
      services: "none",
      args: ["--repl"],
      stdin: true,
      env: { ...common, JWT_SECRET: undefined, LOG_LEVEL: undefined, ...env },
      ready,
      timeoutMs: 15_000,
    });
  const repl = await startConsole("console");

  // ---- people and a room -----------------------------------------------------------------------
  const stamp = Date.now().toString(36);
  const alice = await register(base, `alice${stamp}`);
  const bob = await register(base, `bob${stamp}`);
  const roomName = `ops-${stamp}`;
  const room = await createRoom(base, alice, { name: roomName, kind: "public" });
  assert.equal((await api(base, "POST", `/api/rooms/${room.id}/join`, { token: bob.accessToken })).status, 200);
  const socket = await connectChat(base, bob.accessToken);
  t.after(() => socket.close());
  await waitSubscribed(socket, room.id);
  const inbox = new Inbox(socket, "bob");

  // ---- online: bob on the gateway node (once the console has discovered the services) -----------
  const online = await eventually(
    "online to list bob",
    async () => {
      const out = await type(repl, prompt, "online");
      return out.includes(bob.user.username) ? out : false;
    },
    { timeoutMs: 20_000, intervalMs: 500 },
  );
  assert.ok(online.includes(gateway.env.NODE_ID), `online names the gateway node:\n${online}`);
  assert.match(online, /1 user\(s\) online on 1 gateway node\(s\), 1 socket\(s\)/);

  // ---- rooms, user -----------------------------------------------------------------------------
  const rooms = await type(repl, prompt, "rooms --top 5");
  const roomRow = rooms.split("\n").find((l) => l.includes(roomName));
  assert.ok(roomRow, `rooms lists ${roomName}:\n${rooms}`);
  assert.deepEqual(
    roomRow
      .split("│")
      .map((c) => c.trim())
      .filter(Boolean)
      .slice(0, 5),
    [roomName, String(room.id), "public", "2", "0"],
  );
  const profile = await type(repl, prompt, `user ${bob.user.username}`);
  assert.match(profile, new RegExp(`Username\\s+│ ${bob.user.username}`));
  assert.match(profile, /Active sessions: 1/);
  assert.match(profile, new RegExp(`${roomName}\\s+│ ${room.id}\\s+│ public\\s+│ member`));
  assert.ok(profile.includes(`${gateway.env.NODE_ID}: 1`), `user shows bob's connection:\n${profile}`);

  // ---- admin grant | revoke ----------------------------------------------------------------------
  assert.match(await type(repl, prompt, `admin grant ${bob.user.username}`), /is now an admin/);
  const relogged = await login(base, bob.user.username, PASSWORD);
  const me = await api(base, "GET", "/api/users/me", { token: relogged.accessToken });
  assert.deepEqual(me.body.roles, ["admin"], "granted: bob's next token is an admin's");
  assert.match(await type(repl, prompt, `admin revoke ${bob.user.username}`), /is no longer an admin/);
  assert.match(await type(repl, prompt, `admin revoke ${bob.user.username}`), /is not an admin: nothing changed/);
  assert.match(await type(repl, prompt, `user ${bob.user.username}`), /Roles\s+│ -/);

  // ---- announce: a system message reaches bob ---------------------------------------------------
  const said = await type(repl, prompt, `announce ${roomName} "Maintenance at 18:00, back by 18:10"`);
  assert.match(said, new RegExp(`Announced in room #${room.id}`));
  const [announced] = await inbox.waitFor("message:new", (m) => m.roomId === room.id);
  assert.equal(announced.userId, SYSTEM_USER_ID);
  assert.equal(announced.body, "Maintenance at 18:00, back by 18:10");

  // ---- events tail: a login done meanwhile, until Enter ------------------------------------------
  const tailStart = repl.outputOffset();
  repl.child.stdin!.write("events tail --type auth.login\n");
  await repl.waitForOutput("Following the audit log (auth.login)", { since: tailStart });
  const carol = await register(base, `carol${stamp}`);
  await login(base, carol.user.username, PASSWORD);
  const tailed = await repl.waitForOutput(new RegExp(`auth\\.login user=${carol.user.id}`), {
    since: tailStart,
    timeoutMs: 15_000,
  });
  assert.doesNotMatch(tailed, /http\.access/, "--type filters");
  const stopped = repl.outputOffset();
  repl.child.stdin!.write("\n");
  await repl.waitForOutput("Stopped following the audit log.", { since: stopped });
  // The Enter that stopped it is an (empty) line of its own: two prompts.
  await repl.waitForOutput(new RegExp(`(${prompt.replace(/\$/, "\\$")}[\\s\\S]*){2}`), { since: stopped });

  // ---- events stats, outbox ----------------------------------------------------------------------
  const stats = await type(repl, prompt, "events stats");
  assert.match(stats, /auth\.login\s+│ \d+/);
  assert.match(stats, /room\.created\s+│ 1/);
  const outbox = await type(repl, prompt, "outbox");
  for (const producer of ["auth", "chat", "users"]) {
    assert.match(outbox, new RegExp(`│ ${producer}\\s+│`), `outbox lists ${producer}:\n${outbox}`);
  }

  // ---- kick: bob is no longer a member -----------------------------------------------------------
  assert.match(await type(repl, prompt, `kick ${room.id} ${bob.user.username}`), /was removed from room/);
  const members = await api(base, "GET", `/api/rooms/${room.id}/members`, { token: alice.accessToken });
  assert.equal(members.status, 200);
  assert.deepEqual(
    (members.body.members as { id: number }[]).map((m) => m.id),
    [alice.user.id],
    "only alice is left",
  );

  // ---- sessions revoke: bob's socket drops within 2 s, his refresh token is spent ---------------
  const revokedAt = Date.now();
  assert.match(await type(repl, prompt, `sessions revoke ${bob.user.username}`), /2 session\(s\) of .* ended/);
  const { at } = await withTimeout(inbox.disconnected, 5_000, "bob's socket to be disconnected");
  assert.ok(at - revokedAt < 2_000, `disconnected ${at - revokedAt} ms after the command`);
  const refresh = await api(base, "POST", "/api/auth/refresh", { body: { refreshToken: bob.refreshToken } });
  assert.equal(refresh.status, 401, "bob's refresh token no longer works");

  // ---- mistakes: one line each, never a stack -----------------------------------------------------
  assert.match(await type(repl, prompt, "user nobody-at-all"), /✖ User not found \(NOT_FOUND\)/);
  assert.match(await type(repl, prompt, `kick no-such-room ${alice.user.username}`), /✖ Room not found/);
  assert.match(await type(repl, prompt, "rooms --top many"), /Usage: --top takes a whole number/);
  assert.match(await type(repl, prompt, "kick --help"), /Remove a user from a room/);
  assert.match(await type(repl, prompt, "events tail --help"), /Follow the audit log live/);
  assert.doesNotMatch(repl.output(), /\n\s+at .+\(.+:\d+:\d+\)/, "no stack trace in the console");

  // ---- a script piped in: each line in turn, an `events tail --for` included, then the exit ------------
  const script = await startConsole("script");
  script.child.stdin!.end(`events tail --for 2\nfrobnicate\nrooms --top 1\n`);
  const exit = await withTimeout(script.exited, 20_000, "the piped console to exit at the end of its input");
  assert.equal(exit.code, 0);
  const ran = script.output();
  const order = ["Stopped following the audit log.", "unknown command 'frobnicate'", roomName].map((text) =>
    ran.indexOf(text),
  );
  assert.ok(
    order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])),
    `each line in turn:\n${ran}`,
  );

  // ---- a wrong password: said at once, not a silent hang ----------------------------------------------
  const wrongPassword = rabbitUrl().replace(/:\/\/([^:]+):[^@]*@/, "://$1:wrong-password@");
  const refused = await startConsole("refused", { TRANSPORTER: wrongPassword }, /ACCESS.REFUSED|403/);

  await refused.stop();

  // ---- nobody else reaches the operator's actions ------------------------------------------------
  for (const path of ["/api/users/online", "/api/chat/roomStats", "/api/auth/revokeUserSessions"]) {
    const res = await api(base, "POST", path, { token: alice.accessToken, body: {} });
    assert.equal(res.status, 404, `${path} is not on REST`);
  }
  const peer = new ServiceBroker({
    namespace,
    nodeID: `peer-${stamp}`,
    transporter: { type: "AMQP", options: { url: rabbitUrl() } },
    logger: false,
  });
  await peer.start();
  t.after(() => peer.stop());
  await peer.waitForServices(["users", "chat", "auth"], 10_000);
  const admin = { id: alice.user.id, username: alice.user.username, roles: ["admin"], sessionId: "x" };
  await rejectsWith(peer.call("users.online", {}, { meta: { user: admin } }), "FORBIDDEN", "an admin on the bus");
  await rejectsWith(peer.call("chat.announce", { room: roomName, body: "hi" }), "UNAUTHORIZED", "no principal");
  // The operator principal passes no action that acts as a user.
  await rejectsWith(
    peer.call(
      "chat.listRooms",
      {},
      { meta: { user: { id: 0, username: "operator", roles: ["operator"], sessionId: "operator" } } },
    ),
    "FORBIDDEN",
    "the operator principal",
  );
});
