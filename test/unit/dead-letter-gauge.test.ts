/**
 * outboxMixin in a real broker (in-process, SQLite in a temp DATA_DIR, metrics on): a producer
 * service's refused event is dead-lettered through `<consumer>.ingest`, the gauge
 * `nochat_dead_letters{producer}` follows the table, and the admin-only actions list, retry and
 * drop (guarded by the permission middleware).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { Errors, ServiceBroker, type Context } from "moleculer";
import type { DomainEvent } from "../../src/contracts/domain-events.js";
import type { Principal } from "../../src/contracts/objects.js";
import {
  DEAD_LETTER_GAUGE,
  outboxMixin,
  type ProducerDeadLetters,
  type WithOutbox,
} from "../../src/infra/outbox-mixin.js";
import { outboxMigration, type DeadLetter } from "../../src/infra/outbox.js";
import { PermissionMiddleware } from "../../src/infra/permissions.js";
import { sqlMixin } from "../../src/infra/sql-mixin.js";
import { rejectsWith } from "../support/errors.js";
import { eventually } from "../support/wait.js";

const admin: Principal = { id: 1, username: "boss", roles: ["admin"], sessionId: "s-boss" };
const user: Principal = { id: 2, username: "ann", roles: [], sessionId: "s-ann" };

/** The relay retries every 20 ms here: poll often. */
const POLL = { timeoutMs: 5_000, intervalMs: 20 };

describe("dead letters through outboxMixin (in-process broker, metrics on)", () => {
  let dataDir: string;
  let broker: ServiceBroker;
  const received: DomainEvent[] = [];
  let accept = false;

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-gauge-"));
    broker = new ServiceBroker({
      nodeID: "unit-gauge",
      transporter: null,
      logger: false,
      metrics: { enabled: true, reporter: [] },
      middlewares: [PermissionMiddleware],
    });
    broker.createService({
      name: "producer",
      mixins: [outboxMixin("producer"), sqlMixin("producer", [outboxMigration("producer")])],
      settings: { dataDir, outbox: { maxAttempts: 2, retryMs: 20 } },
      actions: {
        write: {
          async handler(this: WithOutbox, ctx: Context<{ n: number }>) {
            const [e] = await this.publish([
              { type: "user.updated", requestId: null, data: { userId: ctx.params.n, fields: ["displayName"] } },
            ]);
            return e.id;
          },
        },
      },
    });
    // The consumer of user.updated: refuses userId 13 until told otherwise.
    broker.createService({
      name: "log",
      actions: {
        ingest: {
          handler(ctx: Context<{ events: DomainEvent[] }>) {
            const bad = ctx.params.events.find((e) => e.type === "user.updated" && e.data.userId === 13 && !accept);
            if (bad) throw new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", []);
            received.push(...ctx.params.events);
            return { stored: ctx.params.events.length };
          },
        },
      },
    });
    await broker.start();
  });

  after(async () => {
    await broker?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const gauge = (): number | null =>
    (broker.metrics.getMetric(DEAD_LETTER_GAUGE)?.get({ producer: "producer" })?.value as number | undefined) ?? null;
  const list = (): Promise<ProducerDeadLetters> =>
    broker.call("producer.outboxDeadLetters", {}, { meta: { user: admin } });

  it("a refused event is dead-lettered, counted by the gauge, listed, retried and dropped (admin only)", async () => {
    assert.equal(gauge(), 0, "registered and set at start");
    const good = await broker.call<string, { n: number }>("producer.write", { n: 1 });
    const poison = await broker.call<string, { n: number }>("producer.write", { n: 13 });
    const after = await broker.call<string, { n: number }>("producer.write", { n: 2 });
    await eventually("the poison event dead-lettered", async () => (await list()).count === 1, POLL);
    assert.equal(gauge(), 1);
    const ids = received.map((e) => e.id);
    assert.ok(ids.includes(good) && ids.includes(after) && !ids.includes(poison), "the others flowed");
    const [letter] = (await list()).deadLetters;
    assert.equal(letter.eventId, poison);
    assert.equal(letter.attempts, 2);
    assert.match(letter.lastError, /^ValidationError/);

    await rejectsWith(broker.call("producer.outboxDeadLetters", {}, { meta: { user } }), "FORBIDDEN", "not an admin");
    await rejectsWith(broker.call("producer.outboxDropDeadLetter", { id: letter.id }), "UNAUTHORIZED", "no principal");

    accept = true;
    const retried = await broker.call<DeadLetter | null, { id: string }>(
      "producer.outboxRetryDeadLetter",
      { id: letter.id },
      { meta: { user: admin } },
    );
    assert.equal(retried?.eventId, poison);
    assert.equal(gauge(), 0);
    await eventually("the retried event delivered", () => received.some((e) => e.id === poison), POLL);
    const audit = await eventually(
      "the retry audited",
      () => received.find((e) => e.type === "outbox.dead_letter_retried"),
      POLL,
    );
    assert.deepEqual(audit.data, {
      deadLetterId: letter.id,
      producer: "producer",
      consumer: "log",
      eventId: poison,
      eventType: "user.updated",
      userId: admin.id,
    });

    // Another one, dropped.
    accept = false;
    const second = await broker.call<string, { n: number }>("producer.write", { n: 13 });
    await eventually("the second dead letter", async () => (await list()).count === 1, POLL);
    const [other] = (await list()).deadLetters;
    assert.equal(other.eventId, second);
    assert.equal(gauge(), 1);
    const dropped = await broker.call<DeadLetter | null, { id: string }>(
      "producer.outboxDropDeadLetter",
      { id: other.id },
      { meta: { user: admin } },
    );
    assert.equal(dropped?.eventId, second);
    assert.equal(gauge(), 0);
    assert.equal(
      await broker.call("producer.outboxDropDeadLetter", { id: other.id }, { meta: { user: admin } }),
      null,
      "gone",
    );
  });
});
