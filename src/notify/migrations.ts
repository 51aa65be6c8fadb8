import type { Migration } from "../infra/sql.js";

export const notifyMigrations: Migration[] = [
  {
    name: "001_notify",
    async up(db) {
      await db.schema.createTable("notifications", (t) => {
        t.increments("id").primary();
        t.integer("user_id").notNullable();
        t.string("kind", 8).notNullable();
        t.integer("room_id").notNullable();
        t.integer("message_id").nullable();
        t.integer("from_user_id").notNullable();
        t.bigInteger("created_at").notNullable();
        t.boolean("seen").notNullable().defaultTo(false);
        t.index(["user_id", "seen", "id"]);
      });
    },
  },
];
