/**
 * Command-line flags that stand for environment variables (`npm run repl -- --transporter amqp://…`),
 * applied before anything reads the configuration: main.ts imports this module first. Flags win over
 * the environment; the variables' own checks (src/config.ts) still apply.
 */
const FLAGS: Record<string, string> = {
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
