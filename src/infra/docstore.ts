/**
 * The document store behind the log service. MONGO_URL `mongodb://…` → MongoDB through the official
 * driver; unset → an embedded file store under DATA_DIR (@seald-io/nedb) that takes the same
 * Mongo-style query objects. Callers see one interface and never learn which one they got.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import Datastore from "@seald-io/nedb";
import { MongoBulkWriteError, MongoClient, type Db } from "mongodb";

export interface StoredDoc {
  _id: string;
}

/** Mongo query operators understood by both stores: $eq $ne $gt $gte $lt $lte $in $nin $exists $or. */
export type Filter = Record<string, unknown>;

export interface FindOptions {
  sort?: Record<string, 1 | -1>;
  limit?: number;
}

export interface IndexSpec {
  name: string;
  key: Record<string, 1 | -1>;
  unique?: boolean;
  /** A TTL index. Servers that refuse TTL indexes (FerretDB) make createIndexes skip it: `ttl: false`. */
  expireAfterSeconds?: number;
}

export interface GroupCount {
  key: Record<string, unknown>;
  count: number;
}

export interface DocCollection<T extends StoredDoc> {
  /** Inserts the documents whose `_id` is new; a repeated `_id` is skipped, not an error. */
  insertMany(docs: T[]): Promise<{ inserted: number }>;
  find(filter: Filter, options?: FindOptions): Promise<T[]>;
  count(filter: Filter): Promise<number>;
  deleteMany(filter: Filter): Promise<number>;
  /** Creates the indexes; reports whether TTL indexes were accepted (false where unsupported). */
  createIndexes(specs: IndexSpec[]): Promise<{ ttl: boolean }>;
  /** Counts the matching documents per combination of `fields` ($match + $group + $sum on MongoDB). */
  countBy(filter: Filter, fields: string[]): Promise<GroupCount[]>;
}

export interface DocStore {
  readonly kind: "mongodb" | "embedded";
  collection<T extends StoredDoc>(name: string): DocCollection<T>;
  /** Throws when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DocStoreTarget {
  mongoUrl: string | undefined;
  dataDir: string;
}

export async function openDocStore(target: DocStoreTarget): Promise<DocStore> {
  return target.mongoUrl ? openMongo(target.mongoUrl) : openEmbedded(path.join(target.dataDir, "log"));
}

const DUPLICATE_KEY = 11000;
/**
 * Why a TTL index may be refused: NotImplemented (238, FerretDB), or an index of that name already
 * there with other options (85/86: the retention changed; the purge job covers it until an operator
 * drops the old index).
 */
const TTL_REFUSALS = new Set([238, 85, 86]);

function isUnsupported(err: unknown): boolean {
  return TTL_REFUSALS.has((err as { code?: number }).code ?? 0);
}

async function openMongo(url: string): Promise<DocStore> {
  const client = new MongoClient(url, {
    serverSelectionTimeoutMS: 5000,
    retryWrites: false,
  });
  await client.connect();
  const db: Db = client.db(); // the database named in the URL's path, else "test"
  return {
    kind: "mongodb",
    collection<T extends StoredDoc>(name: string): DocCollection<T> {
      // Filters are plain Mongo query objects; the driver's per-field typing adds nothing here.
      const coll = db.collection<StoredDoc>(name);
      return {
        async insertMany(docs) {
          if (docs.length === 0) return { inserted: 0 };
          try {
            const res = await coll.insertMany(docs, { ordered: false });
            return { inserted: res.insertedCount };
          } catch (err) {
            if (err instanceof MongoBulkWriteError) {
              const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
              // Stored only if every document was inserted now or was there already (a duplicate
              // _id). The driver reports a network error (server down) as a bulk error with no write
              // errors at all: that is a failure, never "nothing new".
              const accountedFor =
                errors.length > 0 &&
                errors.every((w) => w?.code === DUPLICATE_KEY) &&
                err.insertedCount + errors.length === docs.length;
              if (accountedFor) return { inserted: err.insertedCount };
            }
            throw err;
          }
        },
        async find(filter, options = {}) {
          let cursor = coll.find(filter);
          if (options.sort) cursor = cursor.sort(options.sort);
          if (options.limit) cursor = cursor.limit(options.limit);
          return (await cursor.toArray()) as unknown as T[];
        },
        count: (filter) => coll.countDocuments(filter),
        async deleteMany(filter) {
          return (await coll.deleteMany(filter)).deletedCount;
        },
        async createIndexes(specs) {
          let ttl = true;
          // One command per index: FerretDB 1.24 fails a multi-index createIndexes whose indexes all exist.
          for (const s of specs) {
            const options = { name: s.name, unique: s.unique ?? false };
            if (s.expireAfterSeconds === undefined) {
              await coll.createIndex(s.key, options);
              continue;
            }
            try {
              await coll.createIndex(s.key, { ...options, expireAfterSeconds: s.expireAfterSeconds });
            } catch (err) {
              if (!isUnsupported(err)) throw err;
              ttl = false;
            }
          }
          return { ttl };
        },
        async countBy(filter, fields) {
          const id = Object.fromEntries(fields.map((f) => [f, `$${f}`]));
          const rows = await coll
            .aggregate<{ _id: Record<string, unknown>; count: number }>([
              { $match: filter },
              { $group: { _id: id, count: { $sum: 1 } } },
            ])
            .toArray();
          return rows.map((r) => ({ key: r._id, count: r.count }));
        },
      };
    },
    async ping() {
      await db.command({ ping: 1 });
    },
    close: () => client.close(),
  };
}

async function openEmbedded(dir: string): Promise<DocStore> {
  mkdirSync(dir, { recursive: true });
  const stores = new Map<string, Datastore>();
  const storeOf = (name: string): Datastore => {
    let store = stores.get(name);
    if (!store) {
      store = new Datastore({
        filename: path.join(dir, `${name}.db`),
        autoload: true,
      });
      // Rewrites the append-only file so deleted and replaced documents do not pile up.
      store.setAutocompactionInterval(10 * 60 * 1000);
      stores.set(name, store);
    }
    return store;
  };
  return {
    kind: "embedded",
    collection<T extends StoredDoc>(name: string): DocCollection<T> {
      const store = storeOf(name);
      return {
        async insertMany(docs) {
          await store.autoloadPromise;
          const ids = docs.map((d) => d._id);
          const existing = new Set((await store.findAsync<T>({ _id: { $in: ids } })).map((d) => d._id));
          const fresh = docs.filter((d, i) => !existing.has(d._id) && ids.indexOf(d._id) === i);
          if (fresh.length > 0) await store.insertAsync(fresh);
          return { inserted: fresh.length };
        },
        async find(filter, options = {}) {
          await store.autoloadPromise;
          let cursor = store.findAsync<T>(filter);
          if (options.sort) cursor = cursor.sort(options.sort);
          if (options.limit) cursor = cursor.limit(options.limit);
          return (await cursor) as T[];
        },
        async count(filter) {
          await store.autoloadPromise;
          return store.countAsync(filter);
        },
        async deleteMany(filter) {
          await store.autoloadPromise;
          return store.removeAsync(filter, { multi: true });
        },
        async createIndexes(specs) {
          await store.autoloadPromise;
          // nedb indexes single fields; the first key of each spec is the one worth indexing. Its TTL
          // indexes are not used: the log's purge job does the same job on every store.
          for (const spec of specs) {
            const field = Object.keys(spec.key)[0];
            if (field && field !== "_id" && spec.expireAfterSeconds === undefined) {
              await store.ensureIndexAsync({ fieldName: field, unique: spec.unique ?? false });
            }
          }
          return { ttl: false };
        },
        async countBy(filter, fields) {
          await store.autoloadPromise;
          const groups = new Map<string, GroupCount>();
          for (const doc of await store.findAsync<Record<string, unknown>>(filter)) {
            const key = Object.fromEntries(fields.map((f) => [f, doc[f] ?? null]));
            const id = JSON.stringify(key);
            const group = groups.get(id) ?? { key, count: 0 };
            group.count += 1;
            groups.set(id, group);
          }
          return [...groups.values()];
        },
      };
    },
    async ping() {},
    async close() {
      for (const store of stores.values()) {
        store.stopAutocompaction();
        await store.compactDatafileAsync();
      }
      stores.clear();
    },
  };
}
