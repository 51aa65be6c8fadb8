/**
 * The environment a node starts with, settled before anything reads the configuration (main.ts
 * imports this module first):
 * - command-line flags that stand for variables (`npm run repl -- --transporter amqp://…`) win;
 * - then the process's own environment;
 * - then an env file: `--env-file PATH`, else ENV_FILE, else `.env` in the working directory when
 *   there is one (ENV_FILE= empty reads none). Lines `NAME=value` as .env.example shows; read with
 *   Node's own loader, which never overrides a variable already set.
 * The variables' own checks (src/config.ts) apply to all of them.
 */
import { existsSync } from "node:fs";

const FLAGS: Record<string, string> = {
  "--env-file": "ENV_FILE",
  "--transporter": "TRANSPORTER",
  "--namespace": "NAMESPACE",
  "--node-id": "NODE_ID",
  "--log-level": "LOG_LEVEL",
};

const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const [flag, inline] = argv[i].split(/=(.*)/s, 2);
  const variable = FLAGS[flag];
  if (!variable) continue;
  const value = inline ?? argv[++i];
  if (value === undefined || value.startsWith("--")) {
    console.error(`NoChat failed to start: ${flag} needs a value, e.g. ${flag}=…`);
    process.exit(1);
  }
  process.env[variable] = value;
}

const envFile = process.env.ENV_FILE ?? (existsSync(".env") ? ".env" : "");
if (envFile !== "") {
  try {
    process.loadEnvFile(envFile);
  } catch (err) {
    console.error(
      `NoChat failed to start: cannot read the env file ${envFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}) — fix the path, or set ENV_FILE= to read none`,
    );
    process.exit(1);
  }
}
