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
}

export interface DocCollection<T extends StoredDoc> {
  /** Inserts the documents whose `_id` is new; a repeated `_id` is skipped, not an error. */
  insertMany(docs: T[]): Promise<{ inserted: number }>;
  find(filter: Filter, options?: FindOptions): Promise<T[]>;
  count(filter: Filter): Promise<number>;
  deleteMany(filter: Filter): Promise<number>;
  createIndexes(specs: IndexSpec[]): Promise<void>;
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
              if (errors.every((w) => w.code === DUPLICATE_KEY)) return { inserted: err.insertedCount };
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
          // One command per index: FerretDB 1.24 fails a multi-index createIndexes whose indexes all exist.
          for (const s of specs) await coll.createIndex(s.key, { name: s.name, unique: s.unique ?? false });
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
          // nedb indexes single fields; the first key of each spec is the one worth indexing.
          for (const spec of specs) {
            const field = Object.keys(spec.key)[0];
            if (field && field !== "_id")
              await store.ensureIndexAsync({
                fieldName: field,
                unique: spec.unique ?? false,
              });
          }
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
