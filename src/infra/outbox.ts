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
 *
 * Two kinds of failure are told apart (isTransientDeliveryError): a consumer that is *down*
 * (UNAVAILABLE, timeout, service not found…) is left alone for a while as a whole, and nothing
 * counts against its events; a consumer that *refuses* an event (a validation error, a bug) has
 * that event isolated — the batch is split until the failing events are found (or the consumer
 * names them in its answer), the others are acknowledged, and each failing event is retried alone
 * with its own exponential backoff, per consumer. After `maxAttempts` refusals it moves to the
 * producer's dead-letter table (`<owner>_dead_letters`) with its last error, so one poison event
 * never holds up the rest; an operator lists, retries or drops dead letters (audited).
 */
import { createHash, randomUUID } from "node:crypto";
import type { Knex } from "knex";
import type { DomainEvent, DomainEventType } from "../contracts/domain-events.js";
import { consumersOf } from "../contracts/domain-events.js";
import { databaseUnavailable } from "../errors.js";
import { migrate, type Migration, type Sql } from "./sql.js";

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

export const deadLetterTable = (owner: string): string => `${owner}_dead_letters`;

/**
 * Later changes to the outbox schema, tracked in their own table (`migrations_<owner>_outbox`) so
 * that every producer gets them from outboxMixin without touching its own migration list.
 */
export function outboxUpgrades(owner: string): Migration[] {
  return [
    {
      name: "001_dead_letters",
      async up(db) {
        await db.schema.alterTable(outboxTable(owner), (t) => {
          // Per consumer that refused the event: { attempts, nextAt, firstAt, lastAt, error } (JSON).
          t.text("failures").nullable();
        });
        await db.schema.createTable(deadLetterTable(owner), (t) => {
          t.string("id", 36).primary();
          t.string("event_id", 36).notNullable();
          t.string("consumer", 32).notNullable();
          t.string("type", 64).notNullable();
          t.text("payload", "mediumtext").notNullable();
          t.string("request_id", 64).nullable();
          t.integer("attempts").notNullable();
          t.text("last_error").notNullable();
          t.bigInteger("first_failed_at").notNullable();
          t.bigInteger("last_failed_at").notNullable();
          t.unique(["event_id", "consumer"]);
        });
      },
    },
  ];
}

/** Runs outboxUpgrades (after the service's own migrations, which create the outbox table). */
export async function migrateOutbox(db: Sql, owner: string): Promise<void> {
  await migrate(db, `${owner}_outbox`, outboxUpgrades(owner));
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

/**
 * A producer's outbox, as its stores use it: `write(trx, events)` puts the events in the caller's
 * transaction and wakes the producer's relay once that transaction has committed (at once when
 * written outside one), so no caller has to remember to.
 */
export class Outbox {
  private wake: () => void = () => undefined;

  constructor(
    readonly owner: string,
    readonly nodeId: string,
  ) {}

  /** What to call once written events are committed: the relay's kick (outboxMixin). */
  onCommitted(wake: () => void): void {
    this.wake = wake;
  }

  async write(db: Knex | Knex.Transaction, events: NewEvent[]): Promise<DomainEvent[]> {
    const written = await writeOutbox(db, this.owner, events, this.nodeId);
    if (written.length === 0) return written;
    const trx = db as Knex.Transaction;
    // A rolled-back transaction wrote nothing to deliver; its rejection is the caller's to handle.
    if (trx.isTransaction)
      trx.executionPromise.then(
        () => this.wake(),
        () => undefined,
      );
    else this.wake();
    return written;
  }
}

/** Writes events in the caller's transaction. Returns them as they will be delivered. */
export async function writeOutbox(
  trx: Knex | Knex.Transaction,
  owner: string,
  events: NewEvent[],
  nodeId: string,
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
        nodeId,
        requestId: e.requestId ?? null,
        data: e.data,
      }) as DomainEvent,
  );
  const rows = full.map((e) => ({
    event_id: e.id,
    type: e.type,
    payload: JSON.stringify(e),
    created_at: now,
    request_id: e.requestId,
    pending: consumersOf(e.type).join(","),
    next_attempt_at: now,
  }));
  // At most 200 rows a statement: SQLite refuses a multi-row insert of more than 500.
  for (let i = 0; i < rows.length; i += 200) {
    await trx(outboxTable(owner))
      .insert(rows.slice(i, i + 200))
      .onConflict("event_id")
      .ignore();
  }
  return full;
}

interface OutboxRow {
  id: number | string;
  event_id: string;
  type: string;
  payload: string;
  request_id: string | null;
  pending: string;
  attempts: number;
  failures: string | null;
  leased_by: string | null;
  lease_until: number | null;
}

/** One consumer's refusals of one event. */
export interface Failure {
  attempts: number;
  /** When the event is next offered to this consumer (epoch ms). */
  nextAt: number;
  firstAt: number;
  lastAt: number;
  error: string;
}
type Failures = Record<string, Failure>;

/**
 * What a consumer may answer: the events it refused (each with its error), while the others of the
 * batch were applied. A consumer that throws instead has the batch split by the relay.
 */
export interface DeliveryReport {
  failed?: { id: string; error: string }[];
}

export type Deliver = (consumer: string, events: DomainEvent[]) => Promise<DeliveryReport | void>;

/** A dead-lettered event as operators see it. */
export interface DeadLetter {
  id: string;
  /** The producing service (whose outbox it came from). */
  producer: string;
  consumer: string;
  eventId: string;
  type: string;
  requestId: string | null;
  attempts: number;
  lastError: string;
  firstFailedAt: string;
  lastFailedAt: string;
  event: DomainEvent;
}

export interface RelayOptions {
  batchSize?: number;
  pollMs?: number;
  leaseMs?: number;
  /** Longest wait for a consumer that is down (default 10 s). */
  maxBackoffMs?: number;
  /** Refusals of one event by one consumer before it is dead-lettered (default 8). */
  maxAttempts?: number;
  /** First retry of a refused event after this; doubles with each refusal (default 1 s). */
  retryBaseMs?: number;
  /** Longest wait between two tries of a refused event (default 60 s). */
  maxRetryMs?: number;
  /** Tells "the consumer is down" (default: isTransientDeliveryError) from "it refused this event". */
  isTransient?: (err: unknown) => boolean;
  onError?: (consumer: string, err: unknown) => void;
  /** An event was moved to the dead-letter table. */
  onDeadLetter?: (deadLetter: DeadLetter) => void;
}

/** Error names that mean "the consumer (or the bus, or something it needs) is not there now". */
const TRANSIENT_NAMES = new Set([
  "ServiceNotFoundError",
  "ServiceNotAvailableError",
  "RequestTimeoutError",
  "RequestRejectedError",
  "RequestSkippedError",
  "QueueIsFullError",
  "BrokerDisconnectedError",
  "GracefulStopTimeoutError",
  // log.ingest's buffer is full: MongoDB is slow or away.
  "BufferFullError",
]);

/**
 * True when a delivery failed because the consumer, the bus or a store is unavailable: waiting is
 * the cure, and such failures never count towards dead-lettering. Anything else — a validation
 * error, a bug in a consumer — is the event's own problem.
 */
export function isTransientDeliveryError(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  const e = err as { name?: unknown; type?: unknown; retryable?: unknown };
  if (e.type === "UNAVAILABLE" || e.retryable === true) return true;
  if (typeof e.name === "string" && TRANSIENT_NAMES.has(e.name)) return true;
  return databaseUnavailable(err) !== null;
}

/** A failure as stored and shown: name, message and data (field errors), bounded. */
export function describeFailure(err: unknown): string {
  if (!err || typeof err !== "object") return String(err).slice(0, 2000);
  const e = err as { name?: unknown; message?: unknown; type?: unknown; data?: unknown };
  let text = `${typeof e.name === "string" ? e.name : "Error"}: ${typeof e.message === "string" ? e.message : ""}`;
  if (typeof e.type === "string" && e.type) text += ` [${e.type}]`;
  if (e.data !== undefined && e.data !== null) {
    try {
      text += ` ${JSON.stringify(e.data)}`;
    } catch {
      // data that does not serialize adds nothing
    }
  }
  return text.slice(0, 2000);
}

function parseFailures(raw: string | null): Failures {
  if (!raw) return {};
  try {
    return JSON.parse(raw) as Failures;
  } catch {
    return {};
  }
}

const splitPending = (pending: string): string[] => pending.split(",").filter(Boolean);

/** What one consumer did with the rows offered to it this round. */
interface Outcome {
  acked: Set<string>; // event ids
  refused: Map<string, string>; // event id → error
}

/**
 * Delivers a producer's outbox. `kick()` after a commit delivers at once; a poll picks up retries
 * and rows left by a crashed instance.
 *
 * Order: each consumer receives events in outbox order (oldest first) in every batch, and while a
 * consumer is down nothing overtakes anything. An event a consumer *refused* is retried alone, so
 * later events overtake it (that is the point: they are not held hostage); no consumer relies on
 * order across events (notify applies each event on its own, the log sorts by time).
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  /** Consumers that were down recently: how often in a row, and until when they are left alone. */
  private readonly cooldown = new Map<string, { streak: number; until: number }>();
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private readonly maxRetryMs: number;
  private readonly isTransient: (err: unknown) => boolean;

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
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 8);
    this.retryBaseMs = opts.retryBaseMs ?? 1_000;
    this.maxRetryMs = opts.maxRetryMs ?? 60_000;
    this.isTransient = opts.isTransient ?? isTransientDeliveryError;
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
      .select(
        "id",
        "event_id",
        "type",
        "payload",
        "request_id",
        "pending",
        "attempts",
        "failures",
        "leased_by",
        "lease_until",
      );
    if (rows.length === 0) return due.length;

    // Per consumer: the rows it has not refused yet go in one batch; rows it refused before and
    // whose retry is due go alone, after it.
    const byConsumer = new Map<string, { fresh: OutboxRow[]; retry: OutboxRow[] }>();
    for (const row of rows) {
      const failures = parseFailures(row.failures);
      for (const consumer of splitPending(row.pending)) {
        // A consumer that is down is left alone until its backoff ends, so a slow failure (a log
        // whose MongoDB is down) does not hold up the others batch after batch.
        if ((this.cooldown.get(consumer)?.until ?? 0) > now) continue;
        const failure = failures[consumer];
        if (failure && failure.nextAt > now) continue;
        const lists = byConsumer.get(consumer) ?? { fresh: [], retry: [] };
        byConsumer.set(consumer, lists);
        (failure ? lists.retry : lists.fresh).push(row);
      }
    }
    const outcomes = new Map<string, Outcome>();
    await Promise.all(
      [...byConsumer].map(async ([consumer, { fresh, retry }]) => {
        const outcome: Outcome = { acked: new Set(), refused: new Map() };
        outcomes.set(consumer, outcome);
        for (const group of [fresh, ...retry.map((r) => [r])]) {
          if (group.length === 0) continue;
          if ((await this.offer(consumer, group, outcome, now)) === "down") break;
        }
      }),
    );
    await this.settle(rows, outcomes, now);
    return due.length;
  }

  /**
   * Delivers `rows` to `consumer`. A refusal of a batch splits it in halves, down to single events,
   * so the good ones are acknowledged and the refused ones found (a few calls for one poison event
   * among hundreds). "down": the consumer is unavailable; the rest of this round is not offered.
   */
  private async offer(consumer: string, rows: OutboxRow[], outcome: Outcome, now: number): Promise<"ok" | "down"> {
    try {
      const report = await this.deliver(
        consumer,
        rows.map((r) => JSON.parse(r.payload) as DomainEvent),
      );
      this.cooldown.delete(consumer);
      const refused = new Map((report?.failed ?? []).map((f) => [f.id, String(f.error).slice(0, 2000)]));
      for (const r of rows) {
        const error = refused.get(r.event_id);
        if (error === undefined) outcome.acked.add(r.event_id);
        else outcome.refused.set(r.event_id, error);
      }
      if (refused.size > 0) this.opts.onError?.(consumer, new Error(`refused ${refused.size} event(s)`));
      return "ok";
    } catch (err) {
      if (this.isTransient(err)) {
        const streak = (this.cooldown.get(consumer)?.streak ?? 0) + 1;
        const backoff = Math.min(this.maxBackoffMs, 500 * 2 ** Math.min(streak, 10));
        this.cooldown.set(consumer, { streak, until: now + backoff });
        this.opts.onError?.(consumer, err);
        return "down";
      }
      if (rows.length === 1) {
        outcome.refused.set(rows[0].event_id, describeFailure(err));
        this.opts.onError?.(consumer, err);
        return "ok";
      }
      const half = Math.ceil(rows.length / 2);
      if ((await this.offer(consumer, rows.slice(0, half), outcome, now)) === "down") return "down";
      return this.offer(consumer, rows.slice(half), outcome, now);
    }
  }

  /**
   * Deletes the rows every consumer has; records refusals (backoff per event and consumer) and moves
   * an event a consumer refused `maxAttempts` times to the dead letters; the rest wait for their
   * consumers' backoff — a few statements in all unless something was refused.
   */
  private async settle(rows: OutboxRow[], outcomes: Map<string, Outcome>, now: number): Promise<void> {
    const table = outboxTable(this.owner);
    const done: (number | string)[] = [];
    const waiting = new Map<string, (number | string)[]>(); // pending + next attempt → row ids
    const dueAt = (consumer: string, failures: Failures): number =>
      Math.max(this.cooldown.get(consumer)?.until ?? now, failures[consumer]?.nextAt ?? now);
    for (const row of rows) {
      const before = parseFailures(row.failures);
      const failures: Failures = { ...before };
      const left: string[] = [];
      const dead: { consumer: string; failure: Failure }[] = [];
      for (const consumer of splitPending(row.pending)) {
        const outcome = outcomes.get(consumer);
        if (outcome?.acked.has(row.event_id)) {
          delete failures[consumer];
          continue;
        }
        const error = outcome?.refused.get(row.event_id);
        if (error !== undefined) {
          const attempts = (failures[consumer]?.attempts ?? 0) + 1;
          const failure: Failure = {
            attempts,
            nextAt: now + Math.min(this.maxRetryMs, this.retryBaseMs * 2 ** (attempts - 1)),
            firstAt: failures[consumer]?.firstAt ?? now,
            lastAt: now,
            error,
          };
          if (attempts >= this.maxAttempts) {
            delete failures[consumer];
            dead.push({ consumer, failure });
            continue;
          }
          failures[consumer] = failure;
        }
        left.push(consumer);
      }
      const nextAt = Math.max(now + 100, Math.min(...left.map((c) => dueAt(c, failures))));
      if (dead.length > 0) {
        await this.deadLetter(row, dead, left, failures, nextAt);
      } else if (left.length === 0) {
        done.push(row.id);
      } else if (Object.keys(failures).length > 0 || Object.keys(before).length > 0) {
        await this.db(table)
          .where({ id: row.id })
          .update({
            pending: left.join(","),
            failures: Object.keys(failures).length > 0 ? JSON.stringify(failures) : null,
            attempts: this.db.raw("attempts + 1"),
            next_attempt_at: nextAt,
            leased_by: null,
            lease_until: null,
          });
      } else {
        const key = `${left.join(",")}|${nextAt}`;
        waiting.set(key, [...(waiting.get(key) ?? []), row.id]);
      }
    }
    for (const [key, ids] of waiting) {
      const [pending, nextAt] = key.split("|");
      await this.db(table)
        .whereIn("id", ids)
        .update({
          pending,
          attempts: this.db.raw("attempts + 1"),
          next_attempt_at: Number(nextAt),
          leased_by: null,
          lease_until: null,
        });
    }
    if (done.length > 0) await this.db(table).whereIn("id", done).delete();
  }

  /** Moves a row's refused consumers to the dead letters, with an audit event, in one transaction. */
  private async deadLetter(
    row: OutboxRow,
    dead: { consumer: string; failure: Failure }[],
    left: string[],
    failures: Failures,
    nextAt: number,
  ): Promise<void> {
    const table = outboxTable(this.owner);
    const letters: DeadLetter[] = [];
    await this.db.transaction(async (trx) => {
      for (const { consumer, failure } of dead) {
        const id = randomUUID();
        const record = {
          id,
          event_id: row.event_id,
          consumer,
          type: row.type,
          payload: row.payload,
          request_id: row.request_id,
          attempts: failure.attempts,
          last_error: failure.error,
          first_failed_at: failure.firstAt,
          last_failed_at: failure.lastAt,
        };
        // A dead letter of the same event and consumer left over (a crash after this insert but
        // before the row was updated) is replaced, so the newest count and error show.
        await trx(deadLetterTable(this.owner)).where({ event_id: row.event_id, consumer }).delete();
        await trx(deadLetterTable(this.owner)).insert(record);
        const letter = toDeadLetter(this.owner, record);
        letters.push(letter);
        // The audit log hears of it — unless this is the log refusing such notices (no loop).
        if (!(consumer === "log" && row.type.startsWith("outbox."))) {
          await writeOutbox(
            trx,
            this.owner,
            [
              {
                type: "outbox.dead_lettered",
                requestId: row.request_id,
                data: {
                  ...auditData(letter),
                  attempts: failure.attempts,
                  error: failure.error.slice(0, 500),
                },
              },
            ],
            this.nodeId,
          );
        }
      }
      if (left.length === 0) {
        await trx(table).where({ id: row.id }).delete();
      } else {
        await trx(table)
          .where({ id: row.id })
          .update({
            pending: left.join(","),
            failures: Object.keys(failures).length > 0 ? JSON.stringify(failures) : null,
            attempts: trx.raw("attempts + 1"),
            next_attempt_at: nextAt,
            leased_by: null,
            lease_until: null,
          });
      }
    });
    // The audit notice is in the outbox: deliver it without waiting for the poll.
    this.again = true;
    for (const letter of letters) this.opts.onDeadLetter?.(letter);
  }

  /** Rows still waiting (for tests and metrics). */
  async backlog(): Promise<number> {
    const row = await this.db(outboxTable(this.owner)).count<{ n: number | string }[]>({ n: "*" }).first();
    return Number(row?.n ?? 0);
  }
}

/** One consumer's share of a producer's outbox: events still due to it, and the oldest one's age. */
export interface ConsumerBacklog {
  consumer: string;
  count: number;
  /** created_at of the oldest (epoch ms); null when none is waiting. */
  oldestAt: number | null;
}

/**
 * The backlog per consumer in one grouped query (a handful of rows: one per set of pending
 * consumers); `consumers` are reported even when nothing waits for them (count 0).
 */
export async function outboxBacklog(db: Sql, owner: string, consumers: readonly string[]): Promise<ConsumerBacklog[]> {
  const rows = (await db(outboxTable(owner))
    .select("pending")
    .count({ n: "*" })
    .min({ oldest: "created_at" })
    .groupBy("pending")) as unknown as { pending: string; n: number | string; oldest: number | string | null }[];
  const by = new Map<string, ConsumerBacklog>(consumers.map((c) => [c, { consumer: c, count: 0, oldestAt: null }]));
  for (const row of rows) {
    for (const consumer of splitPending(row.pending)) {
      const entry = by.get(consumer) ?? { consumer, count: 0, oldestAt: null };
      by.set(consumer, entry);
      entry.count += Number(row.n);
      const oldest = row.oldest === null ? null : Number(row.oldest);
      if (oldest !== null && (entry.oldestAt === null || oldest < entry.oldestAt)) entry.oldestAt = oldest;
    }
  }
  return [...by.values()];
}

// ---- dead letters: list, retry, drop ------------------------------------------------------------

interface DeadLetterRow {
  id: string;
  event_id: string;
  consumer: string;
  type: string;
  payload: string;
  request_id: string | null;
  attempts: number;
  last_error: string;
  first_failed_at: number | string;
  last_failed_at: number | string;
}

function toDeadLetter(owner: string, row: DeadLetterRow): DeadLetter {
  return {
    id: row.id,
    producer: owner,
    consumer: row.consumer,
    eventId: row.event_id,
    type: row.type,
    requestId: row.request_id,
    attempts: Number(row.attempts),
    lastError: row.last_error,
    firstFailedAt: new Date(Number(row.first_failed_at)).toISOString(),
    lastFailedAt: new Date(Number(row.last_failed_at)).toISOString(),
    event: JSON.parse(row.payload) as DomainEvent,
  };
}

function auditData(letter: DeadLetter): {
  deadLetterId: string;
  producer: string;
  consumer: string;
  eventId: string;
  eventType: string;
} {
  return {
    deadLetterId: letter.id,
    producer: letter.producer,
    consumer: letter.consumer,
    eventId: letter.eventId,
    eventType: letter.type,
  };
}

/** A producer's dead letters, oldest failure first. */
export async function listDeadLetters(db: Sql, owner: string, limit = 100): Promise<DeadLetter[]> {
  const rows = await db<DeadLetterRow>(deadLetterTable(owner))
    .orderBy("last_failed_at")
    .orderBy("id")
    .limit(limit)
    .select();
  return rows.map((r) => toDeadLetter(owner, r));
}

export async function countDeadLetters(db: Sql, owner: string): Promise<number> {
  const row = await db(deadLetterTable(owner)).count<{ n: number | string }[]>({ n: "*" }).first();
  return Number(row?.n ?? 0);
}

/** Removes a dead letter and returns it; null when another instance took it first or it never was here. */
async function takeDeadLetter(trx: Sql, owner: string, id: string): Promise<DeadLetterRow | null> {
  const row = await trx<DeadLetterRow>(deadLetterTable(owner)).where({ id }).first();
  if (!row) return null;
  const deleted = await trx(deadLetterTable(owner)).where({ id }).delete();
  return deleted === 0 ? null : row;
}

/**
 * Puts a dead letter back into the outbox for its consumer, with a fresh count of attempts (the
 * relay must be kicked after), and audits it; null when this database has no such dead letter
 * (another producer instance took it, or it never was here).
 */
export async function retryDeadLetter(
  db: Sql,
  owner: string,
  id: string,
  by: { userId: number | null; requestId: string | null },
  /** This node, as the audit event's origin. */
  nodeId: string,
): Promise<DeadLetter | null> {
  return db.transaction(async (trx) => {
    const row = await takeDeadLetter(trx, owner, id);
    if (!row) return null;
    const now = Date.now();
    const existing = await trx<OutboxRow>(outboxTable(owner))
      .where({ event_id: row.event_id })
      .first("id", "pending", "failures");
    if (existing) {
      // Still on its way to other consumers: add this one back to the same row.
      const pending = splitPending(existing.pending);
      const failures = parseFailures(existing.failures);
      delete failures[row.consumer];
      await trx(outboxTable(owner))
        .where({ id: existing.id })
        .update({
          pending: [...new Set([...pending, row.consumer])].join(","),
          failures: Object.keys(failures).length > 0 ? JSON.stringify(failures) : null,
          next_attempt_at: now,
        });
    } else {
      await trx(outboxTable(owner)).insert({
        event_id: row.event_id,
        type: row.type,
        payload: row.payload,
        created_at: now,
        request_id: row.request_id,
        pending: row.consumer,
        next_attempt_at: now,
      });
    }
    const letter = toDeadLetter(owner, row);
    await auditDeadLetter(trx, owner, "outbox.dead_letter_retried", letter, by, nodeId);
    return letter;
  });
}

/** The audit event of an admin's retry or drop of a dead letter, in the same transaction. */
function auditDeadLetter(
  trx: Knex.Transaction,
  owner: string,
  type: "outbox.dead_letter_retried" | "outbox.dead_letter_dropped",
  letter: DeadLetter,
  by: { userId: number | null; requestId: string | null },
  nodeId: string,
): Promise<DomainEvent[]> {
  return writeOutbox(
    trx,
    owner,
    [{ type, requestId: by.requestId, data: { ...auditData(letter), userId: by.userId } }],
    nodeId,
  );
}

/** Deletes a dead letter for good, and audits it; null when this database has no such dead letter. */
export async function dropDeadLetter(
  db: Sql,
  owner: string,
  id: string,
  by: { userId: number | null; requestId: string | null },
  /** This node, as the audit event's origin. */
  nodeId: string,
): Promise<DeadLetter | null> {
  return db.transaction(async (trx) => {
    const row = await takeDeadLetter(trx, owner, id);
    if (!row) return null;
    const letter = toDeadLetter(owner, row);
    await auditDeadLetter(trx, owner, "outbox.dead_letter_dropped", letter, by, nodeId);
    return letter;
  });
}
