#!/usr/bin/env node
// @ts-check
/**
 * `npm run dev`: the UI build in watch mode (scripts/build-ui.mjs → public/) and the node with hot
 * reload and the REPL (`tsx src/main.ts --hot --repl`, with this terminal). Quitting the REPL (or the
 * node exiting any other way) stops the UI build too; the node's exit code is ours.
 * Extra arguments go to src/main.ts.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildUi } from "./build-ui.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TSX = path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs");

const ui = await buildUi({ watch: true, log: (message) => process.stderr.write(`${message}\n`) });

const node = spawn(process.execPath, [TSX, "src/main.ts", "--hot", "--repl", ...process.argv.slice(2)], {
  cwd: ROOT,
  stdio: "inherit",
});

// Ctrl-C reaches the node (same process group) and its REPL decides; we wait for it to exit.
for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM", "SIGHUP"])) {
  process.on(signal, () => {
    if (signal !== "SIGINT") node.kill(signal);
  });
}

const code = await new Promise((resolve) => {
  node.once("exit", (c, s) => resolve(c ?? (s ? 1 : 0)));
  node.once("error", (err) => {
    process.stderr.write(`dev: could not start the node: ${err.message}\n`);
    resolve(1);
  });
});
await ui.stop();
process.exit(code);
