#!/usr/bin/env node
/**
 * `npm test`: runs the test files with Node's built-in test runner and tsx, one file at a time.
 *
 *   node scripts/test.mjs                      all of test/**\/*.test.ts except test/faults
 *   node scripts/test.mjs unit                 test/unit/**\/*.test.ts (no servers started)
 *   node scripts/test.mjs integration          test/integration/**\/*.test.ts
 *   node scripts/test.mjs faults               test/faults/**\/*.test.ts (`npm run test:faults`: the fault
 *                                              suite under load, minutes long; CI runs it after `npm test`)
 *   node scripts/test.mjs ops                  test/ops/**\/*.test.ts (`npm run test:ops`: ops/ansible, the
 *                                              Vagrantfile and ops/rex linted, then deployed onto systemd-nspawn
 *                                              hosts; needs root and Debian's ansible, systemd-container…)
 *   node scripts/test.mjs test/x.test.ts dir/  given files, and the *.test.ts under given folders
 *   node scripts/test.mjs -- --test-name-pattern=login   options after `--` go to `node --test`
 *
 * Unless TEST_MONGO_URL is set, or only unit tests run, FerretDB is started on a free port with
 * scripts/ferretdb.sh (which needs Go for its first build) and passed on in TEST_MONGO_URL; it is
 * stopped at the end, also on Ctrl-C. Without it the tests that need it skip (fail under CI=true).
 *
 * The runner's exit code is passed through, and the last line printed is `N passed, N failed`.
 * TEST_TIMEOUT_MS sets the per-test timeout (default 300000).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TEST_DIR = path.join(ROOT, "test");
const FERRETDB_SH = path.join(ROOT, "scripts", "ferretdb.sh");
const SUFFIX = ".test.ts";

function log(message) {
  process.stderr.write(`test.mjs: ${message}\n`);
}

/** Every *.test.ts under dir, sorted; skips node_modules and dot-folders. */
function findTests(dir) {
  if (!existsSync(dir)) return [];
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTests(full));
    else if (entry.isFile() && entry.name.endsWith(SUFFIX)) found.push(full);
  }
  return found.sort();
}

/** Run only when asked for (by name, or the folder or a file in it), never by a plain `npm test`. */
const ON_REQUEST = ["faults", "ops"].map((name) => path.join(TEST_DIR, name) + path.sep);

function selectFiles(args) {
  if (args.length === 0) {
    const files = findTests(TEST_DIR).filter((f) => !ON_REQUEST.some((dir) => f.startsWith(dir)));
    return { files, what: "all tests (without test/faults and test/ops)" };
  }
  const files = [];
  for (const arg of args) {
    if (["unit", "integration", "faults", "ops"].includes(arg)) {
      files.push(...findTests(path.join(TEST_DIR, arg)));
      continue;
    }
    const full = path.resolve(arg);
    if (!existsSync(full)) {
      log(`no such test file or folder: ${arg}`);
      process.exit(2);
    }
    files.push(...(statSync(full).isDirectory() ? findTests(full) : [full]));
  }
  return { files: [...new Set(files)], what: args.join(" ") };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// ---- arguments ----------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const dashDash = argv.indexOf("--");
const selectors = dashDash === -1 ? argv : argv.slice(0, dashDash);
const runnerOptions = dashDash === -1 ? [] : argv.slice(dashDash + 1);
const { files, what } = selectFiles(selectors);

if (files.length === 0) {
  log(`no *${SUFFIX} files found for: ${what}`);
  console.log("0 passed, 0 failed");
  // An empty selection (say, no unit tests yet) is not an error; an empty test/ folder is.
  process.exit(selectors.length === 0 ? 1 : 0);
}

// ---- FerretDB -----------------------------------------------------------------------------------

let ferretPort;

function stopFerret() {
  if (ferretPort === undefined) return;
  const port = ferretPort;
  ferretPort = undefined;
  const res = spawnSync("bash", [FERRETDB_SH, "stop", String(port)], { stdio: ["ignore", "ignore", "pipe"] });
  if (res.status !== 0) log(`stopping FerretDB on port ${port} failed: ${String(res.stderr).trim()}`);
}

const onlyUnit = files.every((f) => f.startsWith(path.join(TEST_DIR, "unit") + path.sep));
if (process.env.TEST_MONGO_URL) {
  log(`using TEST_MONGO_URL from the environment`);
} else if (onlyUnit) {
  // Unit tests need no servers.
} else if (!existsSync(FERRETDB_SH)) {
  log(`${path.relative(ROOT, FERRETDB_SH)} not found: FerretDB tests will be skipped (fail under CI)`);
} else {
  const port = await freePort();
  const started = Date.now();
  const res = spawnSync("bash", [FERRETDB_SH, "start", String(port)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const uri = (res.stdout ?? "").trim().split("\n").pop() ?? "";
  if (res.status === 0 && uri.startsWith("mongodb://")) {
    ferretPort = port;
    process.env.TEST_MONGO_URL = uri;
    log(`FerretDB started at ${uri} (${Date.now() - started} ms)`);
  } else {
    const detail = `${res.stderr ?? ""}${res.error ? String(res.error) : ""}`.trim();
    log(`could not start FerretDB: FerretDB tests will be skipped (fail under CI)\n${detail}`);
    // A half-started server (say, the uri was not printed) must not outlive us.
    ferretPort = port;
    stopFerret();
  }
}
process.on("exit", stopFerret);

// ---- the browser UI -----------------------------------------------------------------------------

// Nodes under test serve public/, which is generated: build it so a fresh clone's `npm test`
// serves the UI of this checkout (well under a second).
if (!onlyUnit) {
  const { buildUi } = await import("./build-ui.mjs");
  await buildUi({ log: () => {} });
}

// ---- the runner ---------------------------------------------------------------------------------

const tapDir = mkdtempSync(path.join(os.tmpdir(), "nochat-test-"));
const tapFile = path.join(tapDir, "report.tap");
const nodeArgs = [
  "--import",
  "tsx",
  "--test",
  "--test-concurrency=1",
  "--test-force-exit",
  `--test-timeout=${Number(process.env.TEST_TIMEOUT_MS) || 300_000}`,
  "--test-reporter=spec",
  "--test-reporter-destination=stdout",
  "--test-reporter=tap",
  `--test-reporter-destination=${tapFile}`,
  ...runnerOptions,
  ...files.map((f) => path.relative(ROOT, f)),
];
log(`running ${files.length} test file(s): ${what}`);
// Brokers a test starts in-process keep their files (the embedded stores, a generated signing key)
// out of the checkout: a DATA_DIR of this run's own, removed with it.
const env = { ...process.env, DATA_DIR: process.env.DATA_DIR ?? path.join(tapDir, "data") };
const child = spawn(process.execPath, nodeArgs, { cwd: ROOT, stdio: "inherit", env });

let interrupted;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (interrupted) {
      child.kill("SIGKILL");
      return;
    }
    interrupted = signal;
    log(`${signal}: stopping the tests`);
    child.kill(signal);
    setTimeout(() => child.kill("SIGKILL"), 15_000).unref();
  });
}

const { code, signal } = await new Promise((resolve) => {
  child.once("exit", (c, s) => resolve({ code: c, signal: s }));
  child.once("error", (err) => {
    log(`could not run node: ${err.message}`);
    resolve({ code: 1, signal: null });
  });
});

// ---- summary ------------------------------------------------------------------------------------

function count(tap, name) {
  const all = [...tap.matchAll(new RegExp(`^# ${name} (\\d+)$`, "gm"))];
  return all.length ? Number(all[all.length - 1][1]) : undefined;
}

/**
 * Suites that failed on their own (an error in the describe() body or in a suite hook): node
 * counts them neither in `# fail` nor anywhere else. A suite that failed only because tests in
 * it failed has failureType 'subtestsFailed'; those tests are counted already.
 */
function failedSuites(tap) {
  let n = 0;
  const lines = tap.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*not ok \d+/.test(lines[i])) continue;
    let type;
    let failureType;
    for (let j = i + 1; j < lines.length && !/^\s*\.\.\.$/.test(lines[j]); j++) {
      type ??= /^\s*type: '(\w+)'$/.exec(lines[j])?.[1];
      failureType ??= /^\s*failureType: '(\w+)'$/.exec(lines[j])?.[1];
    }
    if (type === "suite" && failureType !== "subtestsFailed" && failureType !== "cancelledByParent") n++;
  }
  return n;
}

let tap = "";
try {
  tap = readFileSync(tapFile, "utf8");
} catch {
  // no report: the runner died early
}
rmSync(tapDir, { recursive: true, force: true });
stopFerret();

const pass = count(tap, "pass");
const fail = count(tap, "fail");
const cancelled = count(tap, "cancelled") ?? 0;
const skipped = count(tap, "skipped") ?? 0;
const todo = count(tap, "todo") ?? 0;

let exitCode = code ?? 1;
if (signal) {
  log(`the test runner was killed by ${signal}`);
  exitCode = 1;
}
if (interrupted) exitCode = exitCode || 1;

console.log("");
if (pass === undefined || fail === undefined) {
  log("the test runner printed no summary");
  console.log(`0 passed, ${exitCode === 0 ? 0 : 1} failed`);
} else {
  if (skipped || todo || cancelled) console.log(`skipped: ${skipped}, todo: ${todo}, cancelled: ${cancelled}`);
  const failed = fail + cancelled + failedSuites(tap);
  if (failed > 0 && exitCode === 0) exitCode = 1;
  console.log(`${pass} passed, ${failed} failed`);
}
process.exit(exitCode);
