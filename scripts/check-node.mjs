#!/usr/bin/env node
// Plain JavaScript that any Node runs: says in one line which Node NoChat needs and what to run,
// before an older Node fails on a native module with a message that suggests the wrong fix.
// Run first by `npm start`, `npm run dev`, `npm run repl` and `npm test`; `npm ci` refuses an older
// Node by itself (`engine-strict` in .npmrc).
const REQUIRED = 22;
const major = Number(process.versions.node.split(".")[0]);
if (major < REQUIRED) {
  process.stderr.write(
    `NoChat failed to start: Node.js ${process.versions.node} is too old — NoChat needs Node.js ≥ ${REQUIRED}. ` +
      "Run `source scripts/node-env.sh` (it installs Node 24 under ~/.cache/nochat once), then the same command again.\n",
  );
  process.exit(1);
}
