import { outboxMigration } from "../infra/outbox.js";
import type { Migration } from "../infra/sql.js";

export const chatMigrations: Migration[] = [
  {
    name: "001_chat",
    async up(db) {
      await db.schema.createTable("rooms", (t) => {
        t.increments("id").primary();
        t.string("name", 80).notNullable();
        t.string("kind", 8).notNullable();
        t.string("topic", 250).notNullable().defaultTo("");
        t.integer("created_by").notNullable();
        t.bigInteger("created_at").notNullable();
        // Incremented under the room row's lock in the transaction that inserts a message: gap-free seq.
        t.integer("last_seq").notNullable().defaultTo(0);
        // "<low user id>:<high user id>" for direct rooms: one room per pair.
        t.string("direct_key", 32).nullable().unique();
      });
      await db.schema.createTable("room_members", (t) => {
        t.integer("room_id").unsigned().notNullable().references("id").inTable("rooms").onDelete("CASCADE");
        t.integer("user_id").notNullable().index();
        t.string("role", 8).notNullable();
        t.bigInteger("joined_at").notNullable();
        // The member's read marker: unread = rooms.last_seq - last_read_seq. Only moves forward.
        t.integer("last_read_seq").notNullable().defaultTo(0);
        t.primary(["room_id", "user_id"]);
      });
      await db.schema.createTable("messages", (t) => {
        t.increments("id").primary();
        t.integer("room_id").unsigned().notNullable().references("id").inTable("rooms").onDelete("CASCADE");
        t.integer("seq").notNullable();
        t.integer("user_id").notNullable();
        t.text("body").notNullable();
        t.string("client_msg_id", 64).notNullable();
        t.integer("reply_to").nullable();
        t.bigInteger("created_at").notNullable();
        t.bigInteger("edited_at").nullable();
        t.boolean("deleted").notNullable().defaultTo(false);
        t.unique(["room_id", "seq"]);
        // Exactly-once sends: a retried clientMsgId finds the original instead of inserting again.
        t.unique(["user_id", "client_msg_id"]);
      });
      await db.schema.createTable("message_reactions", (t) => {
        t.integer("message_id").unsigned().notNullable().references("id").inTable("messages").onDelete("CASCADE");
        t.integer("user_id").notNullable();
        t.string("emoji", 64).notNullable();
        t.bigInteger("created_at").notNullable();
        t.primary(["message_id", "user_id", "emoji"]);
      });
    },
  },
  {
    // Who put whom in which room, for the hourly cap on rooms others can add a user to.
    name: "002_room_additions",
    async up(db) {
      await db.schema.createTable("room_additions", (t) => {
        t.increments("id").primary();
        t.integer("user_id").notNullable();
        t.integer("by_user_id").notNullable();
        t.integer("room_id").notNullable();
        t.bigInteger("at").notNullable();
        t.index(["user_id", "at"]);
      });
    },
  },
  outboxMigration("chat"),
];
