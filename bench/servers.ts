/**
 * The machine's servers the clustered mode and the MariaDB baseline use, all on loopback:
 * RabbitMQ and MariaDB already running (BENCH_RABBIT_URL / BENCH_MYSQL_URL, else the test suite's
 * TEST_RABBIT_URL / TEST_MYSQL_URL, else guest@127.0.0.1:5672 and root@127.0.0.1:3306), and
 * FerretDB (BENCH_MONGO_URL or TEST_MONGO_URL, else started here with scripts/ferretdb.sh on a free
 * port, as scripts/test.mjs does, and stopped at exit). Each run gets fresh databases, dropped after.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { MongoClient } from "mongodb";
import mysql from "mysql2/promise";
import { freePort } from "../test/support/servers.js";

const FERRETDB_SH = path.resolve(__dirname, "..", "scripts", "ferretdb.sh");

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

/** A new, empty MariaDB database `<prefix>_<random>`. */
export async function createMysqlDatabase(prefix: string): Promise<FreshDatabase> {
  const name = `${prefix}_${runId()}`;
  const server = mysqlUrl();
  const conn = await mysql.createConnection({ uri: server, connectTimeout: 5_000 });
  try {
    await conn.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  } finally {
    await conn.end().catch(() => undefined);
  }
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const c = await mysql.createConnection({ uri: server, connectTimeout: 5_000 });
      try {
        await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await c.end().catch(() => undefined);
      }
    },
  };
}

let ferretPort: number | undefined;
let mongoBase: string | undefined;

/** The MongoDB-protocol server's URL (no database): given, or a FerretDB started for this run. */
export async function mongoServer(log: (line: string) => void): Promise<string> {
  if (mongoBase) return mongoBase;
  const given = process.env.BENCH_MONGO_URL || process.env.TEST_MONGO_URL;
  if (given) return (mongoBase = given);
  const port = await freePort();
  const started = Date.now();
  const res = spawnSync("bash", [FERRETDB_SH, "start", String(port)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const uri = (res.stdout ?? "").trim().split("\n").pop() ?? "";
  ferretPort = port; // stopped at exit even when half started
  if (res.status !== 0 || !uri.startsWith("mongodb://")) {
    throw new Error(`could not start FerretDB with scripts/ferretdb.sh: ${(res.stderr ?? "").trim().slice(-800)}`);
  }
  log(`FerretDB started at ${uri} (${Date.now() - started} ms)`);
  return (mongoBase = uri);
}

export function stopFerret(): void {
  if (ferretPort === undefined) return;
  spawnSync("bash", [FERRETDB_SH, "stop", String(ferretPort)], { stdio: "ignore" });
  ferretPort = undefined;
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
