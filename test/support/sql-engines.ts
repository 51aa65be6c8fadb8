/**
 * The SQL stores' tests run on both engines NoChat supports: SQLite under a temp DATA_DIR and
 * MariaDB in a fresh test database (skipped without a MariaDB server, failing under CI). Each
 * engine gets its own database, opened (and, unless told, migrated for every service) before the
 * body's tests run and dropped after them:
 *
 *   onEachSqlEngine("ChatStore", (sql) => {
 *     let chat: ChatStore;
 *     before(() => (chat = new ChatStore(sql.db, new Outbox("chat", "test-node"))));
 *     it("…", async () => …);
 *   });
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { authMigrations } from "../../src/auth/migrations.js";
import { chatMigrations } from "../../src/chat/migrations.js";
import type { DomainEvent } from "../../src/contracts/domain-events.js";
import { outboxTable, type Trace } from "../../src/infra/outbox.js";
import { migrate, openSql, releaseSql, type Sql, type SqlTarget } from "../../src/infra/sql.js";
import { notifyMigrations } from "../../src/notify/migrations.js";
import { usersMigrations } from "../../src/users/migrations.js";
import { createTestDatabase, serverSkip } from "./servers.js";

export const TRACE: Trace = { requestId: "req-sql-stores" };
export const NO_TRACE: Trace = { requestId: null };

/** Every SQL service's migrations, by owner. */
export const MIGRATIONS = [
  ["users", usersMigrations],
  ["auth", authMigrations],
  ["chat", chatMigrations],
  ["notify", notifyMigrations],
] as const;

interface Engine {
  name: string;
  expectMysql: boolean;
  /** A reason to skip, or false. */
  skip(): Promise<string | false>;
  /** Creates the database; returns where it is and how to remove it. */
  setup(): Promise<{ target: SqlTarget; cleanup(): Promise<void> }>;
}

const ENGINES: Engine[] = [
  {
    name: "SQLite",
    expectMysql: false,
    skip: async () => false,
    async setup() {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-sql-"));
      return {
        target: { databaseUrl: undefined, dataDir },
        async cleanup() {
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: "MariaDB",
    expectMysql: true,
    skip: () => serverSkip("mariadb"),
    async setup() {
      const database = await createTestDatabase();
      return { target: { databaseUrl: database.url, dataDir: os.tmpdir() }, cleanup: () => database.drop() };
    },
  },
];

/** One engine's database, as the tests of a body see it (set once its `before` ran). */
export interface SqlFixture {
  readonly engine: string;
  readonly expectMysql: boolean;
  readonly target: SqlTarget;
  /** The shared pool of `target` (openSql). */
  readonly db: Sql;
  /** Set by a test that released the pool itself, so the end does not release it again. */
  released: boolean;
}

/** Runs `body` in a describe per engine: `${title} on SQLite`, `${title} on MariaDB`. */
export function onEachSqlEngine(
  title: string,
  body: (sql: SqlFixture) => void,
  { migrated = true }: { migrated?: boolean } = {},
): void {
  for (const engine of ENGINES) {
    describe(`${title} on ${engine.name}`, async () => {
      const skip = await engine.skip();
      if (skip) {
        it(engine.name, { skip }, () => {});
        return;
      }
      let cleanup: (() => Promise<void>) | undefined;
      const fixture = { engine: engine.name, expectMysql: engine.expectMysql, released: false } as SqlFixture & {
        target: SqlTarget;
        db: Sql;
      };
      before(async () => {
        const created = await engine.setup();
        cleanup = created.cleanup;
        fixture.target = created.target;
        fixture.db = openSql(created.target);
        if (migrated) for (const [owner, migrations] of MIGRATIONS) await migrate(fixture.db, owner, migrations);
      });
      after(async () => {
        if (fixture.target && !fixture.released) await releaseSql(fixture.target);
        await cleanup?.();
      });
      body(fixture);
    });
  }
}

export interface OutboxRow {
  /** The event as delivered; `data` loosely typed, since rows of several types are compared. */
  event: Omit<DomainEvent, "data"> & { data: Record<string, unknown> };
  pending: string;
  requestId: string | null;
}

/** A producer's outbox rows of one type (all types when omitted), oldest first. */
export async function outbox(db: Sql, owner: string, type?: string): Promise<OutboxRow[]> {
  const q = db(outboxTable(owner)).orderBy("id");
  if (type) q.where({ type });
  const rows = await q.select<{ payload: string; pending: string; request_id: string | null }[]>(
    "payload",
    "pending",
    "request_id",
  );
  return rows.map((r) => ({
    event: JSON.parse(r.payload) as OutboxRow["event"],
    pending: r.pending,
    requestId: r.request_id,
  }));
}

/** The first row of a query: knex.raw answers [rows, fields] on mysql2 and rows on better-sqlite3. */
export function firstRow(rows: unknown): Record<string, number> {
  const list = Array.isArray(rows) && Array.isArray(rows[0]) ? rows[0] : rows;
  return (list as Record<string, number>[])[0];
}
