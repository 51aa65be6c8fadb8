/**
 * A MariaDB outage answers UNAVAILABLE, never INTERNAL (issue "Step 7b"). Against a real MariaDB of
 * this test's own (test/support/mariadb.ts: its own data dir, port and socket), stopped and started
 * again under load, with a cluster on RabbitMQ:
 *   gateway   SERVICES=api
 *   backend   SERVICES=auth,users,chat,notify,log   DATABASE_URL = the private MariaDB
 *
 * Six clients (three over REST, three over a socket) send messages with fresh clientMsgIds
 * continuously; MariaDB is shut down mid-stream, stays down ~5 s and is started again. Then:
 * - every answer was either the stored message or UNAVAILABLE with a retry hint (REST: 503,
 *   `Retry-After`, `retryAfter`; socket: `{ ok:false, error:{ code:"UNAVAILABLE", retryAfter } }`),
 *   never INTERNAL;
 * - every refused send, retried with its clientMsgId after the restart, is stored exactly once
 *   (200 with the original if it had been stored after all, else 201);
 * - no acknowledged message is lost: the room's history holds each acknowledged and each retried
 *   message once, seqs 1…n without a gap;
 * - the backend logged the outage as one warning without a stack and one "is back after N s" line.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import mysql from "mysql2/promise";
import type { Message } from "../../src/contracts/objects.js";
import { api, register, type Account } from "../support/accounts-helpers.js";
import { createRoom, fullHistory, newClientMsgId } from "../support/chat-helpers.js";
import { PrivateMariaDB, privateMariaDBUnavailable } from "../support/mariadb.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { freePort, rabbitUrl, requireServer, uniqueNamespace } from "../support/servers.js";
import { call, connectChat, type ChatSocket } from "../support/sockets.js";
import { eventually, sleep } from "../support/wait.js";

const CLIENTS_PER_CHANNEL = 3;
const HEALTHY_BEFORE_MS = 1_500;
const OUTAGE_MS = 5_000;
const HEALTHY_AFTER_MS = 2_500;
const RETRY_AFTER_S = 2;

type Via = "rest" | "socket";

interface Attempt {
  via: Via;
  clientMsgId: string;
  body: string;
  /** The stored message (201/200, or ok ack) … */
  stored?: Message;
  /** … or the refusal: status (503 for REST, 0 for a socket), code, retry hint. */
  refused?: { status: number; code: string; retryAfter: unknown; header: string | null };
  at: number;
}

test("MariaDB stopped under load: sends answer UNAVAILABLE with a retry hint, retried clientMsgIds are stored once, nothing acknowledged is lost", async (t) => {
  if (!(await requireServer("rabbitmq", t))) return;
  const missing = privateMariaDBUnavailable(); // throws under CI=true
  if (missing) {
    t.skip(`no private MariaDB: ${missing}`);
    return;
  }
  const started = Date.now();
  const mariadb = await PrivateMariaDB.start();
  t.after(async () => {
    if ((t as { passed?: boolean }).passed === false)
      process.stderr.write(`----- private MariaDB log -----\n${mariadb.log().slice(-8000)}\n`);
    await mariadb.destroy();
  });
  const databaseUrl = await mariadb.createDatabase("nochat_outage");
  t.diagnostic(`private MariaDB on port ${mariadb.port} in ${Date.now() - started} ms`);

  const common = { TRANSPORTER: rabbitUrl(), NAMESPACE: uniqueNamespace("nochat-dbout"), DATABASE_URL: databaseUrl };
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const [backend, gateway] = await Promise.all([
    startNode({ t, name: "backend", services: ["auth", "users", "chat", "notify", "log"], env: common }),
    startNode({ t, name: "gateway", services: ["api"], env: { ...common, PORT: String(port) } }),
  ]);
  await eventually(
    "the gateway sees every service",
    async () => (await api(base, "GET", "/api/health")).status === 200,
    { timeoutMs: 20_000 },
  );
  t.diagnostic(`cluster up after ${Date.now() - started} ms`);

  const ann: Account = await register(base);
  const room = await createRoom(base, ann, { name: "outage", kind: "public" });
  const sockets: ChatSocket[] = [];
  for (let i = 0; i < CLIENTS_PER_CHANNEL; i++) sockets.push(await connectChat(base, ann.accessToken, { t }));

  // ---- the load ---------------------------------------------------------------------------------
  const attempts: Attempt[] = [];
  const unexpected: string[] = [];
  let n = 0;
  const sendOnce = async (via: Via, clientMsgId: string, body: string, socket?: ChatSocket): Promise<Attempt> => {
    const attempt: Attempt = { via, clientMsgId, body, at: Date.now() };
    if (via === "rest") {
      const res = await api<Message & { error?: { code: string; retryAfter?: number } }>(
        base,
        "POST",
        `/api/rooms/${room.id}/messages`,
        { token: ann.accessToken, body: { body, clientMsgId } },
      );
      if (res.status === 201 || res.status === 200) attempt.stored = res.body;
      else if (res.body?.error) {
        attempt.refused = {
          status: res.status,
          code: res.body.error.code,
          retryAfter: res.body.error.retryAfter,
          header: res.headers.get("retry-after"),
        };
      } else unexpected.push(`REST ${res.status} ${res.text.slice(0, 300)}`);
    } else {
      const ack = await call(socket!, "message:send", { roomId: room.id, body, clientMsgId }, 20_000);
      if (ack.ok) attempt.stored = ack.data;
      else attempt.refused = { status: 0, code: ack.error.code, retryAfter: ack.error.retryAfter, header: null };
    }
    return attempt;
  };

  let running = true;
  const client = async (via: Via, index: number): Promise<void> => {
    const socket = via === "socket" ? sockets[index] : undefined;
    while (running) {
      const attempt = await sendOnce(via, newClientMsgId(via), `${via} ${index} #${++n}`, socket);
      attempts.push(attempt);
      // A refused client backs off a little (a real one waits Retry-After; this one wants samples).
      if (!attempt.stored) await sleep(50);
    }
  };
  const clients = [
    ...Array.from({ length: CLIENTS_PER_CHANNEL }, (_, i) => client("rest", i)),
    ...Array.from({ length: CLIENTS_PER_CHANNEL }, (_, i) => client("socket", i)),
  ];

  await sleep(HEALTHY_BEFORE_MS);
  const logMark = backend.outputOffset();
  const gatewayMark = gateway.outputOffset();
  const stopAt = Date.now();
  await mariadb.stop();
  t.diagnostic(`MariaDB stopped (clean shutdown) in ${Date.now() - stopAt} ms, under load`);
  await sleep(OUTAGE_MS);
  const restartAt = Date.now();
  await mariadb.restart();
  const backAt = Date.now();
  t.diagnostic(`MariaDB down for ${backAt - stopAt} ms (restart took ${backAt - restartAt} ms)`);
  // Clients keep going until each channel has had sends stored again.
  await eventually(
    "sends are stored again after the restart",
    () =>
      (["rest", "socket"] as const).every((via) => attempts.some((a) => a.via === via && a.stored && a.at > backAt)),
    { timeoutMs: 30_000 },
  );
  await sleep(HEALTHY_AFTER_MS);
  running = false;
  await Promise.all(clients);

  // ---- what the clients were told ---------------------------------------------------------------
  assert.deepEqual(unexpected, [], "every answer is a message or a contract error");
  const refused = attempts.filter((a) => a.refused);
  const acknowledged = attempts.filter((a) => a.stored);
  const wrong = refused.filter(
    (a) =>
      a.refused!.code !== "UNAVAILABLE" ||
      a.refused!.retryAfter !== RETRY_AFTER_S ||
      (a.via === "rest" && (a.refused!.status !== 503 || a.refused!.header !== String(RETRY_AFTER_S))),
  );
  assert.deepEqual(
    wrong.map((a) => ({ via: a.via, ...a.refused })),
    [],
    "every refused send is UNAVAILABLE with a retry hint (REST: 503 + Retry-After)",
  );
  const refusedBy = (via: Via) => refused.filter((a) => a.via === via).length;
  t.diagnostic(
    `${attempts.length} sends: ${acknowledged.length} acknowledged, ${refused.length} refused as UNAVAILABLE ` +
      `(REST ${refusedBy("rest")}, socket ${refusedBy("socket")})`,
  );
  assert.ok(refusedBy("rest") >= 3, `REST sends were refused during the outage (${refusedBy("rest")})`);
  assert.ok(refusedBy("socket") >= 3, `socket sends were refused during the outage (${refusedBy("socket")})`);
  assert.ok(
    acknowledged.some((a) => a.at < stopAt) && acknowledged.some((a) => a.at > backAt),
    "sends were stored before and after the outage",
  );

  // ---- the refused ones, retried with their clientMsgId ------------------------------------------
  for (const [i, a] of refused.entries()) {
    // Each over the channel it was refused on.
    const retry = await sendOnce(a.via, a.clientMsgId, a.body, sockets[i % sockets.length]);
    assert.ok(retry.stored, `the retry of ${a.clientMsgId} is stored: ${JSON.stringify(retry.refused)}`);
    assert.equal(retry.stored.clientMsgId, a.clientMsgId);
    assert.equal(retry.stored.body, a.body);
    a.stored = retry.stored;
  }
  // A refused send whose statement had run after all (the connection died before the answer) is
  // the original on its retry, stored before the restart.
  const storedAfterAll = refused.filter((a) => Date.parse(a.stored!.createdAt) < backAt).length;
  // Retried once more, each clientMsgId answers its one stored message.
  for (const a of refused) {
    const again = await sendOnce("rest", a.clientMsgId, a.body);
    assert.equal(again.stored?.id, a.stored!.id, `a repeated ${a.clientMsgId} returns the original`);
  }

  // ---- nothing lost, nothing twice ---------------------------------------------------------------
  const history = await fullHistory(base, ann, room.id);
  const byClientMsgId = new Map<string, Message[]>();
  for (const m of history) byClientMsgId.set(m.clientMsgId, [...(byClientMsgId.get(m.clientMsgId) ?? []), m]);
  const twice = [...byClientMsgId].filter(([, list]) => list.length > 1).map(([id]) => id);
  assert.deepEqual(twice, [], "no clientMsgId is stored twice");
  for (const a of acknowledged) {
    const found = byClientMsgId.get(a.clientMsgId)?.[0];
    assert.ok(found, `acknowledged message ${a.clientMsgId} (seq ${a.stored!.seq}) is in the history`);
    assert.equal(found.id, a.stored!.id);
    assert.equal(found.body, a.body);
  }
  for (const a of refused) assert.ok(byClientMsgId.has(a.clientMsgId), `retried ${a.clientMsgId} is stored`);
  assert.equal(history.length, acknowledged.length + refused.length, "exactly the acknowledged and the retried");
  assert.deepEqual(
    history.map((m) => m.seq),
    history.map((_, i) => i + 1),
    "seqs 1…n without a gap",
  );
  // And in the database itself.
  const sql = await mysql.createConnection({ uri: databaseUrl });
  try {
    const [[row]] = await sql.query<mysql.RowDataPacket[]>(
      "SELECT COUNT(*) AS n, COUNT(DISTINCT user_id, client_msg_id) AS distinctIds FROM messages WHERE room_id = ?",
      [room.id],
    );
    assert.equal(Number(row.n), history.length);
    assert.equal(Number(row.distinctIds), history.length);
  } finally {
    await sql.end();
  }
  t.diagnostic(
    `history: ${history.length} messages = ${acknowledged.length} acknowledged + ${refused.length} refused and ` +
      `retried (each stored once; ${storedAfterAll} of those had been stored before their refusal)`,
  );

  // ---- what the operators see ---------------------------------------------------------------------
  const since = (node: NodeHandle, mark: number) =>
    node.output().slice(Math.max(0, mark - (node.outputOffset() - node.output().length)));
  const backendLog = since(backend, logMark);
  const gatewayLog = since(gateway, gatewayMark);
  const lines = (text: string) =>
    text
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        try {
          return JSON.parse(line) as { level?: string; msg?: string; mod?: string };
        } catch {
          return { msg: line };
        }
      });
  const backendLines = lines(backendLog);
  const outageWarnings = backendLines.filter((l) => /^database mysql:\/\/\S+ is unavailable/.test(l.msg ?? ""));
  const backLines = backendLines.filter((l) => /^database mysql:\/\/\S+ is back after \d+\.\d s/.test(l.msg ?? ""));
  t.diagnostic(`backend: ${outageWarnings[0]?.msg} … ${backLines[0]?.msg}`);
  assert.equal(outageWarnings.length, 1, `one warning for the outage: ${JSON.stringify(outageWarnings)}`);
  assert.equal(outageWarnings[0].level, "warn");
  assert.equal(backLines.length, 1, `one line when it is back: ${JSON.stringify(backLines)}`);
  assert.equal(backLines[0].level, "info");
  const errors = [...backendLines, ...lines(gatewayLog)].filter((l) => l.level === "error" || l.level === "fatal");
  assert.deepEqual(errors, [], "no error-level line: an outage is an expected condition");
  for (const [name, text] of [
    ["backend", backendLog],
    ["gateway", gatewayLog],
  ]) {
    // A stack in a JSON log line is an escaped "\n    at …".
    assert.doesNotMatch(text, /(\n|\\n)\s+at \S/, `${name}: no stack traces in the log`);
    assert.doesNotMatch(text, /Acquire connection error|INTERNAL/, `${name}: no per-request driver noise`);
  }
  t.diagnostic(`done in ${Date.now() - started} ms`);
});
