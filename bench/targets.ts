/**
 * The systems `npm run bench` measures, each started by the benchmark itself on loopback and
 * stopped after it:
 *
 *   nochat-embedded   one NoChat process, all six services, SQLite and the file log store in a
 *                     fresh DATA_DIR — what `npm start` runs by default
 *   nochat-clustered  G gateways (SERVICES=api) + one process with auth,users,chat,notify,log, over
 *                     RabbitMQ (a fresh NAMESPACE), MariaDB and FerretDB (fresh databases)
 *   baseline-none     bench/baselines/server.ts storing nothing (socket.io's fan-out limit)
 *   baseline-mariadb  the same, one INSERT per message into MariaDB (a fresh database)
 *   baseline-sqlite   the same, one INSERT per message into SQLite (a fresh file)
 *
 * NoChat nodes are started by test/support/processes.ts' startNode — `node --import tsx src/main.ts`
 * as in the tests, with the per-user and per-address abuse limits raised out of the way (the load
 * comes from one address, far above 10 sends/s per user). Each target can say which messages it
 * stored and, for NoChat, how many durable events are still in the outboxes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import mysql from "mysql2/promise";
import { startNode, type NodeHandle } from "../test/support/processes.js";
import { freePort } from "../test/support/servers.js";
import { tokenFor } from "./baselines/token.js";
import { openSqlite, type SqliteDatabase } from "./sqlite.js";
import type { WorkerUser } from "./protocol.js";
import { createMongoDatabase, createMysqlDatabase, rabbitUrl, runId } from "./servers.js";

export const ROOM_SIZE = 10;
const PASSWORD = "bench password 0123456789";
const BASELINE_ENTRY = path.resolve(__dirname, "baselines", "server.ts");

export type TargetName =
  "nochat-embedded" | "nochat-clustered" | "baseline-none" | "baseline-mariadb" | "baseline-sqlite";
export const ALL_TARGETS: TargetName[] = [
  "nochat-embedded",
  "nochat-clustered",
  "baseline-none",
  "baseline-mariadb",
  "baseline-sqlite",
];

/** An undelivered durable event as its outbox row holds it. */
export interface OutboxRow {
  producer: string;
  type: string;
  pending: string;
  attempts: number;
  failures: string | null;
  ageMs: number;
}

/** The producers' outbox tables (not their migration tables, migrations_<owner>_outbox). */
const SQLITE_OUTBOXES =
  "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%\\_outbox' ESCAPE '\\' AND name NOT LIKE 'migrations%'";
const MYSQL_OUTBOXES =
  "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? AND table_name LIKE '%\\_outbox' AND table_name NOT LIKE 'migrations%'";
const OUTBOX_ROWS = "SELECT type, pending, attempts, failures, created_at AS createdAt FROM";

function outboxRow(producer: string, r: Record<string, unknown>): OutboxRow {
  return {
    producer,
    type: String(r.type),
    pending: String(r.pending),
    attempts: Number(r.attempts),
    failures: r.failures === null ? null : String(r.failures).slice(0, 500),
    ageMs: Date.now() - Number(r.createdAt),
  };
}

export interface StoredMessage {
  id: number;
  roomId: number;
}

/** A user of the catch-up test: member of CATCHUP_ROOMS rooms, each with 9 other members. */
export interface CatchUpSetup {
  token: string;
  rooms: number[];
  /** For each room, a member's token, to post the messages the catch-up user misses. */
  posters: Map<number, string>;
}

export interface Setup {
  users: WorkerUser[];
  rooms: number[];
  catchUp?: CatchUpSetup;
}

export interface Target {
  name: TargetName;
  nochat: boolean;
  gateways: string[];
  /** The processes of the system under test: their CPU and RSS are the server's. */
  pids(): number[];
  /** The process behind gateways[0] (the idle-socket test's gateway). */
  gatewayPid(): number;
  setup(users: number, catchUpRooms: number, log: (line: string) => void): Promise<Setup>;
  /** Every message stored in these rooms, or undefined when the target stores none. */
  stored(rooms: number[]): Promise<StoredMessage[] | undefined>;
  /** Durable events not yet delivered, per producer table; undefined when the target has none. */
  backlog(): Promise<Record<string, number> | undefined>;
  /** A few of the undelivered events, to say why a backlog does not drain. */
  backlogRows(): Promise<OutboxRow[]>;
  /** Sockets the target has finished registering (NoChat: presence rows); undefined when it keeps none. */
  connections(): Promise<number | undefined>;
  /** Stops every process; resolves with the exit codes (0 = a clean stop). */
  stop(): Promise<{ name: string; code: number | null; signal: string | null }[]>;
}

// ---- small helpers -----------------------------------------------------------------------------

async function postJson<T>(base: string, urlPath: string, body: unknown, token?: string): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${base}${urlPath}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (res.ok) return JSON.parse(text) as T;
    // UNAVAILABLE (a service still joining): try again; anything else is a bench bug.
    if (res.status !== 503 || attempt >= 20) throw new Error(`POST ${urlPath}: ${res.status} ${text.slice(0, 300)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Runs `fn` over `items` with at most `concurrency` at once, in order of results. */
export async function pool<T, R>(
  items: T[],
  concurrency: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return results;
}

async function sqlOutboxBacklog(
  tables: string[],
  count: (table: string) => Promise<number>,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of tables) out[table.replace(/_outbox$/, "")] = await count(table);
  return out;
}

// ---- NoChat ------------------------------------------------------------------------------------

const NOCHAT_ENV = {
  // A full run lasts minutes; tokens of 15 minutes would do, an hour leaves room.
  ACCESS_TOKEN_TTL: "3600",
  // Not limits under test: one address opens thousands of sockets, every user sends far above 10/s.
  SOCKETS_PER_USER: "100000",
  SOCKETS_PER_ADDRESS: "100000",
  ROOM_ADDS_PER_HOUR: "100000",
  // To profile the nodes under load, e.g. BENCH_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof".
  ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
};

/** Registers users, puts them in rooms of ROOM_SIZE, and builds the catch-up user's rooms. */
async function nochatSetup(
  base: string,
  count: number,
  catchUpRooms: number,
  log: (line: string) => void,
): Promise<Setup> {
  const started = Date.now();
  const tag = randomBytes(2).toString("hex");
  const accounts = await pool(
    Array.from({ length: count + 1 }, (_, i) => i),
    4,
    (i) =>
      postJson<{ user: { id: number }; accessToken: string }>(base, "/api/auth/register", {
        username: i === count ? `catchup_${tag}` : `bench${i}_${tag}`,
        password: PASSWORD,
      }),
  );
  const catcher = accounts.pop()!;
  log(`registered ${accounts.length + 1} users in ${Date.now() - started} ms (argon2id per password)`);
  const groups: (typeof accounts)[] = [];
  for (let i = 0; i < accounts.length; i += ROOM_SIZE) groups.push(accounts.slice(i, i + ROOM_SIZE));
  const rooms = await pool(groups, 4, (group, r) =>
    postJson<{ id: number }>(
      base,
      "/api/rooms",
      { name: `load-${r}`, kind: "private", members: group.slice(1).map((a) => a.user.id) },
      group[0].accessToken,
    ),
  );
  const users: WorkerUser[] = [];
  groups.forEach((group, r) => {
    for (const a of group) users.push({ userId: a.user.id, token: a.accessToken, roomId: rooms[r].id });
  });
  const catchUp: CatchUpSetup = { token: catcher.accessToken, rooms: [], posters: new Map() };
  for (let r = 0; r < catchUpRooms; r++) {
    // 9 members from the load users (each in one catch-up room when there are enough of them).
    const members = Array.from(
      { length: ROOM_SIZE - 1 },
      (_, j) => accounts[(r * (ROOM_SIZE - 1) + j) % accounts.length],
    );
    const room = await postJson<{ id: number }>(
      base,
      "/api/rooms",
      { name: `catch-up-${r}`, kind: "private", members: members.map((a) => a.user.id) },
      catcher.accessToken,
    );
    catchUp.rooms.push(room.id);
    catchUp.posters.set(room.id, members[0].accessToken);
  }
  return { users, rooms: rooms.map((r) => r.id), catchUp };
}

export async function startNochatEmbedded(log: (line: string) => void): Promise<Target> {
  const port = await freePort();
  const node = await startNode({
    name: "embedded",
    env: { ...NOCHAT_ENV, PORT: String(port), HOST: "127.0.0.1" },
    ready: { http: port, path: "/api/health" },
    timeoutMs: 60_000,
  });
  const base = `http://127.0.0.1:${port}`;
  let db: SqliteDatabase | undefined;
  const sqlite = (): SqliteDatabase =>
    (db ??= openSqlite(path.join(node.dataDir, "nochat.sqlite"), { readonly: true, fileMustExist: true }));
  return {
    name: "nochat-embedded",
    nochat: true,
    gateways: [base],
    pids: () => [node.pid],
    gatewayPid: () => node.pid,
    setup: (users, catchUpRooms) => nochatSetup(base, users, catchUpRooms, log),
    async stored(rooms) {
      const marks = rooms.map(() => "?").join(",");
      return sqlite()
        .prepare(`SELECT id, room_id AS roomId FROM messages WHERE room_id IN (${marks})`)
        .all(...rooms) as StoredMessage[];
    },
    async backlog() {
      const tables = (
        sqlite().prepare(SQLITE_OUTBOXES).all() as {
          name: string;
        }[]
      ).map((t) => t.name);
      return sqlOutboxBacklog(
        tables,
        async (t) => (sqlite().prepare(`SELECT count(*) AS n FROM "${t}"`).get() as { n: number }).n,
      );
    },
    async backlogRows() {
      const rows: OutboxRow[] = [];
      for (const { name: table } of sqlite().prepare(SQLITE_OUTBOXES).all() as { name: string }[]) {
        const found = sqlite().prepare(`${OUTBOX_ROWS} "${table}" LIMIT 5`).all() as Record<string, unknown>[];
        for (const r of found) rows.push(outboxRow(table.replace(/_outbox$/, ""), r));
      }
      return rows;
    },
    async connections() {
      return (sqlite().prepare("SELECT count(*) AS n FROM presence_connections").get() as { n: number }).n;
    },
    async stop() {
      db?.close();
      const status = await node.stop();
      return [{ name: node.name, code: status.code, signal: status.signal }];
    },
  };
}

export async function startNochatClustered(gatewayCount: number, log: (line: string) => void): Promise<Target> {
  const [database, mongo] = await Promise.all([
    createMysqlDatabase("nochat_bench"),
    createMongoDatabase("nochat_bench", log),
  ]);
  const nodes: NodeHandle[] = [];
  let sql: mysql.Pool | undefined;
  const cleanup = async (): Promise<{ name: string; code: number | null; signal: string | null }[]> => {
    await sql?.end().catch(() => undefined);
    // Gateways first, as an operator drains traffic before the services.
    const exits: { name: string; code: number | null; signal: string | null }[] = [];
    for (const group of [
      nodes.filter((n) => n.name.startsWith("gateway")),
      nodes.filter((n) => !n.name.startsWith("gateway")),
    ]) {
      const statuses = await Promise.all(group.map((n) => n.stop()));
      group.forEach((n, i) => exits.push({ name: n.name, code: statuses[i].code, signal: statuses[i].signal }));
    }
    await Promise.all([database.drop(), mongo.drop()].map((p) => p.catch(() => undefined)));
    return exits;
  };
  try {
    const common = {
      ...NOCHAT_ENV,
      TRANSPORTER: rabbitUrl(),
      NAMESPACE: `nochat-bench-${runId()}`,
      DATABASE_URL: database.url,
      MONGO_URL: mongo.url,
    };
    // The services first: they create the tables.
    nodes.push(
      await startNode({
        name: "services",
        services: ["auth", "users", "chat", "notify", "log"],
        env: { ...common, NODE_ID: "bench-services" },
        timeoutMs: 60_000,
      }),
    );
    const ports = await Promise.all(Array.from({ length: gatewayCount }, () => freePort()));
    nodes.push(
      ...(await Promise.all(
        ports.map((port, i) =>
          startNode({
            name: `gateway${i + 1}`,
            services: ["api"],
            env: { ...common, NODE_ID: `bench-gateway${i + 1}`, PORT: String(port), HOST: "127.0.0.1" },
            // 200 once all six services are in its registry.
            ready: { http: port, path: "/api/health" },
            timeoutMs: 60_000,
          }),
        ),
      )),
    );
    const gateways = ports.map((p) => `http://127.0.0.1:${p}`);
    sql = mysql.createPool({ uri: database.url, connectionLimit: 2 });
    const db = sql;
    const backlog = async (): Promise<Record<string, number>> => {
      const [tables] = await db.query<mysql.RowDataPacket[]>(MYSQL_OUTBOXES, [database.name]);
      return sqlOutboxBacklog(
        tables.map((r) => String(r.t)),
        async (t) => Number((await db.query<mysql.RowDataPacket[]>(`SELECT count(*) AS n FROM \`${t}\``))[0][0].n),
      );
    };
    return {
      name: "nochat-clustered",
      nochat: true,
      gateways,
      pids: () => nodes.map((n) => n.pid),
      gatewayPid: () => nodes[1].pid,
      setup: (users, catchUpRooms) => nochatSetup(gateways[0], users, catchUpRooms, log),
      async stored(rooms) {
        const [rows] = await db.query<mysql.RowDataPacket[]>(
          "SELECT id, room_id AS roomId FROM messages WHERE room_id IN (?)",
          [rooms],
        );
        return rows.map((r) => ({ id: Number(r.id), roomId: Number(r.roomId) }));
      },
      backlog,
      async backlogRows() {
        const rows: OutboxRow[] = [];
        for (const producer of Object.keys(await backlog())) {
          const [found] = await db.query<mysql.RowDataPacket[]>(`${OUTBOX_ROWS} \`${producer}_outbox\` LIMIT 5`);
          for (const r of found) rows.push(outboxRow(producer, r));
        }
        return rows;
      },
      async connections() {
        const [rows] = await db.query<mysql.RowDataPacket[]>("SELECT count(*) AS n FROM presence_connections");
        return Number(rows[0].n);
      },
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

// ---- baselines ---------------------------------------------------------------------------------

interface Spawned {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: string | null }>;
}

const spawned = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

function spawnBaseline(env: Record<string, string>): Spawned {
  const child = spawn(process.execPath, ["--import", "tsx", BASELINE_ENTRY], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  spawned.add(child);
  let out = "";
  const keep = (chunk: Buffer): void => {
    out = (out + chunk.toString()).slice(-64 * 1024);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once("close", (code, signal) => {
      spawned.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, output: () => out, exited };
}

async function waitHttp(url: string, proc: Spawned, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`baseline exited before it listened:\n${proc.output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`baseline not up within ${timeoutMs} ms:\n${proc.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function startBaseline(store: "none" | "mariadb" | "sqlite"): Promise<Target> {
  const port = await freePort();
  const secret = randomBytes(24).toString("hex");
  const database = store === "mariadb" ? await createMysqlDatabase("nochat_bench_baseline") : undefined;
  const dir = store === "sqlite" ? mkdtempSync(path.join(os.tmpdir(), "nochat-bench-sqlite-")) : undefined;
  const file = dir ? path.join(dir, "baseline.sqlite") : undefined;
  const proc = spawnBaseline({
    PORT: String(port),
    STORE: store,
    TOKEN_SECRET: secret,
    ROOM_SIZE: String(ROOM_SIZE),
    ...(database ? { DATABASE_URL: database.url } : {}),
    ...(file ? { SQLITE_FILE: file } : {}),
  });
  const base = `http://127.0.0.1:${port}`;
  const cleanup = async (): Promise<{ name: string; code: number | null; signal: string | null }[]> => {
    await sql?.end().catch(() => undefined);
    db?.close();
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill("SIGTERM");
    const timer = setTimeout(() => proc.child.kill("SIGKILL"), 10_000);
    const status = await proc.exited;
    clearTimeout(timer);
    await database?.drop().catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
    return [{ name: `baseline-${store}`, ...status }];
  };
  let sql: mysql.Pool | undefined;
  let db: SqliteDatabase | undefined;
  try {
    await waitHttp(`${base}/health`, proc, 30_000);
  } catch (err) {
    await cleanup();
    throw err;
  }
  if (database) sql = mysql.createPool({ uri: database.url, connectionLimit: 2 });
  return {
    name: `baseline-${store}`,
    nochat: false,
    gateways: [base],
    pids: () => [proc.child.pid!],
    gatewayPid: () => proc.child.pid!,
    async setup(count) {
      const users: WorkerUser[] = [];
      for (let id = 1; id <= count; id++)
        users.push({ userId: id, token: tokenFor(id, secret), roomId: Math.ceil(id / ROOM_SIZE) });
      return { users, rooms: [...new Set(users.map((u) => u.roomId))] };
    },
    async stored(rooms) {
      if (sql) {
        const [rows] = await sql.query<mysql.RowDataPacket[]>(
          "SELECT id, room_id AS roomId FROM messages WHERE room_id IN (?)",
          [rooms],
        );
        return rows.map((r) => ({ id: Number(r.id), roomId: Number(r.roomId) }));
      }
      if (file) {
        db ??= openSqlite(file, { readonly: true, fileMustExist: true });
        const marks = rooms.map(() => "?").join(",");
        return db
          .prepare(`SELECT id, room_id AS roomId FROM messages WHERE room_id IN (${marks})`)
          .all(...rooms) as StoredMessage[];
      }
      return undefined;
    },
    backlog: async () => undefined,
    backlogRows: async () => [],
    connections: async () => undefined,
    stop: cleanup,
  };
}

export function startTarget(name: TargetName, gateways: number, log: (line: string) => void): Promise<Target> {
  switch (name) {
    case "nochat-embedded":
      return startNochatEmbedded(log);
    case "nochat-clustered":
      return startNochatClustered(gateways, log);
    case "baseline-none":
      return startBaseline("none");
    case "baseline-mariadb":
      return startBaseline("mariadb");
    case "baseline-sqlite":
      return startBaseline("sqlite");
  }
}
