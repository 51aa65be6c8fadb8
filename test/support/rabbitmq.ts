/**
 * Controlling the test RabbitMQ for outage tests: `rabbitmqctl stop_app` / `start_app`.
 *
 * The command is `rabbitmqctl` unless TEST_RABBITMQCTL gives another (split on spaces), e.g.
 * `rabbitmqctl -n rabbit@otherhost` for a broker that is not the local default node, or a private
 * broker on another port (then also set TEST_RABBIT_URL).
 *
 *   const ctl = rabbitmqctl();
 *   if (!(await ctl.available())) …skip…
 *   await ctl.stopApp();
 *   try { … } finally { await ctl.startApp(); } // always restore the broker
 */
import { execFile } from "node:child_process";
import { isCI } from "./servers.js";

export interface RabbitCtl {
  /** The command line, for messages. */
  readonly command: string;
  /** Why the broker cannot be controlled, or undefined when it can (`list_vhosts` answered). */
  unavailableReason(): Promise<string | undefined>;
  stopApp(): Promise<void>;
  /** start_app, then await_startup: resolves once the broker accepts connections again. */
  startApp(): Promise<void>;
  run(...args: string[]): Promise<string>;
}

export function rabbitmqctl(): RabbitCtl {
  const [cmd, ...base] = (process.env.TEST_RABBITMQCTL || "rabbitmqctl").split(/\s+/).filter(Boolean);
  const run = (...args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(cmd, [...base, ...args], { timeout: 90_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd} ${[...base, ...args].join(" ")} failed: ${err.message} ${stderr}`.trim()));
        else resolve(stdout);
      });
    });
  return {
    command: [cmd, ...base].join(" "),
    async unavailableReason() {
      try {
        await run("-q", "list_vhosts");
        return undefined;
      } catch (err) {
        const reason = `cannot control RabbitMQ with "${[cmd, ...base].join(" ")}": ${(err as Error).message}`;
        if (isCI()) throw new Error(`${reason} (CI=true: required)`);
        return reason;
      }
    },
    async stopApp() {
      await run("stop_app");
    },
    async startApp() {
      await run("start_app");
      await run("await_startup");
    },
    run,
  };
}
