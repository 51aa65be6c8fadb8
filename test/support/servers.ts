/**
 * Helpers for integration tests that talk to the machine's real servers: RabbitMQ, MariaDB and
 * FerretDB (MongoDB wire protocol, started by scripts/test.mjs and passed in TEST_MONGO_URL).
 *
 * A server that cannot be reached skips the tests that need it on a developer's machine, with a
 * clear message, but fails them under CI (CI=true), where every server must be there:
 *
 *   describe("users on MariaDB", async () => {
 *     const skip = await serverSkip("mariadb"); // throws under CI when unreachable
 *     it("…", { skip }, async () => { … });
 *   });
 *
 *   test("…", async (t) => {
 *     if (!(await requireServer("rabbitmq", t))) return; // t.skip(…) was called
 *     …
 *   });
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { MongoClient } from "mongodb";
import mysql from "mysql2/promise";

export type ServerName = "rabbitmq" | "mariadb" | "ferretdb";

/** How long a reachability check may take before the server counts as unreachable. */
const PROBE_TIMEOUT_MS = 3_000;

export function rabbitUrl(): string {
  return process.env.TEST_RABBIT_URL ?? "amqp://guest:guest@127.0.0.1:5672";
}

/** A server URL without a database; see createTestDatabase() for one with its own database. */
export function mysqlUrl(): string {
  return process.env.TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306";
}

/** Set by scripts/test.mjs, which starts FerretDB for the run when it is not given. */
export function mongoUrl(): string | undefined {
  return process.env.TEST_MONGO_URL || undefined;
}

/** The first `name` on the PATH, or undefined. */
export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const file = path.join(dir, name);
    if (dir && existsSync(file)) return file;
  }
  return undefined;
}

export function isCI(): boolean {
  return process.env.CI === "true";
}

function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(describeError).join("; ");
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/** Resolves when a TCP connection to host:port opens. */
export function tcpConnect(host: string, port: number, timeoutMs = PROBE_TIMEOUT_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TCP connect to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.end();
      resolve();
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}

async function probeRabbit(): Promise<void> {
  const url = new URL(rabbitUrl());
  await tcpConnect(url.hostname || "127.0.0.1", Number(url.port || 5672));
}

async function probeMariadb(): Promise<void> {
  const conn = await mysql.createConnection({ uri: mysqlUrl(), connectTimeout: PROBE_TIMEOUT_MS });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>("SELECT 1 AS one");
    if (Number(rows[0]?.one) !== 1) throw new Error(`SELECT 1 returned ${JSON.stringify(rows)}`);
  } finally {
    await conn.end().catch(() => undefined);
  }
}

async function probeFerret(): Promise<void> {
  const url = mongoUrl();
  if (!url) throw new Error("TEST_MONGO_URL is not set (scripts/test.mjs starts FerretDB when Go is available)");
  const client = new MongoClient(url, {
    serverSelectionTimeoutMS: PROBE_TIMEOUT_MS,
    connectTimeoutMS: PROBE_TIMEOUT_MS,
  });
  try {
    await client.connect();
    const res = await client.db("admin").command({ ping: 1 });
    if (Number(res.ok) !== 1) throw new Error(`ping answered ${JSON.stringify(res)}`);
  } finally {
    await client.close().catch(() => undefined);
  }
}

function target(name: ServerName): string {
  switch (name) {
    case "rabbitmq":
      return `RabbitMQ at ${redact(rabbitUrl())}`;
    case "mariadb":
      return `MariaDB at ${redact(mysqlUrl())}`;
    case "ferretdb":
      return `FerretDB at ${mongoUrl() ? redact(mongoUrl()!) : "(TEST_MONGO_URL unset)"}`;
  }
}

/** The URL with any password replaced by "***", for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url;
  }
}

const probes = new Map<ServerName, Promise<string | undefined>>();

/**
 * Why `name` cannot be used, or undefined when it answers. Checked once per test process:
 * a TCP connect for RabbitMQ, a real `SELECT 1` for MariaDB, a `ping` command for FerretDB.
 */
export function unreachableReason(name: ServerName): Promise<string | undefined> {
  let probe = probes.get(name);
  if (!probe) {
    const run = { rabbitmq: probeRabbit, mariadb: probeMariadb, ferretdb: probeFerret }[name];
    probe = run().then(
      () => undefined,
      (err: unknown) => `${target(name)} is not reachable: ${describeError(err)}`,
    );
    probes.set(name, probe);
  }
  return probe;
}

/**
 * `false` when the server answers, otherwise a skip message — made for node:test's `skip` option.
 * Under CI (CI=true) an unreachable server throws instead, so the tests fail rather than skip.
 */
export async function serverSkip(name: ServerName): Promise<string | false> {
  const reason = await unreachableReason(name);
  if (reason === undefined) return false;
  if (isCI()) throw new Error(`${reason} (CI=true: integration servers are required)`);
  return `${reason} — skipped (set CI=true to fail instead)`;
}

/** True when the server answers. Otherwise throws under CI, else returns false. */
export async function serverAvailable(name: ServerName): Promise<boolean> {
  return (await serverSkip(name)) === false;
}

/**
 * For use inside a test: true when the server answers; otherwise throws under CI, else calls
 * `t.skip(message)` (when given) and returns false, so the test can `return` early.
 */
export async function requireServer(name: ServerName, t?: { skip(message?: string): void }): Promise<boolean> {
  const skip = await serverSkip(name);
  if (skip === false) return true;
  if (t) t.skip(skip);
  else console.warn(skip);
  return false;
}

function randomSuffix(bytes = 6): string {
  return randomBytes(bytes).toString("hex");
}

export interface TestDatabase {
  /** `nochat_test_<random>` */
  name: string;
  /** mysqlUrl() with the database in the path: what DATABASE_URL takes. */
  url: string;
  /** Drops the database; safe to call more than once. */
  drop(): Promise<void>;
}

/**
 * Creates a uniquely named, empty MariaDB database `<prefix>_<random>` for one test (file), or for
 * the benchmark (its own prefix and server), and returns its URL. Call drop() when done, e.g. in
 * `after()`.
 */
export async function createTestDatabase(opts: { prefix?: string; server?: string } = {}): Promise<TestDatabase> {
  const name = `${opts.prefix ?? "nochat_test"}_${randomSuffix()}`;
  const server = opts.server ?? mysqlUrl();
  const conn = await mysql.createConnection({ uri: server, connectTimeout: PROBE_TIMEOUT_MS });
  try {
    // The server's default collation for utf8mb4, as an operator's `CREATE DATABASE … CHARACTER SET utf8mb4`.
    await conn.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  } finally {
    await conn.end().catch(() => undefined);
  }
  const url = new URL(server);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    name,
    url: url.toString(),
    drop() {
      dropped ??= (async () => {
        const c = await mysql.createConnection({ uri: server, connectTimeout: PROBE_TIMEOUT_MS });
        try {
          await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
        } finally {
          await c.end().catch(() => undefined);
        }
      })();
      return dropped;
    },
  };
}

/**
 * A random Moleculer NAMESPACE, so that test clusters sharing the one RabbitMQ never see each
 * other's nodes, requests or events.
 */
export function uniqueNamespace(prefix = "nochat-test"): string {
  return `${prefix}-${randomSuffix(5)}`;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("could not determine a free port"));
      });
    });
  });
}
