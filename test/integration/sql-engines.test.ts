/**
 * The SQL layer (src/infra/sql.ts) on both engines NoChat supports, SQLite and MariaDB: the
 * expected engine opens, every service's migrations run once (again: no effect), connection pools
 * are shared per database and closed with their last user. The stores themselves:
 * user-store, auth-store, chat-store and notify-store.test.ts.
 */
import assert from "node:assert/strict";
import { before, it } from "node:test";
import { Outbox } from "../../src/infra/outbox.js";
import { isMysql, migrate, openSql, releaseSql, type Sql, type SqlTarget } from "../../src/infra/sql.js";
import { UserStore } from "../../src/users/store.js";
import { firstRow, MIGRATIONS, NO_TRACE, onEachSqlEngine } from "../support/sql-engines.js";

onEachSqlEngine(
  "The SQL layer",
  (sql) => {
    let db: Sql;
    let target: SqlTarget;
    before(() => {
      ({ db, target } = sql);
    });

    it("opens the expected engine", () => {
      assert.equal(isMysql(db), sql.expectMysql);
    });

    it("runs every service's migrations, and again without effect (idempotent)", async () => {
      for (const [owner, migrations] of MIGRATIONS) await migrate(db, owner, migrations);
      for (const [owner, migrations] of MIGRATIONS) await migrate(db, owner, migrations);
      for (const table of [
        "users",
        "auth_credentials",
        "auth_sessions",
        "auth_refresh_tokens",
        "auth_login_throttle",
      ]) {
        assert.ok(await db.schema.hasTable(table), `table ${table}`);
      }
      for (const table of [
        "rooms",
        "room_members",
        "messages",
        "message_reactions",
        "notifications",
        "notify_processed",
        "notify_room_prefs",
        "users_outbox",
        "auth_outbox",
        "chat_outbox",
      ]) {
        assert.ok(await db.schema.hasTable(table), `table ${table}`);
      }
      for (const [owner, migrations] of MIGRATIONS) {
        const rows = await db(`migrations_${owner}`).select("name");
        assert.deepEqual(
          rows.map((r: { name: string }) => r.name),
          migrations.map((m) => m.name),
          `migrations_${owner} records each migration once`,
        );
      }
    });

    it("openSql shares one connection pool per database; releaseSql counts users", async () => {
      const again = openSql(target);
      assert.equal(again, db);
      await releaseSql(target); // back to one user: still open
      assert.equal(Number((await db.raw("select 1 as one").then(firstRow)).one), 1);
    });

    it("releaseSql closes the pool when its last user releases it", async () => {
      const kept = await new UserStore(db, new Outbox("users", "test-node")).create(
        { username: "kept", displayName: "Kept", roles: [] },
        NO_TRACE,
      );
      await releaseSql(target);
      sql.released = true;
      await assert.rejects(db.raw("select 1"));
      // Opening again gives a new pool on the same data.
      const reopened = openSql(target);
      try {
        assert.notEqual(reopened, db);
        assert.equal((await reopened("users").where({ id: kept.id }).first())?.username, "kept");
      } finally {
        await releaseSql(target);
      }
    });
  },
  { migrated: false },
);
