import { outboxMigration } from "../infra/outbox.js";
import type { Migration } from "../infra/sql.js";

export const authMigrations: Migration[] = [
  {
    name: "001_auth",
    async up(db) {
      await db.schema.createTable("auth_credentials", (t) => {
        t.integer("user_id").primary();
        t.string("password_hash", 255).notNullable();
        t.bigInteger("updated_at").notNullable();
      });
      // A session is one login; its refresh tokens form one rotation family.
      await db.schema.createTable("auth_sessions", (t) => {
        t.string("id", 36).primary();
        t.integer("user_id").notNullable().index();
        t.bigInteger("created_at").notNullable();
        t.bigInteger("expires_at").notNullable();
        t.bigInteger("revoked_at").nullable();
        t.string("revoked_reason", 16).nullable();
      });
      await db.schema.createTable("auth_refresh_tokens", (t) => {
        t.string("token_hash", 64).primary();
        t.string("session_id", 36).notNullable().index();
        t.bigInteger("created_at").notNullable();
        t.bigInteger("used_at").nullable();
      });
      // Failed logins per username (any string, hashed), shared by every auth instance.
      await db.schema.createTable("auth_login_throttle", (t) => {
        t.string("key", 64).primary();
        t.integer("failures").notNullable();
        t.bigInteger("window_started_at").notNullable();
      });
    },
  },
  outboxMigration("auth"),
];
