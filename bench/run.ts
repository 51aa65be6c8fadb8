/**
 * `npm run bench` — starts NoChat (embedded, then clustered) and three baselines itself, drives them
 * with the same load generator on loopback, and reports throughput at saturation, latency at 30 % of
 * it, correctness (nothing lost or duplicated), the outbox backlog, idle sockets and their memory,
 * catch-up time and CPU per message. See docs/BENCHMARKS.md.
 *
 *   npm run bench                         every target, default durations (about 6 minutes)
 *   npm run bench -- --quick              correctness only, small and short (under 2 minutes):
 *                                         exits non-zero when anything is lost or duplicated, the
 *                                         backlog does not drain, or a target fails to start or stop
 *   npm run bench -- --targets nochat-clustered --gateways 2
 *
 * Options (defaults full / quick):
 *   --targets a,b        nochat-embedded,nochat-clustered,baseline-none,baseline-mariadb,baseline-sqlite
 *   --gateways N         gateways of nochat-clustered (1)
 *   --users N            load users, in rooms of 10 (200 / 40)
 *   --workers N          load-generator processes (2)
 *   --warmup S           closed-loop warm-up before the window (3 / 1)
 *   --duration S         saturation window: closed loop, one send in flight per user (20 / 2)
 *   --open-duration S    open loop at --open-fraction of the saturation rate (15 / 2)
 *   --open-fraction F    (0.3)
 *   --sockets N          idle authenticated sockets on one gateway (10000 / 2000), capped by `ulimit -n`
 *   --catchup N          messages a reconnecting client catches up on, over 10 rooms (1000)
 *   --body N             message body length in characters (100)
 *   --drain-timeout S    how long the outbox may take to drain after the load (120 / 60)
 *   --deadline S         the whole run stops (and fails) after this long, whatever happens (1200 / 300)
 *   --out FILE           results JSON (bench/results/<time>-full.json; quick: bench/results/quick-latest.json)
 *   --report FILE        runs nothing: prints the tables of a results JSON and writes its chart beside it
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { io } from "socket.io-client";
import { Histogram } from "./hist.js";
import { fdLimit, infraPids, machineCpu, machineInfo, processCpuMs, rssBytes } from "./machine.js";
import { SLOT_MS, type FromWorker, type Progress, type Slots, type ToWorker, type WorkerUser } from "./protocol.js";
import { latencySvg, markdown, ratios, summarize, type BenchResults, type TargetResult } from "./report.js";
import { stopFerret } from "./servers.js";
import { ALL_TARGETS, pool, startTarget, type Setup, type Target, type TargetName } from "./targets.js";

const ROOT = path.resolve(__dirname, "..");
const WORKER_ENTRY = path.join(__dirname, "load-worker.ts");
const CATCHUP_ROOMS = 10;

// ---- options ----------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(`--${name}`);
function option(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i === -1) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`--${name} needs a value`);
  return v;
}
function num(name: string, full: number, quick: number, min = 0): number {
  const raw = option(name);
  const v = raw === undefined ? (QUICK ? quick : full) : Number(raw);
  if (!Number.isFinite(v) || v < min) throw new Error(`--${name}: a number ≥ ${min}, got "${raw}"`);
  return v;
}
const KNOWN = new Set([
  "quick",
  "targets",
  "gateways",
  "users",
  "workers",
  "warmup",
  "duration",
  "open-duration",
  "open-fraction",
  "sockets",
  "catchup",
  "body",
  "drain-timeout",
  "deadline",
  "out",
  "report",
  "help",
]);
for (const a of argv)
  if (a.startsWith("--") && !KNOWN.has(a.slice(2))) {
    console.error(`unknown option ${a} (see bench/run.ts)`);
    process.exit(2);
  }
if (flag("help")) {
  console.log("usage: npm run bench [-- --quick] [--targets a,b] [--gateways N] … (options: bench/run.ts)");
  process.exit(0);
}

const REPORT = option("report");
if (REPORT) {
  const results = JSON.parse(readFileSync(REPORT, "utf8")) as BenchResults;
  writeFileSync(REPORT.replace(/\.json$/, "") + ".svg", latencySvg(results));
  console.log(markdown(results));
  process.exit(0);
}

const QUICK = flag("quick");
const TARGETS = (option("targets")?.split(",") ?? ALL_TARGETS).map((t) => {
  if (!(ALL_TARGETS as string[]).includes(t)) throw new Error(`--targets: unknown "${t}" (${ALL_TARGETS.join(", ")})`);
  return t as TargetName;
});
const GATEWAYS = num("gateways", 1, 1, 1);
const USERS = Math.max(10, Math.round(num("users", 200, 40, 10) / 10) * 10);
const WORKERS = Math.min(num("workers", 2, 2, 1), USERS / 10);
const WARMUP_S = num("warmup", 3, 1);
const DURATION_S = num("duration", 20, 2, 1);
const OPEN_S = num("open-duration", 15, 2, 1);
const OPEN_FRACTION = num("open-fraction", 0.3, 0.3, 0.01);
const SOCKETS_ASKED = num("sockets", 10_000, 2_000);
const CATCHUP = Math.round(num("catchup", 1000, 1000) / CATCHUP_ROOMS) * CATCHUP_ROOMS;
const BODY = num("body", 100, 100, 40);
const DRAIN_S = num("drain-timeout", 120, 60, 1);
const DEADLINE_S = num("deadline", 1200, 300, 10);
const OUT =
  option("out") ??
  path.join(
    ROOT,
    "bench",
    "results",
    QUICK ? "quick-latest.json" : `${new Date().toISOString().slice(0, 19).replace(/:/g, "-")}-full.json`,
  );
/** The gateway holds every idle socket, each worker its share; keep room for everything else. */
const FD_LIMIT = fdLimit();
const SOCKETS = Math.max(0, Math.min(SOCKETS_ASKED, FD_LIMIT - 1_000));

// ---- output -------------------------------------------------------------------------------------

const RUN_STARTED = Date.now();
const tty = process.stderr.isTTY;
let statusShown = false;
function log(line: string): void {
  if (statusShown) process.stderr.write("\r\x1b[K");
  statusShown = false;
  process.stderr.write(`bench ${((Date.now() - RUN_STARTED) / 1000).toFixed(1).padStart(5)} s: ${line}\n`);
}
let lastPlainStatus = 0;
function status(line: string): void {
  if (tty) {
    process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns || 120) - 1)}`);
    statusShown = true;
  } else if (Date.now() - lastPlainStatus >= 5_000) {
    lastPlainStatus = Date.now();
    process.stderr.write(`${line}\n`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const sleepUntil = (at: number): Promise<void> => sleep(Math.max(0, at - Date.now()));
const fmt = (n: number, digits = 0): string =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const MiB = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;

// ---- load-generator workers ---------------------------------------------------------------------

class Worker {
  readonly child: ChildProcess;
  progress: Progress = { acked: 0, received: 0, inFlight: 0, failedAttempts: 0, disconnects: 0 };
  private waiting: { type: string; resolve: (m: FromWorker) => void; reject: (e: Error) => void }[] = [];

  constructor(readonly index: number) {
    this.child = fork(WORKER_ENTRY, [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.child.on("message", (m: FromWorker) => {
      if (m.type === "progress") {
        this.progress = m.progress;
        return;
      }
      if (m.type === "error") {
        for (const w of this.waiting.splice(0)) w.reject(new Error(`load worker ${index}: ${m.message}`));
        return;
      }
      const i = this.waiting.findIndex((w) => w.type === m.type);
      if (i !== -1) this.waiting.splice(i, 1)[0].resolve(m);
    });
    this.child.once("exit", (code) => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`load worker ${index} exited (${code})`));
    });
  }

  send(cmd: ToWorker): void {
    this.child.send(cmd);
  }

  /** Sends a command and waits for the answer of the given type. */
  request<T extends FromWorker["type"]>(
    cmd: ToWorker,
    answer: T,
    timeoutMs: number,
  ): Promise<Extract<FromWorker, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = this.waiting.filter((w) => w !== waiter);
        reject(new Error(`load worker ${this.index}: no "${answer}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        type: answer,
        resolve: (m: FromWorker) => {
          clearTimeout(timer);
          resolve(m as Extract<FromWorker, { type: T }>);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiting.push(waiter);
      this.send(cmd);
    });
  }

  async exit(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((resolve) => this.child.once("exit", resolve));
    try {
      this.send({ type: "exit" });
    } catch {
      // channel closed already
    }
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    await gone;
    clearTimeout(timer);
  }
}

const sumSlots = (slots: Slots[], from: number, to: number): number => {
  let n = 0;
  for (const s of slots)
    for (const [k, v] of Object.entries(s)) {
      const at = Number(k) * SLOT_MS;
      if (at >= from && at < to) n += v;
    }
  return n;
};

// ---- catch-up -----------------------------------------------------------------------------------

interface SyncAck {
  ok: boolean;
  data?: { rooms: Record<string, { messages: { id: number; seq: number }[]; hasMore: boolean }> };
  error?: { code: string };
}

/**
 * A client of CATCHUP_ROOMS rooms connects, holds the rooms' last seqs, and goes away; `count`
 * messages are posted to its rooms by other members; it reconnects and syncs until it holds them.
 */
async function catchUp(
  gateway: string,
  setup: NonNullable<Setup["catchUp"]>,
  count: number,
): Promise<TargetResult["catchUp"]> {
  const connect = async () => {
    const socket = io(gateway, {
      path: "/socket.io",
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      auth: { token: setup.token },
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    return socket;
  };
  const held = new Map<number, Map<number, number>>(setup.rooms.map((r) => [r, new Map()]));
  const contiguous = (room: number): number => {
    let n = 0;
    while (held.get(room)!.has(n + 1)) n++;
    return n;
  };
  let syncCalls = 0;
  let duplicates = 0;
  const syncAll = async (socket: Awaited<ReturnType<typeof connect>>): Promise<void> => {
    const open = new Set(setup.rooms);
    while (open.size > 0) {
      syncCalls++;
      const rooms = Object.fromEntries([...open].map((r) => [String(r), contiguous(r)]));
      const ack = (await socket.timeout(30_000).emitWithAck("sync", { rooms })) as SyncAck;
      if (!ack.ok) throw new Error(`sync refused: ${JSON.stringify(ack.error)}`);
      for (const [id, room] of Object.entries(ack.data!.rooms)) {
        const seqs = held.get(Number(id))!;
        for (const m of room.messages) {
          if (seqs.has(m.seq)) duplicates++;
          seqs.set(m.seq, m.id);
        }
        if (!room.hasMore) open.delete(Number(id));
      }
    }
  };
  // Online once: it knows where each room stands.
  const first = await connect();
  await syncAll(first);
  const before = new Map(setup.rooms.map((r) => [r, contiguous(r)]));
  first.close();
  // Missed while away: count / rooms messages per room, posted over REST by another member.
  const posts = setup.rooms.flatMap((room) =>
    Array.from({ length: count / setup.rooms.length }, (_, i) => ({ room, i })),
  );
  await pool(posts, 8, async ({ room, i }) => {
    const res = await fetch(`${gateway}/api/rooms/${room}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${setup.posters.get(room)}` },
      body: JSON.stringify({ body: `missed ${i} in room ${room}`, clientMsgId: `catchup-${room}-${i}` }),
      signal: AbortSignal.timeout(30_000),
    });
    if (res.status !== 201) throw new Error(`catch-up post: ${res.status} ${await res.text()}`);
  });
  // Back: connect, sync, hold everything.
  const started = performance.now();
  const socket = await connect();
  const connectMs = performance.now() - started;
  syncCalls = 0;
  await syncAll(socket);
  const totalMs = performance.now() - started;
  socket.close();
  let received = 0;
  for (const room of setup.rooms) received += contiguous(room) - before.get(room)!;
  return {
    messages: count,
    rooms: setup.rooms.length,
    received,
    duplicates,
    connectMs: Math.round(connectMs),
    totalMs: Math.round(totalMs),
    syncCalls,
  };
}

// ---- one target ---------------------------------------------------------------------------------

async function runTarget(name: TargetName): Promise<TargetResult> {
  const result: TargetResult = { name, ok: false, failures: [] };
  const fail = (why: string): void => {
    result.failures.push(why);
    log(`${name}: FAIL ${why}`);
  };
  let phase = "starting";
  let target: Target | undefined;
  let workers: Worker[] = [];
  let ticker: NodeJS.Timeout | undefined;
  const samples: { t: number; pending: number }[] = [];
  const targetStarted = Date.now();
  let sampling = false;
  let lastBacklog: number | undefined;
  const sampleBacklog = async (): Promise<number | undefined> => {
    const b = await target?.backlog().catch(() => undefined);
    if (!b) return undefined;
    const pending = Object.values(b).reduce((a, n) => a + n, 0);
    samples.push({ t: Math.round((Date.now() - targetStarted) / 100) / 10, pending });
    lastBacklog = pending;
    return pending;
  };
  /**
   * Waits (at most --drain-timeout) until the target has no more than `sockets` sockets registered
   * (the idle ones' disconnects handled) and its outboxes read empty twice, 1 s apart; then 2 s more
   * (quick: 0.3 s). Resolves with the time until they first read empty, null if they did not.
   */
  const quiesce = async (what: string, sockets: number): Promise<number | null> => {
    phase = what;
    const from = Date.now();
    const within = (): boolean => Date.now() - from < DRAIN_S * 1000;
    let settled = false;
    let emptyAt = 0;
    while (!settled && within()) {
      const connected = await target?.connections().catch(() => undefined);
      if (connected !== undefined && connected > sockets) {
        await sleep(250);
        continue;
      }
      settled = ((await sampleBacklog()) ?? 0) === 0;
      if (settled) {
        emptyAt = Date.now();
        await sleep(1_000);
        settled = ((await sampleBacklog()) ?? 0) === 0;
      } else await sleep(250);
    }
    const took = settled ? emptyAt - from : null;
    await sleep(QUICK ? 300 : 2_000);
    return took;
  };
  let drainAfterSaturationMs: number | null = null;
  try {
    log(`${name}: starting`);
    const startAt = Date.now();
    target = await startTarget(name, GATEWAYS, log);
    result.startupMs = Date.now() - startAt;
    result.gateways = target.gateways.length;
    log(`${name}: up in ${fmt(result.startupMs)} ms (${target.gateways.join(", ")})`);

    phase = "setup";
    const setup = await target.setup(USERS, target.nochat ? CATCHUP_ROOMS : 0, (l) => log(`${name}: ${l}`));
    result.users = setup.users.length;
    result.rooms = setup.rooms.length;

    // Every member of a room in the same worker: rooms dealt out in turn.
    const byWorker: WorkerUser[][] = Array.from({ length: WORKERS }, () => []);
    setup.rooms.forEach((room, i) => byWorker[i % WORKERS].push(...setup.users.filter((u) => u.roomId === room)));
    workers = byWorker.map((_, i) => new Worker(i));
    const t = target;
    ticker = setInterval(() => {
      const p = workers.reduce(
        (a, w) => ({
          acked: a.acked + w.progress.acked,
          received: a.received + w.progress.received,
          inFlight: a.inFlight + w.progress.inFlight,
          failed: a.failed + w.progress.failedAttempts,
        }),
        { acked: 0, received: 0, inFlight: 0, failed: 0 },
      );
      if (sampling) void sampleBacklog();
      status(
        `[${name}] ${phase} · acked ${fmt(p.acked)} · delivered ${fmt(p.received)} · in flight ${fmt(p.inFlight)}` +
          ` · retried ${fmt(p.failed)} · backlog ${lastBacklog ?? "n/a"} · ${fmt((Date.now() - targetStarted) / 1000)} s`,
      );
    }, 1_000);
    await Promise.all(
      workers.map((w, i) =>
        w.request(
          { type: "init", worker: i, gateways: t.gateways, users: byWorker[i], canSync: t.nochat, bodyChars: BODY },
          "ready",
          30_000,
        ),
      ),
    );
    phase = "connecting";
    const conns = await Promise.all(workers.map((w) => w.request({ type: "connect" }, "connected", 90_000)));
    const failedConns = conns.reduce((n, c) => n + c.failed, 0);
    if (failedConns > 0)
      throw new Error(`${failedConns} load sockets did not connect: ${conns.find((c) => c.error)?.error}`);
    sampling = true;

    // ---- idle sockets on one gateway -------------------------------------------------------------
    if ((t.nochat || name === "baseline-none") && SOCKETS > 0) {
      phase = `idle sockets (${fmt(SOCKETS)})`;
      if (SOCKETS < SOCKETS_ASKED) log(`${name}: idle sockets capped at ${SOCKETS} by ulimit -n ${FD_LIMIT}`);
      const gwPid = t.gatewayPid();
      const rss0 = rssBytes(gwPid);
      const shares = workers.map((_, i) => Math.floor(SOCKETS / WORKERS) + (i < SOCKETS % WORKERS ? 1 : 0));
      const opened = await Promise.all(
        workers.map((w, i) =>
          w.request(
            { type: "idleOpen", gateway: t.gateways[0], count: shares[i], concurrency: 25 },
            "idleOpened",
            600_000,
          ),
        ),
      );
      await sleep(3_000);
      const rss1 = rssBytes(gwPid);
      const connected = opened.reduce((n, o) => n + o.connected, 0);
      const connectMs = Math.max(...opened.map((o) => o.ms));
      result.idle = {
        requested: SOCKETS,
        connected,
        failed: opened.reduce((n, o) => n + o.failed, 0),
        connectMs: Math.round(connectMs),
        socketsPerSec: Math.round(connected / (connectMs / 1000)),
        rssBeforeMiB: MiB(rss0),
        rssAfterMiB: MiB(rss1),
        rssPerSocketKiB: connected > 0 ? Math.round(((rss1 - rss0) / connected / 1024) * 10) / 10 : NaN,
      };
      log(
        `${name}: ${fmt(connected)} idle sockets in ${fmt(connectMs / 1000, 1)} s; gateway RSS ${result.idle.rssBeforeMiB} → ` +
          `${result.idle.rssAfterMiB} MiB (${result.idle.rssPerSocketKiB} KiB per socket)`,
      );
      if (result.idle.failed > 0)
        fail(`${result.idle.failed} idle sockets did not connect: ${opened.find((o) => o.error)?.error}`);
      await Promise.all(workers.map((w) => w.request({ type: "idleClose" }, "idleClosed", 60_000)));
    }

    // The idle sockets' connect and disconnect records (audit, presence) go through first: the
    // saturation window measures messages, not them.
    await quiesce("quiescing", setup.users.length);

    // ---- saturation: closed loop --------------------------------------------------------------
    phase = "warm-up";
    for (const w of workers) w.send({ type: "closedStart", tag: "s" });
    await sleep(WARMUP_S * 1000);
    const winStart = Math.ceil(Date.now() / SLOT_MS) * SLOT_MS + SLOT_MS;
    const winEnd = winStart + DURATION_S * 1000;
    await sleepUntil(winStart);
    phase = `saturation (${DURATION_S} s)`;
    const pids = t.pids();
    const loadPids = workers.map((w) => w.child.pid!);
    const infra = infraPids();
    // Per process, so that one exiting in the window (a shared server another user stops) is left
    // out rather than counted negative.
    const cpuAt = (list: number[]): Map<number, number> => new Map(list.map((p) => [p, processCpuMs(p)]));
    const cpuSince = (before: Map<number, number>): number => {
      let ms = 0;
      for (const [pid, was] of before) {
        const now = processCpuMs(pid);
        if (now >= was) ms += now - was;
      }
      return ms;
    };
    const cpu0 = machineCpu();
    const [serverAt, loadAt, infraAt] = [cpuAt(pids), cpuAt(loadPids), cpuAt(infra)];
    await sleepUntil(winEnd);
    const cpu1 = machineCpu();
    const [serverMs, loadMs, infraMs] = [cpuSince(serverAt), cpuSince(loadAt), cpuSince(infraAt)];
    const serverRss = pids.reduce((a, p) => a + rssBytes(p), 0);
    phase = "stopping the closed loop";
    const stopped = await Promise.all(workers.map((w) => w.request({ type: "closedStop" }, "closedStopped", 60_000)));
    const acked = sumSlots(
      stopped.map((s) => s.acks),
      winStart,
      winEnd,
    );
    const deliveries = sumSlots(
      stopped.map((s) => s.receipts),
      winStart,
      winEnd,
    );
    const seconds = (winEnd - winStart) / 1000;
    const perMsg = (ms: number): number => (acked > 0 ? Math.round((ms / acked) * 1000) / 1000 : NaN);
    result.saturation = {
      seconds,
      acked,
      sendsPerSec: Math.round(acked / seconds),
      deliveries,
      deliveriesPerSec: Math.round(deliveries / seconds),
      failedAttempts: stopped.reduce((n, s) => n + s.failedAttempts, 0),
      machineCpuMsPerMsg: perMsg(cpu1.busyMs - cpu0.busyMs),
      machineBusyPercent: Math.round(((cpu1.busyMs - cpu0.busyMs) / (cpu1.totalMs - cpu0.totalMs)) * 1000) / 10,
      serverCpuMsPerMsg: perMsg(serverMs),
      loadCpuMsPerMsg: perMsg(loadMs),
      infraCpuMsPerMsg: perMsg(infraMs),
      otherCpuMsPerMsg: perMsg(cpu1.busyMs - cpu0.busyMs - serverMs - loadMs - infraMs),
      serverRssMiB: MiB(serverRss),
    };
    const atLoadEnd = (await sampleBacklog()) ?? 0;
    log(
      `${name}: saturation ${fmt(result.saturation.sendsPerSec)} sends/s, ${fmt(result.saturation.deliveriesPerSec)} deliveries/s` +
        ` (machine ${result.saturation.machineBusyPercent} % busy; ${result.saturation.machineCpuMsPerMsg} CPU ms/msg)`,
    );
    if (acked === 0) fail("nothing was acknowledged during the saturation window");

    phase = "delivering";
    const settles1 = await Promise.all(
      workers.map((w) => w.request({ type: "settle", timeoutMs: 30_000 }, "settled", 120_000)),
    );

    // What the saturation left in the outboxes is delivered before the latency is measured at 30 %.
    drainAfterSaturationMs = await quiesce("outbox catching up", setup.users.length);
    if (samples.length > 0)
      log(
        `${name}: outbox backlog ${atLoadEnd} at the end of the window, ` +
          (drainAfterSaturationMs === null
            ? `not drained within ${DRAIN_S} s`
            : `drained in ${fmt(drainAfterSaturationMs)} ms`),
      );

    // ---- open loop at a fraction of saturation -------------------------------------------------
    const rate = Math.max(1, Math.round(result.saturation.sendsPerSec * OPEN_FRACTION));
    phase = `open loop ${fmt(rate)}/s (${OPEN_S} s)`;
    const openAt = Date.now() + 500;
    const dones = await Promise.all(
      workers.map((w, i) =>
        w.request(
          { type: "open", startAt: openAt, durationMs: OPEN_S * 1000, ratePerSec: (rate * byWorker[i].length) / USERS },
          "openDone",
          OPEN_S * 1000 + 120_000,
        ),
      ),
    );
    const ackHist = new Histogram();
    const e2eHist = new Histogram();
    for (const d of dones) {
      ackHist.merge(d.ack);
      e2eHist.merge(d.e2e);
    }
    result.open = {
      ratePerSec: rate,
      seconds: OPEN_S,
      scheduled: dones.reduce((n, d) => n + d.scheduled, 0),
      acked: dones.reduce((n, d) => n + d.acked, 0),
      maxLagMs: Math.round(Math.max(...dones.map((d) => d.maxLagMs))),
      failedAttempts: dones.reduce((n, d) => n + d.failedAttempts, 0),
      ack: summarize(ackHist),
      e2e: summarize(e2eHist),
    };
    log(
      `${name}: open loop ${fmt(rate)}/s: ack p50/p95/p99 ${result.open.ack.p50}/${result.open.ack.p95}/${result.open.ack.p99} ms,` +
        ` send→receive ${result.open.e2e.p50}/${result.open.e2e.p95}/${result.open.e2e.p99} ms`,
    );
    if (result.open.acked !== result.open.scheduled)
      fail(`open loop: ${result.open.acked} of ${result.open.scheduled} sends acknowledged`);

    phase = "delivering";
    const settles2 = await Promise.all(
      workers.map((w) => w.request({ type: "settle", timeoutMs: 30_000 }, "settled", 120_000)),
    );

    // ---- catch-up (NoChat: sync) -----------------------------------------------------------------
    if (t.nochat && setup.catchUp && CATCHUP > 0) {
      phase = `catch-up of ${fmt(CATCHUP)} messages`;
      result.catchUp = await catchUp(t.gateways[0], setup.catchUp, CATCHUP);
      log(`${name}: caught up on ${fmt(result.catchUp!.received)} messages in ${fmt(result.catchUp!.totalMs)} ms`);
      if (result.catchUp!.received !== CATCHUP || result.catchUp!.duplicates !== 0)
        fail(`catch-up: ${result.catchUp!.received} of ${CATCHUP} messages, ${result.catchUp!.duplicates} duplicated`);
    }

    // ---- correctness ----------------------------------------------------------------------------
    phase = "checking";
    const last = settles2;
    const ackedIds = new Set(last.flatMap((s) => s.rooms.flatMap((r) => r.ids)));
    const stored = await t.stored(setup.rooms);
    const storedIds = stored ? new Set(stored.map((m) => m.id)) : undefined;
    const sum = (xs: typeof last, f: (s: (typeof last)[number]) => number): number => xs.reduce((n, s) => n + f(s), 0);
    result.correctness = {
      acked: ackedIds.size,
      stored: stored ? stored.length : null,
      lostInDb: storedIds ? [...ackedIds].filter((id) => !storedIds.has(id)).length : null,
      extraInDb: stored ? stored.length - stored.filter((m) => ackedIds.has(m.id)).length : null,
      expectedDeliveries: sum(last, (s) => s.expected),
      held: sum(last, (s) => s.held),
      missedLive: sum(settles1, (s) => s.missedLive) + sum(last, (s) => s.missedLive),
      recoveredBySync: sum(settles1, (s) => s.recoveredBySync) + sum(last, (s) => s.recoveredBySync),
      lost: sum(last, (s) => s.lost),
      duplicates: sum(last, (s) => s.duplicates),
      ackConflicts: sum(last, (s) => s.ackConflicts),
    };
    const c = result.correctness;
    if (c.lost > 0) fail(`${c.lost} deliveries lost (receivers lack acknowledged messages, after sync)`);
    if (c.duplicates > 0) fail(`${c.duplicates} deliveries duplicated`);
    if (c.ackConflicts > 0) fail(`${c.ackConflicts} clientMsgIds acknowledged as two messages`);
    if (c.lostInDb) fail(`${c.lostInDb} acknowledged messages not in the database`);
    if (c.extraInDb) fail(`${c.extraInDb} messages in the database that were never acknowledged (duplicates)`);
    log(
      `${name}: ${fmt(c.acked)} acknowledged, ${c.stored === null ? "no store" : `${fmt(c.stored)} stored`}, ` +
        `${fmt(c.held)} of ${fmt(c.expectedDeliveries)} deliveries held (${c.missedLive} missed live, ${c.recoveredBySync} by sync), ` +
        `lost ${c.lost + (c.lostInDb ?? 0)}, duplicated ${c.duplicates + (c.extraInDb ?? 0) + c.ackConflicts}`,
    );

    // ---- the backlog drains -----------------------------------------------------------------------
    if (samples.length > 0) {
      phase = "outbox draining";
      const drainStart = Date.now();
      let final = await sampleBacklog();
      while (final !== undefined && final > 0 && Date.now() - drainStart < DRAIN_S * 1000) {
        await sleep(500);
        final = await sampleBacklog();
      }
      result.backlog = {
        samples,
        maxDuring: Math.max(...samples.map((s) => s.pending)),
        atLoadEnd,
        drainAfterSaturationMs,
        final: final ?? -1,
        drainedMs: final === 0 ? Date.now() - drainStart : null,
      };
      log(`${name}: outbox backlog max ${result.backlog.maxDuring}, ${result.backlog.final} left after the drain wait`);
      if (final !== 0) {
        const rows = await t.backlogRows().catch(() => []);
        fail(`the outbox backlog did not drain within ${DRAIN_S} s (${final} pending): ${JSON.stringify(rows)}`);
      }
    }
  } catch (err) {
    fail(`${phase}: ${(err as Error).stack ?? String(err)}`);
  } finally {
    clearInterval(ticker);
    sampling = false;
    await Promise.all(workers.map((w) => w.exit()));
    if (target) {
      log(`${name}: stopping`);
      try {
        result.stops = await target.stop();
        for (const s of result.stops)
          if (s.code !== 0) fail(`${s.name} did not stop cleanly (${s.signal ?? `exit code ${s.code}`})`);
      } catch (err) {
        fail(`stopping: ${(err as Error).message}`);
      }
    }
  }
  result.ok = result.failures.length === 0;
  return result;
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const started = Date.now();
  const machine = machineInfo();
  log(
    `${QUICK ? "quick (correctness only)" : "full"} run: ${TARGETS.join(", ")}; ${USERS} users in rooms of 10, ${WORKERS} load workers; ` +
      `${machine.cores} cores, ${machine.ramGiB} GiB, load average ${machine.loadAverageAtStart}`,
  );
  const targets: TargetResult[] = [];
  for (const name of TARGETS) targets.push(await runTarget(name));
  const results: BenchResults = {
    version: 1,
    startedAt: new Date(started).toISOString(),
    command: `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}`,
    quick: QUICK,
    options: {
      targets: TARGETS,
      gateways: GATEWAYS,
      users: USERS,
      roomSize: 10,
      workers: WORKERS,
      warmupS: WARMUP_S,
      durationS: DURATION_S,
      openDurationS: OPEN_S,
      openFraction: OPEN_FRACTION,
      sockets: SOCKETS,
      catchUp: CATCHUP,
      bodyChars: BODY,
    },
    machine,
    totalSeconds: Math.round((Date.now() - started) / 1000),
    targets,
    ratios: ratios(targets),
    ok: targets.every((t) => t.ok),
  };
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 1) + "\n");
  const svg = OUT.replace(/\.json$/, "") + ".svg";
  writeFileSync(svg, latencySvg(results));
  console.log("\n" + markdown(results) + "\n");
  if (QUICK) console.log("(quick mode: small and short — the figures are not measurements, only the checks count)");
  console.log(`results: ${path.relative(process.cwd(), OUT)}, chart: ${path.relative(process.cwd(), svg)}`);
  console.log(
    `${results.ok ? "OK" : "FAILED"}: ${targets.filter((t) => t.ok).length} of ${targets.length} targets passed their checks in ${results.totalSeconds} s`,
  );
  for (const t of targets) for (const f of t.failures) console.log(`  ${t.name}: ${f.split("\n")[0]}`);
  return results.ok ? 0 : 1;
}

for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    log(`${signal}: stopping`);
    process.exit(130);
  });

// Bounded whatever happens: a hung phase ends the run (the exit hooks stop every process started).
setTimeout(() => {
  log(`FAILED: the run took longer than --deadline ${DEADLINE_S} s; stopping everything`);
  process.exit(1);
}, DEADLINE_S * 1000).unref();

// FerretDB's process dies with this one whatever happens (OwnFerretDB's exit hook); its data is
// removed on the way out of a run that ends by itself.
main().then(
  async (code) => {
    await stopFerret().catch(() => undefined);
    process.exit(code);
  },
  async (err: unknown) => {
    console.error("bench failed:", err);
    await stopFerret().catch(() => undefined);
    process.exit(1);
  },
);
