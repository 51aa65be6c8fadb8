/**
 * A RabbitMQ node of a test's own, which the test may stop, start and configure (TLS) — the
 * machine's broker is never touched. The node runs as a child of the test process with its own
 * name (`nochat-faults-<random>@localhost`), free AMQP / TLS / distribution ports on 127.0.0.1, its
 * own data, log, config, enabled-plugins file (none: no management listener) and Erlang cookie
 * (HOME is a temp dir), so `rabbitmqctl` reaches it only through this helper.
 *
 *   const rabbit = await PrivateRabbitMQ.start();             // booted, in ~5 s
 *   rabbit.url                                                 // amqp://guest:guest@127.0.0.1:<port>
 *   await rabbit.ctl.stopApp(); await rabbit.ctl.startApp();   // an outage
 *   await rabbit.destroy();                                    // `rabbitmqctl stop`, files removed
 *
 *   const tls = await PrivateRabbitMQ.start({ tls: { caFile, certFile, keyFile, requireClientCert: true } });
 *   tls.tlsUrl                                                 // amqps://guest:guest@localhost:<port>
 *
 * Binaries: TEST_RABBITMQ_SERVER / TEST_RABBITMQCTL_BIN, else /usr/lib/rabbitmq/bin/{rabbitmq-server,
 * rabbitmqctl} (the scripts without Debian's `su rabbitmq` wrapper), else the ones on the PATH.
 * Every step is bounded; a node still running when the test process exits is killed, and a detached
 * watchdog kills it (and removes its files) if the test process dies without exiting.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, isCI, onPath, tcpConnect } from "./servers.js";
import { eventually, GiveUp } from "./wait.js";

const START_TIMEOUT_MS = 60_000;
const CTL_TIMEOUT_MS = 90_000;

/** Nodes still running when the test process exits are killed with it (the script and its VM). */
const live = new Map<ChildProcess, () => void>();
process.on("exit", () => {
  for (const [child, killBeam] of live) {
    killBeam();
    child.kill("SIGKILL");
  }
});

interface Binaries {
  server: string;
  ctl: string;
}

function binaries(): Binaries | { reason: string } {
  const server =
    process.env.TEST_RABBITMQ_SERVER ??
    (existsSync("/usr/lib/rabbitmq/bin/rabbitmq-server") ? "/usr/lib/rabbitmq/bin/rabbitmq-server" : undefined) ??
    onPath("rabbitmq-server");
  const ctl =
    process.env.TEST_RABBITMQCTL_BIN ??
    (existsSync("/usr/lib/rabbitmq/bin/rabbitmqctl") ? "/usr/lib/rabbitmq/bin/rabbitmqctl" : undefined) ??
    onPath("rabbitmqctl");
  if (!server) return { reason: "no rabbitmq-server (install rabbitmq-server or set TEST_RABBITMQ_SERVER)" };
  if (!ctl) return { reason: "no rabbitmqctl (set TEST_RABBITMQCTL_BIN)" };
  return { server, ctl };
}

/** Controls a private node for outage tests: `stop_app`, then `start_app` (always, in a `finally`). */
export interface RabbitCtl {
  /** The command line, for messages. */
  readonly command: string;
  /** Why the broker cannot be controlled, or undefined when it can. */
  unavailableReason(): Promise<string | undefined>;
  stopApp(): Promise<void>;
  /** start_app, then await_startup: resolves once the broker accepts connections again. */
  startApp(): Promise<void>;
  run(...args: string[]): Promise<string>;
}

/** Why no private RabbitMQ node can be started here, or undefined. Under CI=true it throws instead. */
export function privateRabbitUnavailable(): string | undefined {
  const found = binaries();
  if (!("reason" in found)) return undefined;
  if (isCI()) throw new Error(`${found.reason} (CI=true: a private RabbitMQ is required)`);
  return found.reason;
}

export interface PrivateRabbitTls {
  /** PEM files: the CA that signed the clients' (and the server's) certificates, the server's own. */
  caFile: string;
  certFile: string;
  keyFile: string;
  /** verify_peer + fail_if_no_peer_cert: a client without a certificate signed by the CA is refused. */
  requireClientCert?: boolean;
}

export interface PrivateRabbitOptions {
  tls?: PrivateRabbitTls;
}

export class PrivateRabbitMQ {
  private child: ChildProcess | undefined;
  private output = "";
  readonly ctl: RabbitCtl;

  private constructor(
    private readonly bin: Binaries,
    readonly baseDir: string,
    readonly nodeName: string,
    readonly port: number,
    readonly tlsPort: number | undefined,
    private readonly distPort: number,
  ) {
    const run = (...args: string[]): Promise<string> => this.rabbitmqctl(...args);
    this.ctl = {
      command: `${bin.ctl} -n ${nodeName}`,
      unavailableReason: async () => undefined,
      stopApp: async () => {
        await run("stop_app");
      },
      startApp: async () => {
        await run("start_app");
        await run("await_startup");
      },
      run,
    };
  }

  static async start(options: PrivateRabbitOptions = {}): Promise<PrivateRabbitMQ> {
    const bin = binaries();
    if ("reason" in bin) throw new Error(bin.reason);
    const baseDir = mkdtempSync(path.join(os.tmpdir(), "nochat-rabbitmq-"));
    const nodeName = `nochat-faults-${randomBytes(4).toString("hex")}@localhost`;
    const rabbit = new PrivateRabbitMQ(
      bin,
      baseDir,
      nodeName,
      await freePort(),
      options.tls ? await freePort() : undefined,
      await freePort(),
    );
    try {
      for (const dir of ["home", "mnesia", "log"]) mkdirSync(path.join(baseDir, dir));
      const cookie = path.join(baseDir, "home", ".erlang.cookie");
      writeFileSync(cookie, randomBytes(16).toString("hex").toUpperCase());
      chmodSync(cookie, 0o400);
      writeFileSync(path.join(baseDir, "enabled_plugins"), "[].\n");
      writeFileSync(path.join(baseDir, "rabbitmq-env.conf"), "");
      const conf = [
        `listeners.tcp.default = 127.0.0.1:${rabbit.port}`,
        // A test broker on a loaded machine: no disk or memory alarm blocks the publishers.
        "disk_free_limit.absolute = 1MB",
        "vm_memory_high_watermark.relative = 0.9",
        "log.console = true",
        "log.console.level = warning",
        "log.file.level = info",
      ];
      const tls = options.tls;
      if (tls && rabbit.tlsPort) {
        conf.push(
          `listeners.ssl.default = 127.0.0.1:${rabbit.tlsPort}`,
          `ssl_options.cacertfile = ${tls.caFile}`,
          `ssl_options.certfile = ${tls.certFile}`,
          `ssl_options.keyfile = ${tls.keyFile}`,
          `ssl_options.verify = ${tls.requireClientCert ? "verify_peer" : "verify_none"}`,
          `ssl_options.fail_if_no_peer_cert = ${tls.requireClientCert ? "true" : "false"}`,
          "ssl_options.versions.1 = tlsv1.3",
          "ssl_options.versions.2 = tlsv1.2",
        );
      }
      writeFileSync(rabbit.configFile, conf.join("\n") + "\n");
      await rabbit.boot();
      return rabbit;
    } catch (err) {
      await rabbit.destroy().catch(() => undefined);
      throw err;
    }
  }

  /** amqp://guest:guest@127.0.0.1:<port> (guest may log in from the loopback interface). */
  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  /** amqps://guest:guest@localhost:<tls port>, when started with `tls`. */
  get tlsUrl(): string {
    if (!this.tlsPort) throw new Error("this RabbitMQ node has no TLS listener");
    return `amqps://guest:guest@localhost:${this.tlsPort}`;
  }

  get configFile(): string {
    return path.join(this.baseDir, "rabbitmq.conf");
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  private env(): NodeJS.ProcessEnv {
    const d = this.baseDir;
    return {
      PATH: process.env.PATH,
      LANG: process.env.LANG ?? "C.UTF-8",
      HOME: path.join(d, "home"),
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_MNESIA_BASE: path.join(d, "mnesia"),
      RABBITMQ_LOG_BASE: path.join(d, "log"),
      RABBITMQ_PID_FILE: path.join(d, "rabbitmq.pid"),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(d, "enabled_plugins"),
      RABBITMQ_CONFIG_FILE: this.configFile,
      RABBITMQ_CONF_ENV_FILE: path.join(d, "rabbitmq-env.conf"),
      ERL_EPMD_ADDRESS: "127.0.0.1",
      // Distribution (rabbitmqctl) on the loopback interface only.
      ERL_FLAGS: "-kernel inet_dist_use_interface {127,0,0,1}",
    };
  }

  /** rabbitmqctl -n <node> …, bounded. */
  rabbitmqctl(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        this.bin.ctl,
        ["-n", this.nodeName, ...args],
        { timeout: CTL_TIMEOUT_MS, env: this.env() },
        (err, stdout, stderr) => {
          if (err)
            reject(new Error(`rabbitmqctl -n ${this.nodeName} ${args.join(" ")} failed: ${err.message} ${stderr}`));
          else resolve(stdout);
        },
      );
    });
  }

  private async boot(): Promise<void> {
    const child = spawn(this.bin.server, [], { env: this.env(), stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.setEncoding("utf8").on("data", (d: string) => (this.output += d));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (this.output += d));
    this.child = child;
    live.set(child, () => this.killBeam());
    child.once("exit", () => live.delete(child));
    this.watch(child);
    // The pid file appears early; await_startup then waits for the boot to finish.
    await eventually(
      `RabbitMQ ${this.nodeName} to be up`,
      async () => {
        if (!this.running) throw new GiveUp(`rabbitmq-server exited at start:\n${this.log().slice(-4000)}`);
        await this.rabbitmqctl("await_startup", "--timeout", "5");
        await tcpConnect("127.0.0.1", this.port, 2_000);
        if (this.tlsPort) await tcpConnect("127.0.0.1", this.tlsPort, 2_000);
        return true;
      },
      { timeoutMs: START_TIMEOUT_MS, intervalMs: 500, context: () => this.log().slice(-4000) },
    );
  }

  /** `rabbitmqctl stop` (the whole node), SIGKILL if it does not exit within 30 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    await this.rabbitmqctl("stop").catch(() => undefined);
    const timer = setTimeout(() => {
      this.killBeam();
      child.kill("SIGKILL");
    }, 30_000);
    await exited;
    clearTimeout(timer);
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.baseDir, { recursive: true, force: true, maxRetries: 3 });
  }

  private killBeam(): void {
    try {
      const pid = Number(readFileSync(path.join(this.baseDir, "rabbitmq.pid"), "utf8").trim());
      if (pid > 0) process.kill(pid, "SIGKILL");
    } catch {
      // no pid file, or gone already
    }
  }

  /** The node's log file and console output. */
  log(): string {
    const file = path.join(this.baseDir, "log", `${this.nodeName}.log`);
    const fileLog = existsSync(file) ? readFileSync(file, "utf8") : "";
    return `${fileLog}${this.output}`;
  }

  /**
   * If this test process dies without running its exit hooks, a detached shell kills the node (the
   * script and the Erlang VM named in the pid file) and removes its files.
   */
  private watch(child: ChildProcess): void {
    if (!child.pid) return;
    const script =
      'while kill -0 "$1" 2>/dev/null; do kill -0 "$2" 2>/dev/null || exit 0; sleep 1; done; ' +
      'kill -9 "$2" 2>/dev/null; [ -f "$3/rabbitmq.pid" ] && kill -9 "$(cat "$3/rabbitmq.pid")" 2>/dev/null; ' +
      'sleep 1; rm -rf "$3"';
    const watchdog = spawn("sh", ["-c", script, "watchdog", String(process.pid), String(child.pid), this.baseDir], {
      detached: true,
      stdio: "ignore",
    });
    watchdog.unref();
  }
}
