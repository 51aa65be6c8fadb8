/**
 * A poison durable event no longer stops a consumer for everyone (issue 10, item 2), on one
 * embedded node (SQLite, every service in one process, the real relay and notify.ingest):
 *
 * (a) A message with 150 distinct @mentions (users.findManyByUsername takes 100) notifies the
 *     member mentioned 150th: notify looks names up in chunks.
 * (b) A poison event — a `message.created` in chat's outbox whose mention no lookup accepts — among
 *     500 good ones, each mentioning bob: all 500 notifications arrive; the poison event is refused
 *     by notify OUTBOX_MAX_ATTEMPTS (3) times, then listed by GET /api/admin/dead-letters with its
 *     error (its other consumer, the log, stored it); nothing is lost.
 * (c) Retry delivers it once its data is fixed (patched in the dead-letter table, as an operator
 *     would); a second poison event is dropped; both, and the dead-lettering, are in the audit log;
 *     non-admins get 403, unknown ids 404.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import knexFactory, { type Knex } from "knex";
import type { Message, Room } from "../../src/contracts/objects.js";
import type { DeadLetter } from "../../src/infra/outbox.js";
import { api, login, register, type Account } from "../support/accounts-helpers.js";
import { createRoom, sendRest } from "../support/chat-helpers.js";
import { expectError } from "../support/errors.js";
import { adminEvents, pool } from "../support/notify-helpers.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { freePort } from "../support/servers.js";
import { eventually } from "../support/wait.js";

const GOOD = 500;
const MAX_ATTEMPTS = 3;
const WAIT_MS = 30_000;

interface Listing {
  deadLetters: DeadLetter[];
  producers: { producer: string; nodeID: string; count: number }[];
}

describe("a poison durable event among good ones (embedded node)", () => {
  let dataDir: string;
  let node: NodeHandle;
  let base: string;
  let sql: Knex;
  let root: Account, ann: Account, bob: Account;
  let room: Room;

  /** bob's mention notifications, counted in notify's table (the REST list pages by 100). */
  const mentionsOfBob = async (): Promise<Map<number, number>> => {
    const rows = await sql("notifications")
      .where({ user_id: bob.user.id, kind: "mention" })
      .select<{ message_id: number }[]>("message_id");
    const counts = new Map<number, number>();
    for (const r of rows) counts.set(Number(r.message_id), (counts.get(Number(r.message_id)) ?? 0) + 1);
    return counts;
  };

  const deadLetters = async (who: Account = root): Promise<Listing> => {
    const res = await api<Listing>(base, "GET", "/api/admin/dead-letters", { token: who.accessToken });
    assert.equal(res.status, 200, `dead letters: ${res.status} ${res.text}`);
    return res.body;
  };

  /** Writes a `message.created` event into chat's outbox as chat would, with the given mentions. */
  const injectEvent = async (message: Message, mentions: string[]): Promise<string> => {
    const id = randomUUID();
    const event = {
      id,
      type: "message.created",
      ts: new Date().toISOString(),
      source: "chat",
      nodeId: "a-buggy-producer",
      requestId: `poison-${id.slice(0, 8)}`,
      data: {
        messageId: message.id,
        roomId: message.roomId,
        seq: message.seq,
        userId: message.userId,
        roomKind: "public",
        peerId: null,
        mentions,
        replyTo: null,
      },
    };
    await sql("chat_outbox").insert({
      event_id: id,
      type: event.type,
      payload: JSON.stringify(event),
      created_at: Date.now(),
      request_id: event.requestId,
      pending: "notify,log",
      next_attempt_at: Date.now(),
    });
    return id;
  };

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-deadletters-"));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const start = (): Promise<NodeHandle> =>
      startNode({
        env: {
          PORT: String(port),
          DATA_DIR: dataDir,
          TRANSPORTER: undefined,
          DATABASE_URL: undefined,
          MONGO_URL: undefined,
          NOCHAT_ADMINS: "root",
          OUTBOX_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
          OUTBOX_RETRY_MS: "200",
        },
        ready: { http: port },
      });
    // Admin is granted at start to listed accounts that exist: register, then restart.
    node = await start();
    await register(base, "root");
    await node.stop();
    node = await start();
    root = await login(base, "root");
    sql = knexFactory({
      client: "better-sqlite3",
      connection: { filename: path.join(dataDir, "nochat.sqlite") },
      useNullAsDefault: true,
      pool: {
        min: 1,
        max: 1,
        afterCreate(conn: { pragma(sql: string): unknown }, done: (err: Error | null, conn: unknown) => void) {
          conn.pragma("busy_timeout = 5000");
          done(null, conn);
        },
      },
    });
    [ann, bob] = await Promise.all([register(base, "ann_dl"), register(base, "bob_dl")]);
    room = await createRoom(base, ann, { name: "poison", kind: "public", members: [bob.user.id] });
  });

  after(async () => {
    await sql?.destroy();
    await node?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("(a) a message with 150 distinct @mentions notifies the member mentioned last", async () => {
    const names = Array.from({ length: 149 }, (_, i) => `@nobody${String(i).padStart(3, "0")}`);
    const message = await sendRest(base, ann, room.id, `${names.join(" ")} and finally @${bob.user.username}`);
    await eventually("bob's mention", async () => (await mentionsOfBob()).get(message.id) === 1, {
      timeoutMs: WAIT_MS,
    });
  });

  let poisonId: string;
  let good: Message[] = [];

  it(`(b) a poison event among ${GOOD} good ones: all good ones notify, it is dead-lettered with its error`, async () => {
    const started = Date.now();
    const send = (i: number): Promise<Message> => sendRest(base, ann, room.id, `@${bob.user.username} good #${i}`);
    const first = await pool(
      Array.from({ length: GOOD / 2 }, (_, i) => i),
      10,
      send,
    );
    // The name is longer than any username (users.findManyByUsername refuses it): no retry helps.
    poisonId = await injectEvent(first[0], ["x".repeat(80)]);
    const second = await pool(
      Array.from({ length: GOOD / 2 }, (_, i) => GOOD / 2 + i),
      10,
      send,
    );
    good = [...first, ...second];
    note(`${GOOD} messages sent in ${Date.now() - started} ms`);

    let counts = new Map<number, number>();
    await eventually(
      `bob's ${GOOD} mentions`,
      async () => {
        counts = await mentionsOfBob();
        return good.every((m) => counts.has(m.id));
      },
      { timeoutMs: WAIT_MS, context: () => `${good.filter((m) => !counts.has(m.id)).length} missing` },
    );
    assert.ok(
      good.every((m) => counts.get(m.id) === 1),
      "each good message notified exactly once",
    );
    note(`all ${GOOD} notifications in ${Date.now() - started} ms`);

    let listing: Listing = { deadLetters: [], producers: [] };
    await eventually(
      "the poison event dead-lettered",
      async () => (listing = await deadLetters()).deadLetters.length === 1,
      { timeoutMs: WAIT_MS },
    );
    const [letter] = listing.deadLetters;
    assert.equal(letter.eventId, poisonId);
    assert.equal(letter.producer, "chat");
    assert.equal(letter.consumer, "notify");
    assert.equal(letter.type, "message.created");
    assert.equal(letter.attempts, MAX_ATTEMPTS);
    assert.match(letter.lastError, /VALIDATION_ERROR/);
    assert.match(letter.lastError, /usernames/);
    assert.equal(letter.event.id, poisonId);
    assert.ok(
      listing.producers.some((p) => p.producer === "chat" && p.count === 1),
      JSON.stringify(listing.producers),
    );
    for (const producer of ["api", "auth", "users", "log"]) {
      assert.ok(
        listing.producers.some((p) => p.producer === producer && p.count === 0),
        `${producer} asked too`,
      );
    }

    // Nothing lost and nothing left: the outbox is empty (the log took the poison event too).
    await eventually(
      "an empty chat outbox",
      async () => Number((await sql("chat_outbox").count({ n: "*" }).first())?.n) === 0,
      { timeoutMs: WAIT_MS },
    );
    const audit = await adminEvents(base, root, `type=outbox.dead_lettered`);
    assert.equal(audit.events.length, 1);
    assert.deepEqual(
      { ...audit.events[0].data, error: undefined },
      {
        deadLetterId: letter.id,
        producer: "chat",
        consumer: "notify",
        eventId: poisonId,
        eventType: "message.created",
        attempts: MAX_ATTEMPTS,
        error: undefined,
      },
    );
    const logged = await adminEvents(base, root, `type=message.created&roomId=${room.id}&limit=500`);
    assert.ok(
      logged.events.some((e) => e.id === poisonId),
      "the log, its other consumer, stored it",
    );
  });

  it("(c) admin only; retry delivers it once fixed; drop removes another; both audited", async () => {
    const [letter] = (await deadLetters()).deadLetters;
    expectError(await api(base, "GET", "/api/admin/dead-letters", { token: ann.accessToken }), 403, "FORBIDDEN");
    expectError(
      await api(base, "POST", `/api/admin/dead-letters/${letter.id}/retry`, { token: ann.accessToken }),
      403,
      "FORBIDDEN",
    );
    expectError(
      await api(base, "DELETE", `/api/admin/dead-letters/${letter.id}`, { token: bob.accessToken }),
      403,
      "FORBIDDEN",
    );
    expectError(
      await api(base, "POST", `/api/admin/dead-letters/${randomUUID()}/retry`, { token: root.accessToken }),
      404,
      "NOT_FOUND",
    );
    expectError(
      await api(base, "DELETE", `/api/admin/dead-letters/not-an-id`, { token: root.accessToken }),
      422,
      "VALIDATION_ERROR",
    );

    // The operator fixes the event's data (a mention of bob) and retries it: notify applies it.
    const carrier = good[0];
    assert.equal((await mentionsOfBob()).get(carrier.id), 1, "bob's mention of the good event");
    const row = await sql("chat_dead_letters").where({ id: letter.id }).first<{ payload: string }>();
    const fixed = JSON.parse(row.payload) as { data: { mentions: string[]; messageId: number } };
    fixed.data.mentions = [bob.user.username];
    fixed.data.messageId = (await sendRest(base, ann, room.id, "a message nobody is mentioned in")).id;
    await sql("chat_dead_letters")
      .where({ id: letter.id })
      .update({ payload: JSON.stringify(fixed) });
    const retried = await api<DeadLetter>(base, "POST", `/api/admin/dead-letters/${letter.id}/retry`, {
      token: root.accessToken,
    });
    assert.equal(retried.status, 200, retried.text);
    assert.equal(retried.body.eventId, poisonId);
    await eventually(
      "the retried event's notification",
      async () => (await mentionsOfBob()).get(fixed.data.messageId) === 1,
      { timeoutMs: WAIT_MS },
    );
    assert.deepEqual((await deadLetters()).deadLetters, []);
    expectError(
      await api(base, "POST", `/api/admin/dead-letters/${letter.id}/retry`, { token: root.accessToken }),
      404,
      "NOT_FOUND",
    );

    // Another poison event, dropped.
    const second = await injectEvent(good[1], ["y".repeat(80)]);
    let listing: Listing = { deadLetters: [], producers: [] };
    await eventually("dead-lettered", async () => (listing = await deadLetters()).deadLetters.length === 1, {
      timeoutMs: WAIT_MS,
    });
    assert.equal(listing.deadLetters[0].eventId, second);
    const dropped = await api(base, "DELETE", `/api/admin/dead-letters/${listing.deadLetters[0].id}`, {
      token: root.accessToken,
    });
    assert.equal(dropped.status, 204, dropped.text);
    assert.deepEqual((await deadLetters()).deadLetters, []);

    // The audit log has all of it, with the admin who acted.
    let types: string[] = [];
    await eventually(
      "four outbox.* audit events",
      async () => {
        const { events } = await adminEvents(base, root, "limit=500");
        types = events.filter((e) => e.type.startsWith("outbox.")).map((e) => e.type);
        return types.length === 4;
      },
      { timeoutMs: WAIT_MS },
    );
    assert.deepEqual(types.sort(), [
      "outbox.dead_letter_dropped",
      "outbox.dead_letter_retried",
      "outbox.dead_lettered",
      "outbox.dead_lettered",
    ]);
    const retriedAudit = (await adminEvents(base, root, "type=outbox.dead_letter_retried")).events[0];
    assert.equal(retriedAudit.userId, root.user.id);
    assert.equal((retriedAudit.data as { deadLetterId: string }).deadLetterId, letter.id);
  });

  function note(message: string): void {
    process.stderr.write(`# ${message}\n`);
  }
});
