/**
 * The audit log: application events as documents in the `events` collection of the doc store
 * (MongoDB, or the embedded file store). Writes are idempotent on the event id.
 */
import type { AppEvent } from "../contracts/objects.js";
import type { DocCollection, DocStore, Filter } from "../infra/docstore.js";

export interface EventDoc {
  _id: string;
  ts: Date;
  type: string;
  nodeId: string;
  requestId: string | null;
  userId: number | null;
  roomId: number | null;
  data: Record<string, unknown>;
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
  { name: "ts", key: { ts: -1 } },
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

export class EventLog {
  private readonly events: DocCollection<EventDoc>;

  constructor(store: DocStore) {
    this.events = store.collection<EventDoc>("events");
  }

  async init(): Promise<void> {
    await this.events.createIndexes(EVENT_INDEXES.map((i) => ({ name: i.name, key: { ...i.key } })));
  }

  /** Stores the events not stored yet; returns how many were new. */
  async record(docs: EventDoc[]): Promise<number> {
    return (await this.events.insertMany(docs)).inserted;
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

  async purgeOlderThan(cutoff: Date): Promise<number> {
    return this.events.deleteMany({ ts: { $lt: cutoff } });
  }
}
