/**
 * The durable path for domain events: a transactional outbox.
 *
 * A producing service (auth, users, chat) writes its events into its own outbox table in the same
 * transaction as the change, so an event exists if and only if the change committed. A relay in
 * the producer delivers them in batches to each consumer's `ingest` action (notify, log); a
 * Moleculer call that returns is the consumer's acknowledgement, and only then is the row deleted.
 * Failures — consumer down, RabbitMQ unreachable (the AMQP transporter drops packets silently, so
 * the call times out), a crash between delivery and delete — lead to a retry with backoff, never a
 * loss. Consumers deduplicate by event id, so at-least-once delivery gives exactly-once effects.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Knex } from "knex";
import type { DomainEvent, DomainEventType } from "../contracts/domain-events.js";
import { consumersOf } from "../contracts/domain-events.js";
import { config } from "../config.js";
import type { Migration, Sql } from "./sql.js";

/** Carried from the request into the domain events a write produces. */
export interface Trace {
  requestId: string | null;
}

export const outboxTable = (owner: string): string => `${owner}_outbox`;

export function outboxMigration(owner: string, name = "900_outbox"): Migration {
  return {
    name,
    async up(db) {
      await db.schema.createTable(outboxTable(owner), (t) => {
        t.bigIncrements("id").primary();
        t.string("event_id", 36).notNullable().unique();
        t.string("type", 64).notNullable();
        t.text("payload", "mediumtext").notNullable();
        t.bigInteger("created_at").notNullable();
        t.string("request_id", 64).nullable();
        // Consumers still to acknowledge, comma separated; the row goes when none is left.
        t.string("pending", 128).notNullable();
        t.integer("attempts").notNullable().defaultTo(0);
        t.bigInteger("next_attempt_at").notNullable().index();
        // A relay leases rows before delivering, so two producer instances do not send the same batch.
        t.string("leased_by", 128).nullable();
        t.bigInteger("lease_until").nullable();
      });
    },
  };
}

/** A stable UUID-shaped id for a key. */
function idFromKey(key: string): string {
  const h = createHash("sha256").update(key).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export interface NewEvent<T extends DomainEventType = DomainEventType> {
  /** For events several nodes may record (cluster events): the same key gives the same id, stored once. */
  idKey?: string;
  /** When it happened (epoch ms), if earlier than the write — e.g. buffered access records. */
  at?: number;
  type: T;
  data: Extract<DomainEvent, { type: T }>["data"];
  requestId?: string | null;
}

/** Writes events in the caller's transaction. Returns them as they will be delivered. */
export async function writeOutbox(
  trx: Knex | Knex.Transaction,
  owner: string,
  events: NewEvent[],
): Promise<DomainEvent[]> {
  if (events.length === 0) return [];
  const now = Date.now();
  const full = events.map(
    (e) =>
      ({
        id: e.idKey ? idFromKey(e.idKey) : randomUUID(),
        type: e.type,
        ts: new Date(e.at ?? now).toISOString(),
        source: owner,
        nodeId: config().nodeID,
        requestId: e.requestId ?? null,
        data: e.data,
      }) as DomainEvent,
  );
  await trx(outboxTable(owner))
    .insert(
      full.map((e) => ({
        event_id: e.id,
        type: e.type,
        payload: JSON.stringify(e),
        created_at: now,
        request_id: e.requestId,
        pending: consumersOf(e.type).join(","),
        next_attempt_at: now,
      })),
    )
    .onConflict("event_id")
    .ignore();
  return full;
}

interface OutboxRow {
  id: number | string;
  event_id: string;
  payload: string;
  pending: string;
  attempts: number;
  leased_by: string | null;
  lease_until: number | null;
}

export type Deliver = (consumer: string, events: DomainEvent[]) => Promise<void>;

export interface RelayOptions {
  batchSize?: number;
  pollMs?: number;
  leaseMs?: number;
  maxBackoffMs?: number;
  onError?: (consumer: string, err: unknown) => void;
}

/**
 * Delivers a producer's outbox. `kick()` after a commit delivers at once; a poll picks up retries
 * and rows left by a crashed instance.
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  /** Consumers that failed recently: how often in a row, and until when they are left alone. */
  private readonly cooldown = new Map<string, { streak: number; until: number }>();
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly maxBackoffMs: number;

  constructor(
    private readonly db: Sql,
    private readonly owner: string,
    private readonly nodeId: string,
    private readonly deliver: Deliver,
    private readonly opts: RelayOptions = {},
  ) {
    this.batchSize = opts.batchSize ?? 200;
    this.pollMs = opts.pollMs ?? 1000;
    this.leaseMs = opts.leaseMs ?? 30_000;
    this.maxBackoffMs = opts.maxBackoffMs ?? 10_000;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops polling and waits for a delivery in flight. Undelivered rows stay for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** New rows were committed: deliver now rather than at the next poll. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.drain().finally(() => {
        this.running = undefined;
        const more = this.again;
        this.again = false;
        this.schedule(more ? 0 : this.pollMs);
      });
    }, ms);
    this.timer.unref();
  }

  /** Delivers batches until nothing is due. */
  private async drain(): Promise<void> {
    for (;;) {
      const delivered = await this.deliverBatch().catch((err: unknown) => {
        this.opts.onError?.("outbox", err);
        return 0;
      });
      if (delivered < this.batchSize || this.stopped) return;
    }
  }

  /** One batch: lease, deliver per consumer, settle. Returns the number of rows leased. */
  async deliverBatch(now = Date.now()): Promise<number> {
    const table = outboxTable(this.owner);
    const due = await this.db<OutboxRow>(table)
      .where("next_attempt_at", "<=", now)
      .andWhere((q) => q.whereNull("lease_until").orWhere("lease_until", "<", now))
      .orderBy("id")
      .limit(this.batchSize)
      .select("id");
    if (due.length === 0) return 0;
    const ids = due.map((r) => r.id);
    await this.db(table)
      .whereIn("id", ids)
      // Still due: another relay may have tried these rows (and set their backoff) since the select.
      .andWhere("next_attempt_at", "<=", now)
      .andWhere((q) => q.whereNull("lease_until").orWhere("lease_until", "<", now))
      .update({ leased_by: this.nodeId, lease_until: now + this.leaseMs });
    const rows = await this.db<OutboxRow>(table)
      .whereIn("id", ids)
      .andWhere({ leased_by: this.nodeId })
      .andWhere("lease_until", ">", now)
      .orderBy("id")
      .select("id", "event_id", "payload", "pending", "attempts", "leased_by", "lease_until");
    if (rows.length === 0) return due.length;

    const byConsumer = new Map<string, OutboxRow[]>();
    for (const row of rows) {
      for (const consumer of row.pending.split(",").filter(Boolean)) {
        // A consumer that just failed is left alone until its backoff ends, so a slow failure (a log
        // whose MongoDB is down) does not hold up the others batch after batch.
        if ((this.cooldown.get(consumer)?.until ?? 0) > now) continue;
        byConsumer.set(consumer, [...(byConsumer.get(consumer) ?? []), row]);
      }
    }
    const acked = new Map<string, Set<string>>(); // event id → consumers that acknowledged
    await Promise.all(
      [...byConsumer].map(async ([consumer, consumerRows]) => {
        try {
          await this.deliver(
            consumer,
            consumerRows.map((r) => JSON.parse(r.payload) as DomainEvent),
          );
          this.cooldown.delete(consumer);
          for (const r of consumerRows) acked.set(r.event_id, (acked.get(r.event_id) ?? new Set()).add(consumer));
        } catch (err) {
          const streak = (this.cooldown.get(consumer)?.streak ?? 0) + 1;
          const backoff = Math.min(this.maxBackoffMs, 500 * 2 ** Math.min(streak, 10));
          this.cooldown.set(consumer, { streak, until: now + backoff });
          this.opts.onError?.(consumer, err);
        }
      }),
    );
    await this.settle(rows, acked, now);
    return due.length;
  }

  /** Deletes the rows every consumer has; the rest wait for their consumers' backoff, a few statements in all. */
  private async settle(rows: OutboxRow[], acked: Map<string, Set<string>>, now: number): Promise<void> {
    const table = outboxTable(this.owner);
    const done: (number | string)[] = [];
    const waiting = new Map<string, (number | string)[]>(); // what is still pending → row ids
    for (const row of rows) {
      const ok = acked.get(row.event_id) ?? new Set();
      const left = row.pending.split(",").filter((c) => c && !ok.has(c));
      if (left.length === 0) done.push(row.id);
      else waiting.set(left.join(","), [...(waiting.get(left.join(",")) ?? []), row.id]);
    }
    for (const [pending, ids] of waiting) {
      const retryAt = Math.max(now + 100, ...pending.split(",").map((c) => this.cooldown.get(c)?.until ?? now));
      await this.db(table)
        .whereIn("id", ids)
        .update({
          pending,
          attempts: this.db.raw("attempts + 1"),
          next_attempt_at: retryAt,
          leased_by: null,
          lease_until: null,
        });
    }
    if (done.length > 0) await this.db(table).whereIn("id", done).delete();
  }

  /** Rows still waiting (for tests and metrics). */
  async backlog(): Promise<number> {
    const row = await this.db(outboxTable(this.owner)).count<{ n: number | string }[]>({ n: "*" }).first();
    return Number(row?.n ?? 0);
  }
}
