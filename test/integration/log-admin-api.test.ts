/**
 * The audit log's admin API (on the embedded store and on MongoDB/FerretDB): newest first,
 * filters, `before` pages without gaps or duplicates, counts per type and hour, admins only.
 * The scenario that fills it: test/support/log-stores.ts.
 */
import assert from "node:assert/strict";
import { before, it } from "node:test";
import type { AppEvent } from "../../src/contracts/objects.js";
import { api, type ApiResponse } from "../support/accounts-helpers.js";
import { expectError } from "../support/errors.js";
import { DAY, HOUR, onEachLogStore } from "../support/log-stores.js";
import { sleep } from "../support/wait.js";

onEachLogStore("audit log: the admin API", (log) => {
  before(async () => {
    await log.runActivity();
    await log.awaitActivityRecorded();
  });

  it("queries: newest first; filters by type, userId, roomId, from, to; `before` pages without gaps or duplicates", async () => {
    const { base, accounts, room, admin, all } = log;
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
    const { base, message, startedAt, admin, all } = log;
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
    const { base, accounts } = log;
    for (const [method, urlPath] of [
      ["GET", "/api/admin/events"],
      ["GET", "/api/admin/events/stats"],
      ["POST", "/api/admin/events/purge"],
    ] as const) {
      expectError(await api(base, method, urlPath, { token: accounts.dave.accessToken }), 403, "FORBIDDEN", urlPath);
      expectError(await api(base, method, urlPath), 401, "UNAUTHORIZED", urlPath);
    }
  });
});
