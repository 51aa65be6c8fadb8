/**
 * Notifications and unread counts end to end on one embedded node (SQLite, every service in one
 * process): mentions, direct messages and invites through chat's outbox into notify, per-room
 * levels, the live `notification` and `unread` socket events on every tab, the notification list
 * and its seen flags, and the room list's `unread` / `mentions` / `lastReadSeq`.
 *
 * Negative cases ("no notification for …") are checked after a barrier: a mention of the sentinel
 * user `zed` sent afterwards. chat's outbox is delivered in order, so once zed has that mention,
 * every earlier event has been applied.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import knexFactory from "knex";
import type { Message, Notification, Room } from "../../src/contracts/objects.js";
import { api, register, type Account } from "../support/accounts-helpers.js";
import { newClientMsgId, createRoom, sendRest } from "../support/chat-helpers.js";
import { expectAckError, expectError } from "../support/errors.js";
import { invite, myRooms, notifications, openDirect } from "../support/notify-helpers.js";
import { startNode, type NodeHandle } from "../support/processes.js";
import { freePort } from "../support/servers.js";
import { call, connectChat, Inbox, okData, type ChatSocket } from "../support/sockets.js";
import { eventually } from "../support/wait.js";

const WAIT_MS = 10_000;

describe("notifications and unread counts (embedded node)", () => {
  let dataDir: string;
  let node: NodeHandle;
  let base: string;
  let ann: Account, bob: Account, carol: Account, dave: Account, zed: Account;
  let general: Room;
  let dm: Room;
  let bobTabs: ChatSocket[] = [];
  /** What each of bob's tabs received. */
  let bobInboxes: Inbox[] = [];
  let barriers = 0;

  /** Waits until every event chat wrote so far has been applied by notify (see the file comment). */
  async function barrier(): Promise<void> {
    const sentinel = await sendRest(base, ann, general.id, `@zed barrier ${++barriers}`);
    await eventually(
      `zed's barrier mention ${barriers}`,
      async () => (await notifications(base, zed)).some((n) => n.messageId === sentinel.id),
      { timeoutMs: WAIT_MS },
    );
  }

  const forMessage = async (user: Account, message: Message): Promise<Notification[]> =>
    (await notifications(base, user)).filter((n) => n.messageId === message.id);

  /** Waits for exactly one notification of `kind` for `message`, and checks its fields. */
  async function expectOne(user: Account, message: Message, kind: Notification["kind"]): Promise<Notification> {
    await eventually(`${kind} for message`, async () => (await forMessage(user, message)).length > 0, {
      timeoutMs: WAIT_MS,
    });
    await barrier(); // nothing more comes for it
    const got = await forMessage(user, message);
    assert.equal(got.length, 1, `exactly one notification: ${JSON.stringify(got)}`);
    const [n] = got;
    assert.equal(n.kind, kind);
    assert.equal(n.roomId, message.roomId);
    assert.equal(n.fromUserId, message.userId);
    assert.equal(n.seen, false);
    assert.ok(Number.isInteger(n.id) && n.id > 0);
    assert.ok(Math.abs(Date.parse(n.createdAt) - Date.now()) < 60_000, n.createdAt);
    return n;
  }

  async function expectNone(users: Account[], message: Message): Promise<void> {
    await barrier();
    for (const user of users) {
      assert.deepEqual(await forMessage(user, message), [], `no notification for ${user.user.username}`);
    }
  }

  async function setLevel(user: Account, roomId: number, level: string): Promise<void> {
    const res = await api(base, "PUT", `/api/rooms/${roomId}/notifications`, {
      token: user.accessToken,
      body: { level },
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { roomId, level });
  }

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-notify-"));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    node = await startNode({
      env: { PORT: String(port), DATA_DIR: dataDir, TRANSPORTER: undefined, DATABASE_URL: undefined },
      ready: { http: port },
    });
    [ann, bob, carol, dave, zed] = await Promise.all(
      ["ann", "bob", "carol", "dave", "zed"].map((name) => register(base, name)),
    );
    // Two tabs of bob, open before anything happens to him.
    bobTabs = [await connectChat(base, bob.accessToken), await connectChat(base, bob.accessToken)];
    bobInboxes = bobTabs.map((s, i) => new Inbox(s, `bob's tab ${i + 1}`));
  });

  after(async () => {
    for (const s of bobTabs) s.close();
    await node?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("invites: `members` at room creation and POST /members → one `invite` each, from the inviter", async () => {
    general = await createRoom(base, ann, { name: "general", kind: "public", members: [bob.user.id, zed.user.id] });
    assert.equal(general.memberCount, 3);
    await invite(base, ann, general.id, dave);

    for (const user of [bob, zed, dave]) {
      await eventually("an invite", async () => (await notifications(base, user)).length > 0, { timeoutMs: WAIT_MS });
    }
    await barrier();
    for (const user of [bob, dave]) {
      const list = await notifications(base, user);
      assert.equal(list.length, 1, `${user.user.username}: ${JSON.stringify(list)}`);
      const [n] = list;
      assert.deepEqual(
        { kind: n.kind, roomId: n.roomId, messageId: n.messageId, fromUserId: n.fromUserId, seen: n.seen },
        { kind: "invite", roomId: general.id, messageId: null, fromUserId: ann.user.id, seen: false },
      );
    }
    assert.deepEqual(await notifications(base, ann), [], "the inviter gets nothing");
    assert.deepEqual(await notifications(base, carol), [], "nor does a bystander");

    // A private room: the owner invites.
    const secret = await createRoom(base, ann, { name: "secret", kind: "private" });
    await invite(base, ann, secret.id, carol);
    await eventually(
      "carol's invite to the private room",
      async () => (await notifications(base, carol)).some((n) => n.kind === "invite" && n.roomId === secret.id),
      { timeoutMs: WAIT_MS },
    );
  });

  it("the invite reached both of bob's tabs live as `notification`", async () => {
    const [rest] = await notifications(base, bob);
    for (const inbox of bobInboxes) {
      await inbox.waitFor("notification", () => true, 1, WAIT_MS);
      assert.deepEqual(inbox.of("notification"), [rest], "the same Notification object as the REST list");
    }
  });

  it("mentions: a member → one `mention`; a non-member, oneself, an unknown name → none", async () => {
    const toBob = await sendRest(base, ann, general.id, "hello @bob, welcome");
    const n = await expectOne(bob, toBob, "mention");
    assert.equal(n.messageId, toBob.id);

    const toCarol = await sendRest(base, ann, general.id, "@carol is not in this room");
    const toSelf = await sendRest(base, ann, general.id, "note to self @ann");
    const toGhost = await sendRest(base, ann, general.id, "is @ghost_user there? and @x?");
    await expectNone([carol, ann, bob, dave], toCarol);
    await expectNone([ann], toSelf);
    await expectNone([ann, bob, carol, dave], toGhost);

    // Several names, one repeated, mixed case, trailing punctuation: one per member named.
    const many = await sendRest(base, ann, general.id, "@Bob, @dave and @bob again. @carol.");
    await expectOne(bob, many, "mention");
    await expectOne(dave, many, "mention");
    assert.deepEqual(await forMessage(carol, many), []);
  });

  it("own messages never notify their author", async () => {
    const own = await sendRest(base, bob, general.id, "I am @bob and I mention @bob");
    await expectNone([bob], own);
    const reply = await sendRest(base, bob, general.id, "@ann see this");
    await expectOne(ann, reply, "mention");
    assert.deepEqual(await forMessage(bob, reply), []);
  });

  it("direct rooms: each message → `direct` for the other member only (not also a mention)", async () => {
    dm = await openDirect(base, ann, bob);
    assert.equal(dm.kind, "direct");
    const fromAnn = await sendRest(base, ann, dm.id, "psst @bob");
    await expectOne(bob, fromAnn, "direct");
    assert.deepEqual(await forMessage(ann, fromAnn), [], "nothing for the sender");

    const fromBob = await sendRest(base, bob, dm.id, "hi ann");
    await expectOne(ann, fromBob, "direct");
    assert.deepEqual(await forMessage(bob, fromBob), []);
    // No invite for opening a direct room.
    assert.ok(!(await notifications(base, bob)).some((x) => x.kind === "invite" && x.roomId === dm.id));
  });

  it('room levels: "none" silences mentions and directs; "mentions" keeps them; "all" again', async () => {
    const get = await api(base, "GET", `/api/rooms/${general.id}/notifications`, { token: bob.accessToken });
    assert.equal(get.status, 200, get.text);
    assert.deepEqual(get.body, { roomId: general.id, level: "all" }, "the default");

    await setLevel(bob, general.id, "none");
    await setLevel(bob, dm.id, "none");
    const again = await api(base, "GET", `/api/rooms/${general.id}/notifications`, { token: bob.accessToken });
    assert.deepEqual(again.body, { roomId: general.id, level: "none" });

    const muted = await sendRest(base, ann, general.id, "@bob you muted us");
    const mutedDm = await sendRest(base, ann, dm.id, "a quiet direct message");
    await expectNone([bob], muted);
    await expectNone([bob], mutedDm);
    // Someone else's level is their own: dave still hears about the same room.
    const both = await sendRest(base, ann, general.id, "@bob @dave");
    await expectOne(dave, both, "mention");
    assert.deepEqual(await forMessage(bob, both), []);

    await setLevel(bob, general.id, "mentions");
    await setLevel(bob, dm.id, "mentions");
    await expectOne(bob, await sendRest(base, ann, general.id, "@bob mentions level"), "mention");
    await expectOne(bob, await sendRest(base, ann, dm.id, "direct at mentions level"), "direct");

    await setLevel(bob, general.id, "all");
    await setLevel(bob, dm.id, "all");
    await expectOne(bob, await sendRest(base, ann, general.id, "@bob back to all"), "mention");
    await expectOne(bob, await sendRest(base, ann, dm.id, "back to all"), "direct");

    // Only for your own rooms, only the three levels.
    const secret = await createRoom(base, ann, { name: "not-bobs", kind: "private" });
    expectError(
      await api(base, "PUT", `/api/rooms/${secret.id}/notifications`, {
        token: bob.accessToken,
        body: { level: "none" },
      }),
      404,
      "NOT_FOUND",
    );
    const bad = await api(base, "PUT", `/api/rooms/${general.id}/notifications`, {
      token: bob.accessToken,
      body: { level: "loud" },
    });
    expectError(bad, 422, "VALIDATION_ERROR");
    expectError(
      await api(base, "PUT", `/api/rooms/${general.id}/notifications`, { body: { level: "all" } }),
      401,
      "UNAUTHORIZED",
    );
  });

  it("every notification of bob reached both tabs live, once each, newest last", async () => {
    const rest = await notifications(base, bob);
    const ids = rest.map((n) => n.id).reverse(); // REST is newest first
    for (const inbox of bobInboxes) {
      await inbox.waitFor("notification", () => true, ids.length, WAIT_MS);
      assert.deepEqual(
        inbox.of("notification").map((n) => n.id),
        ids,
      );
    }
    const kinds = rest.map((n) => n.kind).sort();
    assert.deepEqual([...new Set(kinds)], ["direct", "invite", "mention"]);
  });

  it("GET /api/notifications?unseen=true; POST /api/notifications/seen with ids, then with all", async () => {
    const all = await notifications(base, bob);
    assert.ok(all.length >= 6, `bob has ${all.length}`);
    assert.deepEqual(
      all.map((n) => n.id),
      [...all.map((n) => n.id)].sort((a, b) => b - a),
      "newest first",
    );
    assert.deepEqual(await notifications(base, bob, true), all, "all unseen so far");

    const limited = await api<{ notifications: Notification[] }>(base, "GET", "/api/notifications?limit=2", {
      token: bob.accessToken,
    });
    assert.deepEqual(
      limited.body.notifications.map((n) => n.id),
      all.slice(0, 2).map((n) => n.id),
    );

    const chosen = [all[0].id, all[2].id];
    const seen = await api(base, "POST", "/api/notifications/seen", { token: bob.accessToken, body: { ids: chosen } });
    assert.equal(seen.status, 204, seen.text);
    assert.equal(seen.text, "");
    const unseen = await notifications(base, bob, true);
    assert.deepEqual(
      unseen.map((n) => n.id),
      all.filter((n) => !chosen.includes(n.id)).map((n) => n.id),
    );
    const after = await notifications(base, bob);
    assert.deepEqual(
      after.filter((n) => n.seen).map((n) => n.id),
      chosen,
    );

    // Another user's ids are not the caller's to mark.
    const annsBefore = await notifications(base, ann, true);
    assert.ok(annsBefore.length > 0);
    await api(base, "POST", "/api/notifications/seen", {
      token: bob.accessToken,
      body: { ids: annsBefore.map((n) => n.id) },
    });
    assert.deepEqual(await notifications(base, ann, true), annsBefore);

    const allSeen = await api(base, "POST", "/api/notifications/seen", { token: bob.accessToken, body: { all: true } });
    assert.equal(allSeen.status, 204);
    assert.deepEqual(await notifications(base, bob, true), []);
    assert.ok((await notifications(base, bob)).every((n) => n.seen));
    assert.deepEqual(await notifications(base, ann, true), annsBefore, "ann's are untouched");

    expectError(
      await api(base, "POST", "/api/notifications/seen", { token: bob.accessToken, body: {} }),
      422,
      "VALIDATION_ERROR",
    );
    expectError(await api(base, "GET", "/api/notifications"), 401, "UNAUTHORIZED");
  });

  it("GET /api/rooms `unread` / `mentions` / `lastReadSeq` through sends, room:read and new messages; `unread` on both tabs", async () => {
    const room = await createRoom(base, ann, { name: "counts", kind: "public", members: [bob.user.id, zed.user.id] });
    for (const inbox of bobInboxes) {
      await inbox.waitFor("notification", (n) => n.kind === "invite" && n.roomId === room.id, 1, WAIT_MS);
      inbox.clear("unread");
    }
    const view = async (who: Account) => {
      const r = (await myRooms(base, who)).get(room.id);
      assert.ok(r, "the room is in the list");
      return { lastSeq: r.lastSeq, unread: r.unread, mentions: r.mentions, lastReadSeq: r.lastReadSeq };
    };
    assert.deepEqual(await view(bob), { lastSeq: 0, unread: 0, mentions: 0, lastReadSeq: 0 });

    const m1 = await sendRest(base, ann, room.id, "one for @bob");
    await sendRest(base, ann, room.id, "two");
    const m3 = await sendRest(base, ann, room.id, "three for @bob");
    await expectOne(bob, m1, "mention");
    await expectOne(bob, m3, "mention");
    assert.deepEqual(await view(bob), { lastSeq: 3, unread: 3, mentions: 2, lastReadSeq: 0 });
    assert.deepEqual(await view(ann), { lastSeq: 3, unread: 0, mentions: 0, lastReadSeq: 3 }, "sending moved ann's");

    // Each new mention announced the unread state to every tab of bob.
    for (const inbox of bobInboxes) {
      await inbox.waitFor("unread", (u) => u.mentions === 2, 1, WAIT_MS);
      assert.deepEqual(inbox.of("unread").at(-1), { roomId: room.id, unread: 3, mentions: 2, lastReadSeq: 0 });
      inbox.clear("unread");
    }

    // room:read on one tab → the state in the ack, and `unread` on both tabs.
    const [tab1, tab2] = bobTabs;
    const read2 = okData(await call(tab1, "room:read", { roomId: room.id, seq: 2 }), "room:read 2");
    assert.deepEqual(read2, { roomId: room.id, unread: 1, mentions: 1, lastReadSeq: 2 });
    for (const inbox of bobInboxes) {
      await inbox.waitFor("unread", () => true, 1, WAIT_MS);
      assert.deepEqual(inbox.of("unread"), [read2]);
      inbox.clear("unread");
    }
    assert.deepEqual(await view(bob), { lastSeq: 3, unread: 1, mentions: 1, lastReadSeq: 2 });

    // Only forward.
    const back = okData(await call(tab2, "room:read", { roomId: room.id, seq: 1 }), "room:read 1");
    assert.deepEqual(back, read2, "an older seq does not move the marker back");
    assert.equal((await view(bob)).lastReadSeq, 2);

    // POST /api/rooms/:id/read works the same.
    const rest = await api(base, "POST", `/api/rooms/${room.id}/read`, { token: bob.accessToken, body: { seq: 3 } });
    assert.equal(rest.status, 204, rest.text);
    const caughtUp = { roomId: room.id, unread: 0, mentions: 0, lastReadSeq: 3 };
    for (const inbox of bobInboxes) {
      await inbox.waitFor("unread", (u) => u.lastReadSeq === 3, 1, WAIT_MS);
      assert.deepEqual(inbox.of("unread").at(-1), caughtUp);
    }
    assert.deepEqual(await view(bob), { lastSeq: 3, unread: 0, mentions: 0, lastReadSeq: 3 });
    // Past the end: clamped to the last message.
    const beyond = okData(await call(tab1, "room:read", { roomId: room.id, seq: 99 }), "room:read 99");
    assert.deepEqual(beyond, caughtUp);

    // New messages after the marker count again.
    await sendRest(base, ann, room.id, "four");
    const m5 = await sendRest(base, ann, room.id, "five @bob");
    await expectOne(bob, m5, "mention");
    assert.deepEqual(await view(bob), { lastSeq: 5, unread: 2, mentions: 1, lastReadSeq: 3 });

    // Bob's own message moves his marker past everything.
    const mine = okData(
      await call(tab2, "message:send", { roomId: room.id, body: "read them", clientMsgId: newClientMsgId() }),
      "bob's send",
    );
    assert.equal(mine.seq, 6);
    assert.deepEqual(await view(bob), { lastSeq: 6, unread: 0, mentions: 0, lastReadSeq: 6 });
    assert.deepEqual(await view(ann), { lastSeq: 6, unread: 1, mentions: 0, lastReadSeq: 5 });

    // Not a member: no marker to move.
    const carolTab = await connectChat(base, carol.accessToken);
    try {
      const ack = await call(carolTab, "room:read", { roomId: room.id, seq: 1 }, WAIT_MS);
      expectAckError(ack, "FORBIDDEN", "room:read by a non-member");
    } finally {
      carolTab.close();
    }
  });

  it("exactly once: no duplicate notifications, every event marked processed, chat's outbox drained", async () => {
    for (const user of [ann, bob, carol, dave, zed]) {
      const list = await notifications(base, user);
      const keys = list.map((n) => `${n.kind}:${n.roomId}:${n.messageId}`);
      assert.equal(new Set(keys).size, keys.length, `${user.user.username} has duplicates: ${keys.join(" ")}`);
    }
    const db = knexFactory({
      client: "better-sqlite3",
      connection: { filename: path.join(dataDir, "nochat.sqlite"), options: { readonly: true } },
      useNullAsDefault: true,
    });
    const count = async (sql: string): Promise<number> => Number((await db.raw(sql))[0].n);
    try {
      await eventually(
        "an empty chat_outbox",
        async () => (await count("select count(*) as n from chat_outbox")) === 0,
        { timeoutMs: WAIT_MS },
      );
      const dupes = await db.raw(
        "select user_id, kind, message_id, count(*) as n from notifications where message_id is not null " +
          "group by user_id, kind, message_id having count(*) > 1",
      );
      assert.deepEqual(dupes, []);
      // Events that notified someone are remembered once each; those that notified nobody need not be.
      const processed = await count("select count(*) as n from notify_processed");
      const withEffects = await count("select count(distinct event_id) as n from notifications");
      assert.ok(withEffects > 0);
      assert.equal(processed, withEffects, `${processed} events remembered, ${withEffects} with notifications`);
    } finally {
      await db.destroy();
    }
  });
});
