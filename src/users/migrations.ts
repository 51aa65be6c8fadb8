import { outboxMigration } from "../infra/outbox.js";
import type { Migration } from "../infra/sql.js";
import { adminSourceMigration } from "./admins.js";

export const usersMigrations: Migration[] = [
  {
    name: "001_users",
    async up(db) {
      await db.schema.createTable("users", (t) => {
        t.increments("id").primary();
        // Stored lower-cased: uniqueness is case-insensitive on every engine and collation.
        t.string("username", 32).notNullable().unique();
        t.string("display_name", 64).notNullable();
        t.string("status", 8).notNullable().defaultTo("online");
        t.bigInteger("last_seen_at").nullable();
        t.bigInteger("created_at").notNullable();
        t.string("roles", 64).notNullable().defaultTo("");
      });
    },
  },
  {
    name: "002_presence",
    async up(db) {
      // `status` stays the user's chosen availability (online/away); `online` is presence: true
      // while at least one socket is connected on any gateway node.
      await db.schema.alterTable("users", (t) => {
        t.boolean("online").notNullable().defaultTo(false);
      });
      await db.schema.createTable("presence_connections", (t) => {
        t.string("socket_id", 64).primary();
        t.integer("user_id").notNullable().index();
        t.string("node_id", 128).notNullable().index();
        t.bigInteger("connected_at").notNullable();
      });
    },
  },
  adminSourceMigration,
  outboxMigration("users"),
];
