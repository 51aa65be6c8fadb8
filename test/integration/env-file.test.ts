/**
 * A node reads an env file (`--env-file`, ENV_FILE, or `.env` in its working directory): its
 * settings apply, a variable already in the environment wins over the file, and a file that cannot
 * be read stops the start with one line saying what to do.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { startNode } from "../support/processes.js";
import { freePort } from "../support/servers.js";

describe("env files", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "nochat-envfile-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("applies the file's settings; the environment wins over it", async (t) => {
    const [filePort, envPort] = [await freePort(), await freePort()];
    const file = path.join(dir, "nochat.env");
    // HEALTH_DETAILS from the file shows in /api/health; PORT is set in both, the environment's wins.
    writeFileSync(file, `# as .env.example\nPORT=${filePort}\nHEALTH_DETAILS=public\n`);
    const node = await startNode({
      t,
      name: "env-file",
      env: { PORT: String(envPort), HEALTH_DETAILS: undefined },
      args: ["--env-file", file],
      ready: { http: envPort },
    });
    const health = (await (await fetch(`http://127.0.0.1:${envPort}/api/health`)).json()) as Record<string, unknown>;
    assert.ok(Array.isArray(health.nodes), `the node list shown (HEALTH_DETAILS=public): ${JSON.stringify(health)}`);
    await assert.rejects(fetch(`http://127.0.0.1:${filePort}/api/health`), "the file's PORT lost to the environment's");
    await node.stop();
  });

  it("an env file that cannot be read: one line, exit 1", async (t) => {
    const missing = path.join(dir, "nope.env");
    const node = await startNode({ t, name: "env-file-missing", env: { ENV_FILE: missing }, ready: "none" });
    const exit = await node.exited;
    assert.equal(exit.code, 1);
    const lines = node.output().trim().split("\n");
    assert.equal(lines.length, 1, node.output());
    assert.match(lines[0], /^NoChat failed to start: cannot read the env file .*nope\.env \(ENOENT\) — /);
  });
});
