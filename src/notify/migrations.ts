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
        // The message's seq: mentions since a read marker are those with a higher seq.
        t.integer("seq").nullable();
        t.integer("from_user_id").notNullable();
        t.bigInteger("created_at").notNullable();
        t.boolean("seen").notNullable().defaultTo(false);
        // Produced by this event; with `kind` and `user_id` it makes a replayed event a no-op.
        t.string("event_id", 36).notNullable();
        t.unique(["event_id", "user_id", "kind"]);
        t.index(["user_id", "seen", "id"]);
        t.index(["user_id", "room_id", "kind", "seq"]);
      });
      // Events already applied: deduplication of at-least-once delivery.
      await db.schema.createTable("notify_processed", (t) => {
        t.string("event_id", 36).primary();
        t.bigInteger("processed_at").notNullable().index();
      });
      await db.schema.createTable("notify_room_prefs", (t) => {
        t.integer("user_id").notNullable();
        t.integer("room_id").notNullable();
        t.string("level", 8).notNullable();
        t.primary(["user_id", "room_id"]);
      });
    },
  },
];
