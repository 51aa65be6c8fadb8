/**
 * Helpers for the provisioning tests (test/ops, `npm run test:ops`): running the operators' tools
 * (ansible-playbook, yamllint, vagrant, rex, testinfra) with their output kept in a log file, and
 * commands on the systemd-nspawn test hosts that ops/test/hosts.sh boots.
 */
import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import { isCI, onPath } from "./servers.js";
import { REPO_ROOT } from "./processes.js";

export const OPS_DIR = path.join(REPO_ROOT, "ops");
export const ANSIBLE_DIR = path.join(OPS_DIR, "ansible");
export const HOSTS_SH = path.join(OPS_DIR, "test", "hosts.sh");
/** Where hosts.sh keeps its state (the SSH key, consoles) and where these tests write their logs. */
export const OPS_STATE = process.env.NOCHAT_OPS_STATE || "/tmp/nochat-ops";
export const LOG_DIR = path.join(OPS_STATE, "logs");

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The log file holding both streams. */
  log: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** A name for the log file (default: the command). */
  name?: string;
  input?: string;
}

let runs = 0;

/** Runs a command to completion, keeping stdout and stderr apart and both in a log file. */
export function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  mkdirSync(LOG_DIR, { recursive: true });
  const log = path.join(LOG_DIR, `${String(++runs).padStart(2, "0")}-${options.name ?? path.basename(cmd)}.log`);
  const file = createWriteStream(log);
  file.write(`$ ${cmd} ${args.join(" ")}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      file.write(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      file.write(chunk);
    });
    child.stdin.on("error", () => undefined); // EPIPE: a command that exits without reading its input
    child.stdin.end(options.input);
    const timer = setTimeout(() => {
      file.write(`\n[killed after ${options.timeoutMs} ms]\n`);
      child.kill("SIGKILL");
    }, options.timeoutMs ?? 600_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      file.end();
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      file.end(`\n[exit ${code}]\n`);
      resolve({ code, stdout, stderr, log });
    });
  });
}

/** The last lines of a run's output, for an assertion message. */
export function tail(result: RunResult, lines = 40): string {
  const all = `${result.stdout}\n${result.stderr}`.trimEnd().split("\n");
  return `(log: ${result.log})\n${all.slice(-lines).join("\n")}`;
}

/** Runs a command and fails with its output's tail unless it exits 0. */
export async function runOk(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(cmd, args, options);
  if (result.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${result.code}\n${tail(result)}`);
  return result;
}

/**
 * The tools a test needs that are missing. Outside CI a test skips with their names; under CI=true
 * a missing tool fails the run.
 */
export function missingTools(tools: string[]): string[] {
  return tools.filter((tool) => !onPath(tool));
}

export function toolsSkip(tools: string[], t: { skip(message?: string): void }): boolean {
  const missing = missingTools(tools);
  if (missing.length === 0) return false;
  const message = `missing ${missing.join(", ")} (Debian packages; .ci/run installs them)`;
  if (isCI()) throw new Error(message);
  t.skip(message);
  return true;
}

/** The PLAY RECAP of an ansible-playbook run: host → counters. */
export function playRecap(output: string): Map<string, Record<string, number>> {
  const recap = new Map<string, Record<string, number>>();
  const at = output.lastIndexOf("PLAY RECAP");
  if (at === -1) return recap;
  for (const line of output.slice(at).split("\n").slice(1)) {
    const match = /^(\S+)\s+:\s+(.*)$/.exec(line.trim());
    if (!match) continue;
    const counters: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const [, key, value] of match[2].matchAll(/(\w+)=(\d+)/g)) counters[key] = Number(value);
    recap.set(match[1], counters);
  }
  return recap;
}
