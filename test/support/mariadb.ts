/**
 * A MariaDB of a test's own, which the test may stop and start again with its data kept — the
 * machine's (or developer's) server is never touched. `mariadb-install-db` creates a data dir in a
 * temp dir; `mariadbd` runs on a free port of 127.0.0.1 with its own socket, pid file and error log
 * there, as the `mysql` user when the test runs as root, else as the test's own user.
 *
 *   const db = await PrivateMariaDB.start();     // installed and answering, in a few seconds
 *   const url = await db.createDatabase("chat"); // mysql://root@127.0.0.1:<port>/chat
 *   await db.stop();                             // SIGTERM: a clean shutdown; resolves on exit
 *   await db.restart();                          // same port, same data
 *   await db.destroy();                          // stops it and removes everything
 *
 * Every step is bounded in time. A server still running when the test process exits is killed,
 * and a watchdog kills it (and removes its files) if the test process dies without exiting.
 * Binaries: TEST_MARIADBD and TEST_MARIADB_INSTALL_DB, else /usr/sbin/mariadbd and
 * mariadb-install-db (or mysql_install_db) on the PATH. Without them the test skips; under
 * CI=true, privateMariaDBUnavailable() throws instead.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import mysql from "mysql2/promise";
import { freePort, isCI, onPath } from "./servers.js";
import { eventually, GiveUp } from "./wait.js";

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
const INSTALL_TIMEOUT_MS = 60_000;

/** Servers still running when the test process exits are killed with it. */
const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

interface Binaries {
  mariadbd: string;
  installDb: string;
}

function binaries(): Binaries | { reason: string } {
  const mariadbd =
    process.env.TEST_MARIADBD ?? ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"].find((file) => existsSync(file));
  const installDb =
    process.env.TEST_MARIADB_INSTALL_DB ?? onPath("mariadb-install-db") ?? onPath("mysql_install_db") ?? undefined;
  if (!mariadbd || !existsSync(mariadbd))
    return { reason: "no mariadbd (install mariadb-server or set TEST_MARIADBD)" };
  if (!installDb) return { reason: "no mariadb-install-db on the PATH (set TEST_MARIADB_INSTALL_DB)" };
  return { mariadbd, installDb };
}

/** Why no private MariaDB can be started here, or undefined. Under CI=true it throws instead. */
export function privateMariaDBUnavailable(): string | undefined {
  const found = binaries();
  if (!("reason" in found)) return undefined;
  if (isCI()) throw new Error(`${found.reason} (CI=true: a private MariaDB is required)`);
  return found.reason;
}

/** The `mysql` account when running as root (mariadbd refuses to run as root without --user). */
function serverUser(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const res = spawnSync("id", ["-u", "mysql"], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", "mysql"], { encoding: "utf8" });
  if (res.status !== 0 || gid.status !== 0) return { name: "root", uid: 0, gid: 0 };
  return { name: "mysql", uid: Number(res.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export class PrivateMariaDB {
  private child: ChildProcess | undefined;
  private output = "";

  private constructor(
    private readonly bin: Binaries,
    private readonly user: ReturnType<typeof serverUser>,
    /** The temp dir holding data/ and run/. */
    readonly baseDir: string,
    readonly port: number,
  ) {}

  /** Installs a fresh data dir and starts the server; resolves once it answers over TCP. */
  static async start(): Promise<PrivateMariaDB> {
    const bin = binaries();
    if ("reason" in bin) throw new Error(bin.reason);
    const user = serverUser();
    const baseDir = mkdtempSync(path.join(os.tmpdir(), "nochat-mariadb-"));
    const db = new PrivateMariaDB(bin, user, baseDir, await freePort());
    try {
      // The server's user must reach its files through the temp dir.
      chmodSync(baseDir, 0o755);
      mkdirSync(db.runDir);
      if (user && user.uid !== 0) chownSync(db.runDir, user.uid, user.gid);
      const install = spawnSync(
        bin.installDb,
        [
          "--no-defaults",
          `--datadir=${db.dataDir}`,
          ...(user ? [`--user=${user.name}`] : []),
          "--auth-root-authentication-method=normal",
          "--skip-test-db",
          ...SERVER_TUNING,
        ],
        { encoding: "utf8", timeout: INSTALL_TIMEOUT_MS },
      );
      if (install.status !== 0) {
        throw new Error(
          `${bin.installDb} failed (${install.error?.message ?? `exit ${install.status}`}): ` +
            `${install.stdout}${install.stderr}`.slice(-3000),
        );
      }
      await db.restart();
      // root@localhost (the socket) has no password; the nodes connect over TCP from 127.0.0.1.
      const admin = await mysql.createConnection({ socketPath: db.socket, user: "root", connectTimeout: 5_000 });
      try {
        await admin.query("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'");
        await admin.query("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION");
      } finally {
        await admin.end();
      }
      return db;
    } catch (err) {
      await db.destroy().catch(() => undefined);
      throw err;
    }
  }

  get dataDir(): string {
    return path.join(this.baseDir, "data");
  }

  get runDir(): string {
    return path.join(this.baseDir, "run");
  }

  get socket(): string {
    return path.join(this.runDir, "mysqld.sock");
  }

  /** mysql://root@127.0.0.1:<port>[/<database>] */
  url(database?: string): string {
    return `mysql://root@127.0.0.1:${this.port}${database ? `/${database}` : ""}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  /** Creates a database (utf8mb4) and returns its URL. */
  async createDatabase(name: string): Promise<string> {
    const conn = await mysql.createConnection({ uri: this.url(), connectTimeout: 5_000 });
    try {
      await conn.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
    } finally {
      await conn.end();
    }
    return this.url(name);
  }

  /** Starts the server (again) on the same port and data; resolves once `SELECT 1` answers over TCP. */
  async restart(): Promise<void> {
    if (this.running) return;
    const args = [
      "--no-defaults",
      `--datadir=${this.dataDir}`,
      `--port=${this.port}`,
      "--bind-address=127.0.0.1",
      "--skip-name-resolve",
      `--socket=${this.socket}`,
      `--pid-file=${path.join(this.runDir, "mysqld.pid")}`,
      `--log-error=${path.join(this.runDir, "error.log")}`,
      "--skip-log-bin",
      ...SERVER_TUNING,
      ...(this.user ? [`--user=${this.user.name}`] : []),
    ];
    const child = spawn(this.bin.mariadbd, args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.setEncoding("utf8").on("data", (d: string) => (this.output += d));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (this.output += d));
    this.child = child;
    live.add(child);
    child.once("exit", () => live.delete(child));
    this.watch(child);
    await eventually(
      "mariadbd to answer",
      async () => {
        if (!this.running) throw new GiveUp(`mariadbd exited at start:\n${this.log().slice(-3000)}`);
        const conn = await mysql.createConnection({
          // Before the first start's grant, only root@localhost (the socket) exists.
          ...(existsSync(this.socket) ? { socketPath: this.socket } : { host: "127.0.0.1", port: this.port }),
          user: "root",
          connectTimeout: 1_000,
        });
        await conn.query("SELECT 1");
        await conn.end();
        return true;
      },
      { timeoutMs: START_TIMEOUT_MS, context: () => this.log() },
    );
  }

  /** A clean shutdown (SIGTERM), SIGKILL after 30 s; resolves when the process has exited. */
  async stop(): Promise<void> {
    await this.signal("SIGTERM");
  }

  /** A crash: SIGKILL; resolves when the process has exited. */
  async kill(): Promise<void> {
    await this.signal("SIGKILL");
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.baseDir, { recursive: true, force: true, maxRetries: 3 });
  }

  /** What the server wrote: its error log and its own output. */
  log(): string {
    const file = path.join(this.runDir, "error.log");
    const errorLog = existsSync(file) ? readFileSync(file, "utf8") : "";
    return `${errorLog}${this.output}`;
  }

  /**
   * If this test process dies without running its exit hooks (SIGKILL, a runner timeout), a
   * detached shell kills the server and removes its files; it ends with the server otherwise.
   */
  private watch(child: ChildProcess): void {
    if (!child.pid) return;
    const script =
      'while kill -0 "$1" 2>/dev/null; do kill -0 "$2" 2>/dev/null || exit 0; sleep 1; done; ' +
      'kill -9 "$2" 2>/dev/null; sleep 1; rm -rf "$3"';
    const watchdog = spawn("sh", ["-c", script, "watchdog", String(process.pid), String(child.pid), this.baseDir], {
      detached: true,
      stdio: "ignore",
    });
    watchdog.unref();
  }
}

/** Small and quick to start: a test server holds little data. */
const SERVER_TUNING = ["--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M"];
