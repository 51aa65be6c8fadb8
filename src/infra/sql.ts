/**
 * SQL access for the services that own relational data (users, auth, chat, notify).
 * DATABASE_URL `mysql://…` → MySQL/MariaDB through mysql2; unset → one SQLite file under DATA_DIR.
 * One knex per database per process, shared by the services in that process (SQLite wants a single
 * writer anyway). Each service runs its own migrations in its own migrations table at start.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import knexFactory, { type Knex } from "knex";
import { AppError, DATABASE_RETRY_AFTER_S } from "../errors.js";

export type Sql = Knex;

export interface Migration {
  /** Sorted by name; never rename or edit one that has shipped. */
  name: string;
  up(db: Knex): Promise<void>;
  down?(db: Knex): Promise<void>;
}

export interface SqlTarget {
  databaseUrl: string | undefined;
  dataDir: string;
}

const open = new Map<string, { db: Knex; users: number }>();

/**
 * knex warns on the console, with a stack, for every failed connection attempt and every dead
 * pooled connection: during a database outage, one line per request. The error itself reaches the
 * caller, where DatabaseOutageMiddleware logs an outage once (and anything else is INTERNAL, logged
 * with its stack), so those two are dropped here; knex's other warnings stay.
 */
const CONNECTION_NOISE = /^(Acquire connection error|Connection Error):/;
const knexLog: Knex.Config["log"] = {
  warn(message: unknown) {
    if (typeof message === "string" && CONNECTION_NOISE.test(message)) return;
    console.warn("knex:", message);
  },
};

function knexConfig(target: SqlTarget): Knex.Config {
  if (target.databaseUrl?.startsWith("mysql")) {
    return {
      client: "mysql2",
      connection: {
        uri: target.databaseUrl,
        timezone: "Z",
        charset: "utf8mb4",
        supportBigNumbers: true,
      } as Knex.MySql2ConnectionConfig,
      pool: { min: 0, max: 20 },
      log: knexLog,
    };
  }
  if (target.databaseUrl) throw new Error(`DATABASE_URL: unsupported scheme in "${target.databaseUrl.split(":")[0]}"`);
  mkdirSync(target.dataDir, { recursive: true });
  return {
    client: "better-sqlite3",
    connection: { filename: path.join(target.dataDir, "nochat.sqlite") },
    useNullAsDefault: true,
    log: knexLog,
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: { pragma(sql: string): unknown }, done: (err: Error | null, conn: unknown) => void) {
        conn.pragma("journal_mode = WAL");
        conn.pragma("synchronous = NORMAL");
        conn.pragma("foreign_keys = ON");
        conn.pragma("busy_timeout = 5000");
        done(null, conn);
      },
    },
  };
}

function keyOf(target: SqlTarget): string {
  return target.databaseUrl ?? `sqlite:${target.dataDir}`;
}

/** Opens (or shares) the database; pair every call with `releaseSql`. */
export function openSql(target: SqlTarget): Knex {
  const key = keyOf(target);
  let entry = open.get(key);
  if (!entry) {
    entry = { db: knexFactory(knexConfig(target)), users: 0 };
    open.set(key, entry);
  }
  entry.users += 1;
  return entry.db;
}

export async function releaseSql(target: SqlTarget): Promise<void> {
  const key = keyOf(target);
  const entry = open.get(key);
  if (!entry) return;
  entry.users -= 1;
  if (entry.users <= 0) {
    open.delete(key);
    await entry.db.destroy();
  }
}

/**
 * The cheapest statement that proves the database answers (readiness, `<service>.ready`): resolves,
 * or rejects with the driver's error (a refused connection, a dead pooled one, …) or, past
 * `timeoutMs`, with UNAVAILABLE — a server that accepts connections but does not answer (stopped
 * with SIGSTOP, a full disk, a lock) must not hold a readiness probe for knex's acquire timeout.
 */
export async function pingSql(db: Knex, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(AppError.unavailable(`The database did not answer within ${timeoutMs} ms`, DATABASE_RETRY_AFTER_S)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([db.raw("SELECT 1"), late]);
  } finally {
    clearTimeout(timer);
  }
}

export function isMysql(db: Knex): boolean {
  return db.client.config.client === "mysql2";
}

/**
 * Runs a service's pending migrations, each tracked in `migrations_<owner>`. Several instances of a
 * service may start at once on a fresh MySQL database (two gateways, two notify nodes): knex's own
 * lock is taken only after it has created its tables, so the racing instances would fail with
 * "table already exists". A named server lock, held on a connection of its own, lets one instance
 * migrate while the others wait and then find nothing left to do. (SQLite has a single writer.)
 */
export async function migrate(db: Knex, owner: string, migrations: Migration[]): Promise<void> {
  if (!isMysql(db)) return runMigrations(db, owner, migrations);
  await db.transaction(async (lockConn) => {
    const lock = `CONCAT(DATABASE(), '.migrations_', ?)`;
    const [rows] = await lockConn.raw(`SELECT GET_LOCK(${lock}, 120) AS got`, [owner]);
    if (Number((rows as { got: number | null }[])[0]?.got) !== 1) {
      throw new Error(`migrations_${owner}: another instance held the migration lock for 2 minutes`);
    }
    try {
      await runMigrations(db, owner, migrations);
    } finally {
      await lockConn.raw(`SELECT RELEASE_LOCK(${lock})`, [owner]);
    }
  });
}

async function runMigrations(db: Knex, owner: string, migrations: Migration[]): Promise<void> {
  const sorted = [...migrations].sort((a, b) => a.name.localeCompare(b.name));
  await db.migrate.latest({
    tableName: `migrations_${owner}`,
    migrationSource: {
      getMigrations: () => Promise.resolve(sorted),
      getMigrationName: (m: Migration) => m.name,
      getMigration: (m: Migration) =>
        Promise.resolve({
          up: m.up,
          down: m.down ?? (() => Promise.resolve()),
        }),
    },
  });
}

/** True when `err` is a unique-key violation on either engine. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; errno?: number };
  return (
    e.code === "ER_DUP_ENTRY" || e.code === "SQLITE_CONSTRAINT_UNIQUE" || e.code === "SQLITE_CONSTRAINT_PRIMARYKEY"
  );
}
