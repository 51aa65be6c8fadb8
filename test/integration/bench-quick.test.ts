/**
 * `npm run bench -- --quick` (bench/run.ts) as a test: every target — NoChat embedded and clustered,
 * the three baselines — starts, carries a short load, and stops cleanly; nothing acknowledged is lost
 * or duplicated (against the database and against what every receiver got); NoChat's outboxes drain
 * and a reconnecting client catches up. No timing is asserted: the figures of a quick run mean nothing.
 * Under two minutes; it uses the run's RabbitMQ, MariaDB and FerretDB (TEST_*_URL) like the others.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import type { BenchResults } from "../../bench/report.js";
import { REPO_ROOT } from "../support/processes.js";
import { requireServer } from "../support/servers.js";

test(
  "npm run bench -- --quick: every target starts and stops, nothing is lost or duplicated, the backlog drains",
  {
    timeout: 6 * 60_000,
  },
  async (t) => {
    for (const server of ["rabbitmq", "mariadb", "ferretdb"] as const) if (!(await requireServer(server, t))) return;
    const dir = mkdtempSync(path.join(os.tmpdir(), "nochat-bench-quick-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const out = path.join(dir, "quick.json");
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, ["--import", "tsx", "bench/run.ts", "--quick", "--out", out], {
      cwd: REPO_ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    const tail = output.slice(-20_000);
    assert.equal(code, 0, `the quick bench failed:\n${tail}`);
    const results = JSON.parse(readFileSync(out, "utf8")) as BenchResults;
    assert.ok(results.ok, tail);
    assert.deepEqual(
      results.targets.map((r) => r.name),
      ["nochat-embedded", "nochat-clustered", "baseline-none", "baseline-mariadb", "baseline-sqlite"],
    );
    for (const r of results.targets) {
      assert.deepEqual(r.failures, [], r.name);
      const c = r.correctness!;
      assert.ok(c.acked > 0, `${r.name}: something was acknowledged`);
      assert.equal(c.lost, 0, `${r.name}: lost`);
      assert.equal(c.duplicates, 0, `${r.name}: duplicated`);
      assert.equal(c.ackConflicts, 0, `${r.name}: ack conflicts`);
      assert.equal(c.held, c.expectedDeliveries, `${r.name}: every receiver holds every message`);
      if (c.stored !== null) {
        assert.equal(c.lostInDb, 0, `${r.name}: acknowledged but not stored`);
        assert.equal(c.extraInDb, 0, `${r.name}: stored but never acknowledged`);
      }
      if (r.name.startsWith("nochat")) {
        assert.equal(r.backlog?.final, 0, `${r.name}: the outbox drained`);
        assert.equal(r.catchUp?.received, r.catchUp?.messages, `${r.name}: catch-up`);
      }
      for (const s of r.stops ?? []) assert.equal(s.code, 0, `${r.name}: ${s.name} stopped cleanly`);
    }
    t.diagnostic(`quick bench: ${results.totalSeconds} s`);
  },
);
