/**
 * Starts one NoChat node: the services named in SERVICES (default all) on a broker configured by
 * moleculer.config.ts. `--repl` opens the Moleculer REPL on this node, with NoChat's operator
 * commands (src/operator/); `--hot` reloads changed services (development). With SERVICES=none and
 * `--repl` (`npm run repl`) it is an operator's console joined to the cluster, calling as the
 * operator. `--transporter`, `--namespace`, `--node-id`, `--log-level` stand for their variables.
 *
 * We start the broker ourselves rather than through moleculer-runner: the runner overwrites any
 * broker option whose upper-cased name is in the environment, so TRANSPORTER=amqp://… would replace
 * the transporter object and drop `noDelay` and `prefetch` (44 ms per call instead of 0.5 ms).
 */
import "./cli-flags.js"; // first: flags become environment variables before the config is read
import path from "node:path";
import { ServiceBroker } from "moleculer";
import brokerOptions from "../moleculer.config.js";
import { config } from "./config.js";
import { OperatorPrincipalMiddleware, startOperatorRepl } from "./operator/repl.js";

async function main(): Promise<void> {
  const args = new Set(process.argv.slice(2));
  const c = config();
  const console = args.has("--repl") && c.services.length === 0;
  const broker = new ServiceBroker({
    ...brokerOptions,
    // The operator's console: its tables, not log lines — but why it cannot reach the cluster
    // (transit, transporter) is said at once — and it calls as the operator.
    ...(console
      ? {
          logLevel: process.env.LOG_LEVEL ? c.logLevel : { TRANSIT: "warn", TRANSPORTER: "warn", "**": "error" },
          middlewares: [...(brokerOptions.middlewares ?? []), OperatorPrincipalMiddleware],
        }
      : {}),
    hotReload: args.has("--hot"),
  });
  const servicesDir = path.resolve(__dirname, "..", "services");
  const ext = path.extname(__filename); // .ts under tsx, .js when built
  for (const name of c.services) broker.loadService(path.join(servicesDir, `${name}.service${ext}`));

  await broker.start();
  broker.logger.info(
    `NoChat node ${c.nodeID} up: [${c.services.join(", ")}] ${c.transporter ? "on RabbitMQ" : "embedded, one process"}`,
  );
  if (console && !c.transporter) {
    process.stderr.write(
      "This console has no TRANSPORTER: it sees no cluster. Give the cluster's, e.g. npm run repl -- --transporter amqp://…\n",
    );
  }
  if (args.has("--repl")) startOperatorRepl(broker, `nochat ${c.namespace} $`);
}

main().catch((err: unknown) => {
  console.error("NoChat failed to start:", err instanceof Error ? err.message : err);
  process.exit(1);
});
