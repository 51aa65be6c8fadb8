/**
 * Starts real NoChat nodes for integration tests: `node --import tsx src/main.ts`, the same entry
 * point operators run, configured only through its environment (TRANSPORTER, NAMESPACE, SERVICES,
 * PORT, DATA_DIR, DATABASE_URL, MONGO_URL, JWT_SECRET, NODE_ID, LOG_LEVEL).
 *
 *   const node = await startNode({ t, services: ["api", "auth"], env: { PORT: String(port) },
 *                                  ready: { http: port } });
 *   …
 *   await node.stop(); // also done by t.after when `t` is given
 *
 * Each node's stdout and stderr are kept in memory. They are printed when a test given as `t`
 * fails, when the test process exits with a failure, when startup fails, and live with
 * DEBUG_NODES=1. Every spawned node is killed when the test process exits, and a node whose
 * test process died (SIGKILL, test runner timeout) notices and shuts itself down.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { eventually, GiveUp } from "./wait.js";

/** The repository root (this file is test/support/processes.ts). */
export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const MAIN_ENTRY = path.join(REPO_ROOT, "src", "main.ts");

/** The log line src/main.ts writes once its broker and services have started. */
export const READY_LINE = /NoChat node \S+ up:/;

const DEFAULT_START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
/** Output kept per node (the tail); older output is dropped. */
const MAX_OUTPUT_CHARS = 4 * 1024 * 1024;
/** Output printed per node on failure (the tail). */
const PRINT_OUTPUT_CHARS = 64 * 1024;

/**
 * The JWT_SECRET every node gets unless the test overrides it (≥ 32 characters, as src/config.ts
 * requires when TRANSPORTER is set); the same for all nodes, so a cluster's nodes agree.
 */
export const TEST_JWT_SECRET = "nochat-test-secret-0123456789abcdefghijklmnopqrstuvwxyz";

/**
 * Loaded into each node before src/main.ts: when the test process that spawned it goes away
 * without killing it (SIGKILL, a crash), the node is re-parented; it then stops itself.
 */
const ORPHAN_GUARD =
  "data:text/javascript," +
  encodeURIComponent(
    "const p=process.ppid;setInterval(()=>{if(process.ppid!==p){process.kill(process.pid,'SIGTERM');" +
      "setTimeout(()=>process.exit(1),10000).unref();}},500).unref();",
  );

export type ReadyCondition =
  /** Output matches this (a string is a substring). */
  | string
  | RegExp
  /** GET http://127.0.0.1:<http><path ?? "/api/health"> answers 2xx. */
  | { http: number; path?: string }
  /** Don't wait. */
  | "none";

export interface StartNodeOptions {
  /**
   * The node's settings, over the test process's environment minus NoChat's own variables, and
   * over the defaults LOG_LEVEL=info, a random NODE_ID, JWT_SECRET=TEST_JWT_SECRET, send limits too
   * high to matter (SEND_*, and the per-address and per-socket limits), and a temp
   * DATA_DIR. `undefined` removes a variable. (The default readiness check needs LOG_LEVEL info.)
   */
  env?: Record<string, string | undefined>;
  /** SERVICES for the node, e.g. ["api", "auth"]; omitted → env.SERVICES or all services. */
  services?: readonly string[] | string;
  /** When to consider the node up; default: the "NoChat node … up:" log line. */
  ready?: ReadyCondition;
  /** Default 30 s. */
  timeoutMs?: number;
  /** A label for printed output; default NODE_ID. */
  name?: string;
  /** Extra arguments for src/main.ts. */
  args?: string[];
  /** Give the node a stdin pipe (`child.stdin`), e.g. to type into its REPL; default: none. */
  stdin?: boolean;
  /**
   * A node:test context: the node is stopped in `t.after()`, and its output is printed there
   * when the test failed.
   */
  t?: { after(fn: () => unknown): void; readonly passed?: boolean; readonly name?: string };
}

export interface NodeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface NodeHandle {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** The environment the node was started with (after defaults). */
  readonly env: Readonly<Record<string, string>>;
  /** DATA_DIR: the given one, or a temp dir that stop() removes. */
  readonly dataDir: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<NodeExit>;
  /** Undefined while running. */
  exitStatus(): NodeExit | undefined;
  /** What the node wrote to stdout and stderr so far (ANSI colours removed; the last 4 MiB). */
  output(): string;
  /** How many characters the node has written so far: a `since` for waitForOutput(). */
  outputOffset(): number;
  /** Sends a signal (default SIGKILL), e.g. to simulate a crash. False if it already exited. */
  kill(signal?: NodeJS.Signals): boolean;
  /** SIGTERM, waits for exit, SIGKILL after 10 s. Idempotent. Removes a temp DATA_DIR. */
  stop(): Promise<NodeExit>;
  /** Waits until the output written after `since` (an outputOffset(), default 0) matches. */
  waitForOutput(pattern: string | RegExp, opts?: { timeoutMs?: number; since?: number }): Promise<string>;
  /** Prints the captured output to stderr (tail). */
  printOutput(reason?: string): void;
}

interface Tracked {
  handle: NodeHandle;
  child: ChildProcess;
  /** Whether its output was printed already. */
  printed(): boolean;
  tempDataDir: string | undefined;
}

const tracked = new Set<Tracked>();
let hooksInstalled = false;

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function installProcessHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", (code) => {
    const failed = (code ?? 0) !== 0 || (process.exitCode !== undefined && Number(process.exitCode) !== 0);
    for (const entry of tracked) {
      if (failed && !entry.printed()) entry.handle.printOutput("test process is exiting with a failure");
      if (alive(entry.child)) {
        try {
          entry.child.kill("SIGKILL");
        } catch {
          // already gone
        }
      }
      if (entry.tempDataDir) rmSync(entry.tempDataDir, { recursive: true, force: true, maxRetries: 2 });
    }
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      for (const entry of tracked) if (alive(entry.child)) entry.child.kill("SIGKILL");
      process.removeListener(signal, onSignal);
      // Keep the default behaviour (terminate) unless someone else (e.g. node:test) handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/**
 * Not passed on from the test process: NoChat's own settings (each test gives what it means) and
 * variables that would make the node behave like a test process.
 */
const INHERITED_BLOCKLIST = new Set([
  "TRANSPORTER",
  "TRANSPORTER_TLS_CA",
  "TRANSPORTER_TLS_CERT",
  "TRANSPORTER_TLS_KEY",
  "TRANSPORTER_TLS_SERVERNAME",
  "NAMESPACE",
  "NODE_ID",
  "SERVICES",
  "PORT",
  "HOST",
  "DATA_DIR",
  "DATABASE_URL",
  "MONGO_URL",
  "JWT_SECRET",
  "LOG_LEVEL",
  "NOCHAT_ADMINS",
  "ACCESS_TOKEN_TTL",
  "REFRESH_TOKEN_TTL_DAYS",
  "REQUEST_TIMEOUT",
  "AMQP_PREFETCH",
  "ALLOWED_ORIGINS",
  "LOG_RETENTION_DAYS",
  "SEND_BURST",
  "SEND_PER_SECOND",
  "SEND_PER_MINUTE",
  "TRUST_PROXY",
  "LOGIN_FAILURES_PER_ADDRESS",
  "LOGIN_FAILURES_PER_USER_ADDRESS",
  "LOGIN_FAILURES_PER_USER",
  "LOGIN_WINDOW_SECONDS",
  "REGISTRATIONS_PER_ADDRESS",
  "REGISTRATION_WINDOW_SECONDS",
  "SOCKETS_PER_USER",
  "SOCKETS_PER_ADDRESS",
  "SOCKET_EVENTS_PER_SECOND",
  "SOCKET_EVENT_BURST",
  "SOCKET_TYPING_PER_SECOND",
  "SYNC_MAX_ROOMS",
  "AUDIT_REFUSALS_PER_MINUTE",
  "LOG_MAX_EVENTS",
  "HEALTH_DETAILS",
  "OUTBOX_MAX_ATTEMPTS",
  "OUTBOX_RETRY_MS",
  "METRICS",
  "METRICS_PORT",
  "TRACING",
  "NODE_TEST_CONTEXT",
  "NODE_OPTIONS",
  "FORCE_COLOR",
]);

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;

function servicesValue(services: StartNodeOptions["services"]): string | undefined {
  if (services === undefined) return undefined;
  if (typeof services === "string") return services;
  return services.length === 0 ? "none" : services.join(",");
}

function describeReady(ready: ReadyCondition): string {
  if (typeof ready === "string") return ready === "none" ? "nothing" : JSON.stringify(ready);
  if (ready instanceof RegExp) return String(ready);
  return `GET http://127.0.0.1:${ready.http}${ready.path ?? "/api/health"} → 2xx`;
}

async function httpOk(port: number, urlPath: string): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { signal: AbortSignal.timeout(1_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

function matches(text: string, pattern: string | RegExp): boolean {
  return typeof pattern === "string" ? text.includes(pattern) : new RegExp(pattern.source, pattern.flags).test(text);
}

/** Starts one NoChat node and waits until it is ready (see StartNodeOptions.ready). */
export async function startNode(options: StartNodeOptions = {}): Promise<NodeHandle> {
  installProcessHooks();

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // A developer's own NoChat settings (say TRANSPORTER for a dev cluster) must not leak in.
    if (v !== undefined && !INHERITED_BLOCKLIST.has(k)) env[k] = v;
  }
  env.NO_COLOR = "1";
  // Nor a developer's .env in the checkout.
  env.ENV_FILE = "";
  env.LOG_LEVEL = "info";
  env.NODE_ID = `test-${randomBytes(4).toString("hex")}`;
  env.JWT_SECRET = TEST_JWT_SECRET;
  // Tests post many messages quickly; those about the send limit set it themselves.
  env.SEND_BURST = "100000";
  env.SEND_PER_SECOND = "100000";
  env.SEND_PER_MINUTE = "10000000";
  // Every test client comes from 127.0.0.1 and fires events quickly: the per-address and per-socket
  // limits are out of the way too (test/integration/abuse-limits.test.ts sets them itself).
  env.LOGIN_FAILURES_PER_ADDRESS = "100000";
  env.REGISTRATIONS_PER_ADDRESS = "100000";
  env.SOCKETS_PER_USER = "100000";
  env.SOCKETS_PER_ADDRESS = "100000";
  env.SOCKET_EVENTS_PER_SECOND = "100000";
  env.SOCKET_EVENT_BURST = "100000";
  env.SOCKET_TYPING_PER_SECOND = "100000";
  const services = servicesValue(options.services);
  if (services !== undefined) env.SERVICES = services;
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  let tempDataDir: string | undefined;
  if (!env.DATA_DIR) {
    tempDataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-node-"));
    env.DATA_DIR = tempDataDir;
  }
  const dataDir = env.DATA_DIR;
  const name = options.name ?? env.NODE_ID;

  const child = spawn(
    process.execPath,
    ["--import", ORPHAN_GUARD, "--import", "tsx", MAIN_ENTRY, ...(options.args ?? [])],
    {
      cwd: REPO_ROOT,
      env,
      stdio: [options.stdin ? "pipe" : "ignore", "pipe", "pipe"],
    },
  );

  let buffer = "";
  let dropped = 0;
  const live = process.env.DEBUG_NODES === "1" || process.env.DEBUG_NODES === "true";
  const listeners = new Set<() => void>();
  const onData = (chunk: string): void => {
    const text = chunk.replace(ANSI, "");
    buffer += text;
    if (buffer.length > MAX_OUTPUT_CHARS) {
      const cut = buffer.length - MAX_OUTPUT_CHARS;
      buffer = buffer.slice(cut);
      dropped += cut;
    }
    if (live) {
      process.stderr.write(
        text
          .split("\n")
          .filter((line, i, all) => line !== "" || i < all.length - 1)
          .map((line) => `[${name}] ${line}\n`)
          .join(""),
      );
    }
    for (const l of listeners) l();
  };
  // Decoded per stream, so a character split across chunks stays whole.
  child.stdout!.setEncoding("utf8").on("data", onData);
  child.stderr!.setEncoding("utf8").on("data", onData);

  let exitStatus: NodeExit | undefined;
  const exited = new Promise<NodeExit>((resolve) => {
    // "close", not "exit": by then all of its output has been read.
    child.once("close", (code, signal) => {
      exitStatus = { code, signal };
      for (const l of listeners) l();
      resolve(exitStatus);
    });
    child.once("error", (err) => {
      buffer += `\n[spawn error] ${err.message}\n`;
      exitStatus ??= { code: null, signal: null };
      for (const l of listeners) l();
      resolve(exitStatus);
    });
  });

  const output = (): string => buffer;
  const outputSince = (since: number): string => buffer.slice(Math.max(0, since - dropped));

  let stopping: Promise<NodeExit> | undefined;
  let printed = false;

  const handle: NodeHandle = {
    name,
    pid: child.pid ?? -1,
    child,
    env,
    dataDir,
    exited,
    exitStatus: () => exitStatus,
    output,
    outputOffset: () => dropped + buffer.length,
    kill(signal = "SIGKILL") {
      if (exitStatus || !alive(child)) return false;
      return child.kill(signal);
    },
    stop() {
      stopping ??= (async () => {
        if (!exitStatus && alive(child)) {
          child.kill("SIGTERM");
          const timer = new Promise<"timeout">((resolve) =>
            setTimeout(() => resolve("timeout"), STOP_GRACE_MS).unref(),
          );
          if ((await Promise.race([exited, timer])) === "timeout" && alive(child)) {
            process.stderr.write(`[${name}] did not exit within ${STOP_GRACE_MS} ms of SIGTERM; sending SIGKILL\n`);
            child.kill("SIGKILL");
          }
        }
        const status = await exited;
        if (tempDataDir) rmSync(tempDataDir, { recursive: true, force: true });
        return status;
      })();
      return stopping;
    },
    waitForOutput(pattern, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? DEFAULT_START_TIMEOUT_MS;
      const since = opts.since ?? 0;
      return new Promise<string>((resolve, reject) => {
        const check = (): void => {
          const text = outputSince(since);
          if (matches(text, pattern)) {
            done();
            resolve(text);
          } else if (exitStatus) {
            done();
            reject(new Error(`[${name}] exited (${fmtExit(exitStatus)}) before its output matched ${String(pattern)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`[${name}] output did not match ${String(pattern)} within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    printOutput(reason) {
      printed = true;
      const text = buffer.length > PRINT_OUTPUT_CHARS ? buffer.slice(-PRINT_OUTPUT_CHARS) : buffer;
      const omitted = dropped + buffer.length - text.length;
      const lines = [
        `----- output of NoChat node ${name} (pid ${child.pid ?? "?"}${reason ? `; ${reason}` : ""})${omitted ? ` [first ${omitted} chars omitted]` : ""} -----`,
        text.trimEnd(),
        `----- end of ${name}${exitStatus ? ` (${fmtExit(exitStatus)})` : ""} -----`,
      ];
      process.stderr.write(lines.join("\n") + "\n");
    },
  };
  tracked.add({ handle, child, printed: () => printed, tempDataDir });

  const t = options.t;
  if (t) {
    t.after(async () => {
      if (t.passed === false && !printed) handle.printOutput(`test "${t.name ?? "?"}" failed`);
      await handle.stop();
    });
  }

  const ready = options.ready ?? READY_LINE;
  const timeoutMs = options.timeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  try {
    if (ready === "none") {
      // nothing to wait for
    } else if (typeof ready === "string" || ready instanceof RegExp) {
      await handle.waitForOutput(ready, { timeoutMs });
    } else {
      const urlPath = ready.path ?? "/api/health";
      await eventually(
        `[${name}] to be ready`,
        async () => {
          if (exitStatus) throw new GiveUp(`[${name}] exited (${fmtExit(exitStatus)}) before it was ready`);
          return httpOk(ready.http, urlPath);
        },
        { timeoutMs },
      );
    }
  } catch (err) {
    await handle.stop();
    handle.printOutput(`startup failed: waiting for ${describeReady(ready)}`);
    throw err;
  }
  return handle;
}

function fmtExit(status: NodeExit): string {
  return status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
}

/** Stops every node started by this process that is still running. */
export async function stopAllNodes(): Promise<void> {
  await Promise.all([...tracked].map((entry) => entry.handle.stop()));
}

/** Nodes started by this process (running or not). */
export function startedNodes(): NodeHandle[] {
  return [...tracked].map((entry) => entry.handle);
}
