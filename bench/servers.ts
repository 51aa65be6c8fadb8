/**
 * The machine's servers the clustered mode and the MariaDB baseline use, all on loopback:
 * RabbitMQ and MariaDB already running (BENCH_RABBIT_URL / BENCH_MYSQL_URL, else the test suite's
 * TEST_RABBIT_URL / TEST_MYSQL_URL, else guest@127.0.0.1:5672 and root@127.0.0.1:3306), and
 * FerretDB (BENCH_MONGO_URL or TEST_MONGO_URL, else started here with scripts/ferretdb.sh on a free
 * port, as scripts/test.mjs does, and stopped at exit). Each run gets fresh databases, dropped after.
 */
import { randomBytes } from "node:crypto";
import { MongoClient } from "mongodb";
import { OwnFerretDB } from "../test/support/ferretdb.js";
import { createTestDatabase } from "../test/support/servers.js";

export function rabbitUrl(): string {
  return process.env.BENCH_RABBIT_URL || process.env.TEST_RABBIT_URL || "amqp://guest:guest@127.0.0.1:5672";
}

export function mysqlUrl(): string {
  return process.env.BENCH_MYSQL_URL || process.env.TEST_MYSQL_URL || "mysql://root@127.0.0.1:3306";
}

export function runId(): string {
  return randomBytes(4).toString("hex");
}

export interface FreshDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A new, empty MariaDB database `<prefix>_<random>` on the benchmark's server. */
export function createMysqlDatabase(prefix: string): Promise<FreshDatabase> {
  return createTestDatabase({ prefix, server: mysqlUrl() });
}

let ferret: Promise<OwnFerretDB> | undefined;
let mongoBase: string | undefined;

/** The MongoDB-protocol server's URL (no database): given, or a FerretDB of the run's own. */
export async function mongoServer(log: (line: string) => void): Promise<string> {
  if (mongoBase) return mongoBase;
  const given = process.env.BENCH_MONGO_URL || process.env.TEST_MONGO_URL;
  if (given) return (mongoBase = given);
  const started = Date.now();
  ferret ??= OwnFerretDB.start();
  mongoBase = (await ferret).url("");
  log(`FerretDB started at ${mongoBase} (${Date.now() - started} ms)`);
  return mongoBase;
}

/** Stops the run's FerretDB and removes its data (a no-op when none was started). */
export async function stopFerret(): Promise<void> {
  const started = ferret;
  ferret = undefined;
  mongoBase = undefined;
  if (started) await (await started).destroy();
}

/** A fresh database name on the MongoDB server: its URL, and a drop. */
export async function createMongoDatabase(prefix: string, log: (line: string) => void): Promise<FreshDatabase> {
  const base = await mongoServer(log);
  const name = `${prefix}_${runId()}`;
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const client = new MongoClient(base, { serverSelectionTimeoutMS: 5_000 });
      try {
        await client.db(name).dropDatabase();
      } finally {
        await client.close().catch(() => undefined);
      }
    },
  };
}
