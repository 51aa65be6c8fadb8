/**
 * On a Node older than 22 (Debian 12's own is 20), `npm start` and friends say in one line what to
 * run instead of failing later on a native module. Uses the system's older node where there is one.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";

const OLD_NODE = "/usr/bin/node";

function oldNodeSkip(): string | false {
  if (!existsSync(OLD_NODE)) return `no ${OLD_NODE} on this machine`;
  const major = Number(execFileSync(OLD_NODE, ["-p", "process.versions.node.split('.')[0]"], { encoding: "utf8" }));
  return major < 22 ? false : `${OLD_NODE} is Node ${major}, not an older one`;
}

describe("the Node version check", () => {
  it(
    "on an older Node: one line naming the version needed and the command to run, exit 1",
    { skip: oldNodeSkip() },
    () => {
      for (const script of ["scripts/check-node.mjs"]) {
        const res = spawnSync(OLD_NODE, [script], { encoding: "utf8" });
        assert.equal(res.status, 1, script);
        const lines = res.stderr.trim().split("\n");
        assert.equal(lines.length, 1, `one line: ${res.stderr}`);
        assert.match(
          lines[0],
          /^NoChat failed to start: Node\.js \d+\.\d+\.\d+ is too old — NoChat needs Node\.js ≥ 22\./,
        );
        assert.match(lines[0], /source scripts\/node-env\.sh/);
      }
    },
  );

  it("on this Node: says nothing and lets the command run", () => {
    const res = spawnSync(process.execPath, ["scripts/check-node.mjs"], { encoding: "utf8" });
    assert.equal(res.status, 0);
    assert.equal(res.stderr, "");
  });
});
