/**
 * The audit log: application events as documents in the `events` collection of the doc store
 * (MongoDB, or the embedded file store). Writes are idempotent on the event id.
 */
import type { HourlyCount } from "../contracts/actions.js";
import type { DomainEvent } from "../contracts/domain-events.js";
import type { AppEvent } from "../contracts/objects.js";
import { redact } from "./redact.js";
import type { DocCollection, DocStore, Filter } from "../infra/docstore.js";

/** An AppEvent as stored: its id as `_id`, its time as a Date. */
export interface EventDoc extends Omit<AppEvent, "id" | "ts"> {
  _id: string;
  ts: Date;
  /** `ts` truncated to the hour: the stats group on it. Filled in by record(). */
  hour?: Date;
}

export interface EventQuery {
  type?: string;
  userId?: number;
  roomId?: number;
  from?: Date;
  to?: Date;
  /** Cursor: the id of the last event of the previous page. */
  before?: { ts: Date; id: string };
  limit: number;
}

export const EVENT_INDEXES = [
  { name: "type_ts", key: { type: 1, ts: -1 } },
  { name: "user_ts", key: { userId: 1, ts: -1 } },
  { name: "room_ts", key: { roomId: 1, ts: -1 } },
] as const;

export const toAppEvent = (doc: EventDoc): AppEvent => ({
  id: doc._id,
  ts: doc.ts.toISOString(),
  type: doc.type,
  nodeId: doc.nodeId,
  requestId: doc.requestId,
  userId: doc.userId,
  roomId: doc.roomId,
  data: doc.data,
});

const numberOrNull = (v: unknown): number | null => (typeof v === "number" ? v : null);

/** A domain event as an audit-log document, secrets redacted. */
export function toEventDoc(event: DomainEvent): EventDoc {
  const data = event.data as Record<string, unknown>;
  return {
    _id: event.id,
    ts: new Date(event.ts),
    type: event.type,
    nodeId: event.nodeId,
    requestId: event.requestId,
    userId: numberOrNull(data.userId),
    roomId: numberOrNull(data.roomId),
    data: redact(data) as Record<string, unknown>,
  };
}

const HOUR_MS = 3_600_000;
const truncateToHour = (ts: Date): Date => new Date(Math.floor(ts.getTime() / HOUR_MS) * HOUR_MS);

export class EventLog {
  private readonly events: DocCollection<EventDoc>;

  /** `retentionDays`: events older than that go — by a TTL index where the server has them, and by purge(). */
  constructor(
    store: DocStore,
    private readonly retentionDays?: number,
  ) {
    this.events = store.collection<EventDoc>("events");
  }

  /** Creates the indexes; `ttl` tells whether the server took the TTL index (FerretDB does not). */
  async init(): Promise<{ ttl: boolean }> {
    const ttl = this.retentionDays ? { expireAfterSeconds: this.retentionDays * 86_400 } : {};
    const result = await this.events.createIndexes([
      { name: "ts", key: { ts: -1 }, ...ttl },
      ...EVENT_INDEXES.map((i) => ({ name: i.name, key: { ...i.key } })),
    ]);
    // Without a TTL index the time index still has to exist, for queries and the purge job.
    if (!result.ttl && this.retentionDays) await this.events.createIndexes([{ name: "ts", key: { ts: -1 } }]);
    return result;
  }

  /** Stores the events not stored yet; returns how many were new. */
  async record(docs: EventDoc[]): Promise<number> {
    const withHour = docs.map((d) => (d.hour ? d : { ...d, hour: truncateToHour(d.ts) }));
    return (await this.events.insertMany(withHour)).inserted;
  }

  /** Newest first. */
  async query(q: EventQuery): Promise<AppEvent[]> {
    const filter: Filter = {};
    if (q.type) filter.type = q.type;
    if (q.userId !== undefined) filter.userId = q.userId;
    if (q.roomId !== undefined) filter.roomId = q.roomId;
    const ts: Record<string, Date> = {};
    if (q.from) ts.$gte = q.from;
    if (q.to) ts.$lte = q.to;
    if (Object.keys(ts).length > 0) filter.ts = ts;
    if (q.before) {
      // Strictly after the cursor in (ts desc, _id desc) order: events sharing its millisecond too.
      filter.$or = [{ ts: { $lt: q.before.ts } }, { ts: q.before.ts, _id: { $lt: q.before.id } }];
    }
    const docs = await this.events.find(filter, { sort: { ts: -1, _id: -1 }, limit: q.limit });
    return docs.map(toAppEvent);
  }

  async get(id: string): Promise<AppEvent | undefined> {
    const [doc] = await this.events.find({ _id: id }, { limit: 1 });
    return doc ? toAppEvent(doc) : undefined;
  }

  /** Counts per type per hour over [from, to). */
  async hourlyCounts(from: Date, to: Date): Promise<HourlyCount[]> {
    const groups = await this.events.countBy({ ts: { $gte: from, $lt: to } }, ["hour", "type"]);
    return groups
      .map((g) => ({ hour: new Date(g.key.hour as Date).toISOString(), type: String(g.key.type), count: g.count }))
      .sort((a, b) => a.hour.localeCompare(b.hour) || a.type.localeCompare(b.type));
  }

  /** The retention job: deletes what the TTL index would (everywhere, since not every server has one). */
  async purge(now = new Date()): Promise<number> {
    if (!this.retentionDays) return 0;
    return this.purgeOlderThan(new Date(now.getTime() - this.retentionDays * 86_400_000));
  }

  /**
   * The size bound (LOG_MAX_EVENTS): deletes the oldest events beyond `max`, in batches, so a flood
   * the sampling let through still cannot fill the disk (the embedded store keeps all in memory).
   */
  async trimTo(max: number, batch = 10_000): Promise<number> {
    let deleted = 0;
    for (;;) {
      const excess = (await this.events.count({})) - max;
      if (excess <= 0) return deleted;
      const oldest = await this.events.find({}, { sort: { ts: 1, _id: 1 }, limit: Math.min(excess, batch) });
      if (oldest.length === 0) return deleted;
      deleted += await this.events.deleteMany({ _id: { $in: oldest.map((d) => d._id) } });
    }
  }

  async purgeOlderThan(cutoff: Date): Promise<number> {
    return this.events.deleteMany({ ts: { $lt: cutoff } });
  }
}
