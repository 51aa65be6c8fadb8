/**
 * A FerretDB of a test's own, which the test may stop and start again with its data kept (the
 * shared one from scripts/test.mjs must stay up for everyone). The binary is built (or found in
 * the cache) by `scripts/ferretdb.sh build`; data lives in a temp dir given with `-dir`.
 *
 *   const ferret = await OwnFerretDB.start();   // listening on a free port
 *   await ferret.stop();                        // SIGTERM, waits for the exit
 *   await ferret.restart();                     // same port, same data
 *   await ferret.destroy();                     // stops it and removes the data
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { MongoClient } from "mongodb";
import { REPO_ROOT } from "./processes.js";
import { freePort, isCI, tcpConnect } from "./servers.js";
import { eventually, GiveUp } from "./wait.js";

let binary: string | undefined;

/** Servers still running when the test process exits are killed with it. */
const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** The FerretDB binary, or why there is none (no Go for the first build, …). Under CI: throws. */
export function ferretBinary(): { path: string } | { reason: string } {
  if (binary) return { path: binary };
  const res = spawnSync("bash", [path.join(REPO_ROOT, "scripts", "ferretdb.sh"), "build"], {
    encoding: "utf8",
    timeout: 600_000,
  });
  const out = (res.stdout ?? "").trim().split("\n").pop() ?? "";
  if (res.status === 0 && out) {
    binary = out;
    return { path: binary };
  }
  const reason = `cannot build FerretDB: ${(res.stderr ?? "").trim() || res.error?.message || `exit ${res.status}`}`;
  if (isCI()) throw new Error(reason);
  return { reason };
}

export class OwnFerretDB {
  private child: ChildProcess | undefined;
  private output = "";

  private constructor(
    private readonly bin: string,
    readonly port: number,
    readonly dataDir: string,
  ) {}

  static async start(): Promise<OwnFerretDB> {
    const bin = ferretBinary();
    if ("reason" in bin) throw new Error(bin.reason);
    const ferret = new OwnFerretDB(bin.path, await freePort(), mkdtempSync(path.join(os.tmpdir(), "nochat-ferret-")));
    await ferret.restart();
    return ferret;
  }

  /** mongodb://127.0.0.1:<port>/<database> */
  url(database: string): string {
    return `mongodb://127.0.0.1:${this.port}/${database}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts it (again) on the same port and data dir; resolves once it answers a ping. */
  async restart(): Promise<void> {
    if (this.running) return;
    const child = spawn(this.bin, ["-listen", `127.0.0.1:${this.port}`, "-dir", this.dataDir, "-log-level", "warn"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.setEncoding("utf8").on("data", (d: string) => (this.output += d));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (this.output += d));
    this.child = child;
    live.add(child);
    child.once("exit", () => live.delete(child));
    await eventually(
      "FerretDB to answer",
      async () => {
        if (!this.running) throw new GiveUp(`FerretDB exited at start: ${this.output.slice(-2000)}`);
        await tcpConnect("127.0.0.1", this.port, 1_000);
        const client = new MongoClient(this.url("admin"), { serverSelectionTimeoutMS: 2_000 });
        try {
          await client.connect();
          await client.db("admin").command({ ping: 1 });
          return true;
        } finally {
          await client.close().catch(() => undefined);
        }
      },
      { timeoutMs: 30_000 },
    );
  }

  /** SIGTERM (SIGKILL after 15 s); resolves when the process has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** What the server wrote (warn level and up). */
  log(): string {
    return this.output;
  }
}
