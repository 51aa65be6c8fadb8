/**
 * The baselines of `npm run bench`: a monolithic socket.io chat, as small as it can honestly be,
 * speaking the part of NoChat's socket contract the load generator uses (docs/API.md):
 *
 * - the handshake carries a token (`<userId>.<HMAC-SHA256 of it>`), checked before `connect`;
 * - user u is in room ceil(u / ROOM_SIZE); its socket joins `room:<id>` at connect;
 * - `message:send { roomId, body, clientMsgId }` is validated (room membership, body 1–4,000
 *   characters, clientMsgId 8–64 of [A-Za-z0-9_-]), given the room's next seq, stored, acknowledged
 *   `{ ok: true, data: Message }` after the store answered, then broadcast as `message:new` to the
 *   room (the sender's socket included, as NoChat does).
 *
 * STORE picks where a message goes:
 *   none     nowhere: the fan-out limit of socket.io on this machine
 *   mariadb  one INSERT per message (autocommit) through a mysql2 pool of 20 (as NoChat's knex pool), DATABASE_URL
 *   sqlite   one INSERT per message through better-sqlite3 (WAL, synchronous=NORMAL, as NoChat), SQLITE_FILE
 * Both tables have NoChat's unique keys (room, seq) and (user, clientMsgId): a retried clientMsgId is
 * answered with the stored original and not broadcast again.
 *
 *   PORT=4000 STORE=sqlite SQLITE_FILE=/tmp/b.sqlite TOKEN_SECRET=… node --import tsx bench/baselines/server.ts
 */
import { timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import mysql from "mysql2/promise";
import { Server } from "socket.io";
import { openSqlite } from "../sqlite.js";
import { tokenFor } from "./token.js";

const PORT = Number(process.env.PORT ?? 4000);
const STORE = process.env.STORE ?? "none";
const ROOM_SIZE = Number(process.env.ROOM_SIZE ?? 10);
const SECRET = process.env.TOKEN_SECRET ?? "";
if (SECRET.length < 16) throw new Error("TOKEN_SECRET: at least 16 characters");

function userOfToken(token: unknown): number | undefined {
  if (typeof token !== "string" || token.length > 200) return undefined;
  const userId = Number(token.slice(0, token.indexOf(".")));
  if (!Number.isSafeInteger(userId) || userId < 1) return undefined;
  const a = Buffer.from(token);
  const b = Buffer.from(tokenFor(userId, SECRET));
  return a.length === b.length && timingSafeEqual(a, b) ? userId : undefined;
}

interface Message {
  id: number;
  roomId: number;
  seq: number;
  userId: number;
  body: string;
  clientMsgId: string;
  replyTo: null;
  createdAt: string;
  editedAt: null;
  deleted: false;
  reactions: Record<string, number[]>;
}

/** Stores a message and answers its id, or the stored original for a repeated clientMsgId. */
type Store = (m: Message) => Promise<{ id: number; original?: Message }>;

const CREATE = `CREATE TABLE messages (
  id INTEGER PRIMARY KEY AUTO_INCREMENT, room_id INTEGER NOT NULL, seq INTEGER NOT NULL, user_id INTEGER NOT NULL,
  body TEXT NOT NULL, client_msg_id VARCHAR(64) NOT NULL, created_at BIGINT NOT NULL,
  UNIQUE (room_id, seq), UNIQUE (user_id, client_msg_id))`;
const INSERT =
  "INSERT INTO messages (room_id, seq, user_id, body, client_msg_id, created_at) VALUES (?, ?, ?, ?, ?, ?)";
const ORIGINAL = "SELECT id, room_id, seq, body, created_at FROM messages WHERE user_id = ? AND client_msg_id = ?";

interface Row {
  id: number;
  room_id: number;
  seq: number;
  body: string;
  created_at: number;
}
const fromRow = (r: Row, m: Message): Message => ({
  ...m,
  id: r.id,
  roomId: r.room_id,
  seq: r.seq,
  body: r.body,
  createdAt: new Date(Number(r.created_at)).toISOString(),
});
const isDuplicate = (err: unknown): boolean =>
  ["ER_DUP_ENTRY", "SQLITE_CONSTRAINT_UNIQUE"].includes((err as { code?: string }).code ?? "");

async function openStore(): Promise<{ store: Store; close(): Promise<void> }> {
  if (STORE === "none") {
    let nextId = 0;
    return { store: async () => ({ id: ++nextId }), close: async () => undefined };
  }
  if (STORE === "mariadb") {
    const pool = mysql.createPool({ uri: process.env.DATABASE_URL, connectionLimit: 20 });
    await pool.query(CREATE);
    const store: Store = async (m) => {
      const args = [m.roomId, m.seq, m.userId, m.body, m.clientMsgId, Date.parse(m.createdAt)];
      try {
        const [res] = await pool.execute<mysql.ResultSetHeader>(INSERT, args);
        return { id: res.insertId };
      } catch (err) {
        if (!isDuplicate(err)) throw err;
        const [rows] = await pool.execute<(Row & mysql.RowDataPacket)[]>(ORIGINAL, [m.userId, m.clientMsgId]);
        if (!rows[0]) throw err;
        return { id: rows[0].id, original: fromRow(rows[0], m) };
      }
    };
    return { store, close: () => pool.end() };
  }
  if (STORE === "sqlite") {
    const db = openSqlite(process.env.SQLITE_FILE ?? "baseline.sqlite");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.exec(CREATE.replace("AUTO_INCREMENT", "AUTOINCREMENT"));
    const insert = db.prepare(INSERT);
    const original = db.prepare(ORIGINAL);
    const store: Store = async (m) => {
      try {
        const res = insert.run(m.roomId, m.seq, m.userId, m.body, m.clientMsgId, Date.parse(m.createdAt));
        return { id: Number(res.lastInsertRowid) };
      } catch (err) {
        if (!isDuplicate(err)) throw err;
        const row = original.get(m.userId, m.clientMsgId) as Row | undefined;
        if (!row) throw err;
        return { id: row.id, original: fromRow(row, m) };
      }
    };
    return { store, close: async () => void db.close() };
  }
  throw new Error(`STORE must be none, mariadb or sqlite, got "${STORE}"`);
}

const fail = (code: string, message: string) => ({ ok: false as const, error: { code, message } });

async function main(): Promise<void> {
  const { store, close } = await openStore();
  const http = createServer((req, res) => {
    res.writeHead(req.url === "/health" ? 200 : 404, { "content-type": "application/json" });
    res.end(JSON.stringify({ status: "ok", store: STORE }));
  });
  const io = new Server(http, { path: "/socket.io", serveClient: false, maxHttpBufferSize: 20 * 1024 });
  const lastSeq = new Map<number, number>();

  io.use((socket, next) => {
    const userId = userOfToken(socket.handshake.auth?.token);
    if (userId === undefined) return next(new Error("UNAUTHORIZED"));
    socket.data.userId = userId;
    socket.data.roomId = Math.ceil(userId / ROOM_SIZE);
    void socket.join(`room:${socket.data.roomId}`);
    next();
  });

  io.on("connection", (socket) => {
    const userId: number = socket.data.userId;
    socket.on("message:send", async (payload: unknown, ack?: (res: unknown) => void) => {
      if (typeof ack !== "function") return;
      const p = (payload ?? {}) as { roomId?: unknown; body?: unknown; clientMsgId?: unknown };
      if (p.roomId !== socket.data.roomId) return ack(fail("FORBIDDEN", "Not a member of this room"));
      const body = typeof p.body === "string" ? p.body.trim() : "";
      if (body.length < 1 || body.length > 4000) return ack(fail("VALIDATION_ERROR", "body: 1–4,000 characters"));
      if (typeof p.clientMsgId !== "string" || !/^[A-Za-z0-9_-]{8,64}$/.test(p.clientMsgId))
        return ack(fail("VALIDATION_ERROR", "clientMsgId: 8–64 of [A-Za-z0-9_-]"));
      const roomId = p.roomId as number;
      const seq = (lastSeq.get(roomId) ?? 0) + 1;
      lastSeq.set(roomId, seq);
      const message: Message = {
        id: 0,
        roomId,
        seq,
        userId,
        body,
        clientMsgId: p.clientMsgId,
        replyTo: null,
        createdAt: new Date().toISOString(),
        editedAt: null,
        deleted: false,
        reactions: {},
      };
      try {
        const { id, original } = await store(message);
        if (original) return ack({ ok: true, data: original });
        message.id = id;
        ack({ ok: true, data: message });
        io.to(`room:${roomId}`).emit("message:new", message);
      } catch (err) {
        console.error("store failed:", (err as Error).message);
        ack(fail("UNAVAILABLE", "The store failed; retry"));
      }
    });
  });

  await new Promise<void>((resolve) => http.listen(PORT, "127.0.0.1", resolve));
  console.log(`baseline (${STORE}) listening on 127.0.0.1:${PORT}`);
  const stop = (): void => {
    io.close(() => void close().finally(() => process.exit(0)));
    setTimeout(() => process.exit(0), 5_000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err: unknown) => {
  console.error("baseline failed to start:", err instanceof Error ? err.message : err);
  process.exit(1);
});
