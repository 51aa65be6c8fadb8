/**
 * The operator's console: Moleculer's REPL with NoChat's commands (commands.ts) beside its own.
 * `npm run repl` joins the cluster as a node without services; `events tail` and `events stats`
 * extend Moleculer's own `events` command as subcommands, so its listing still works unchanged.
 */
import type { Middleware, ServiceBroker } from "moleculer";
import { OPERATOR } from "../infra/permissions.js";
import {
  EVENT_SUBCOMMANDS,
  OPERATOR_COMMANDS,
  print,
  UsageError,
  type CommandArgs,
  type OperatorCommand,
} from "./commands.js";

/** What a failed command prints: the service's own message, never a stack. */
function report(err: unknown): void {
  if (err instanceof UsageError) {
    print(`Usage: ${err.message}`);
    return;
  }
  const e = err as { message?: string; type?: string; data?: unknown };
  // Validation errors: each bad field's message (ours carry them in data.fields, the validator's in data).
  const fields = Array.isArray(e.data)
    ? (e.data as { message?: string }[])
    : ((e.data as { fields?: { message?: string }[] } | undefined)?.fields ?? []);
  const text = fields.length > 0 ? fields.map((f) => f.message).join("; ") : (e.message ?? String(err));
  print(`✖ ${text}${e.type ? ` (${e.type})` : ""}`);
  if (e.type === "SERVICE_NOT_FOUND") print("  Is that service running, and this REPL on the cluster's NAMESPACE?");
}

async function run(command: OperatorCommand, broker: ServiceBroker, args: CommandArgs): Promise<void> {
  try {
    await command.action(broker, args);
  } catch (err) {
    report(err);
  }
}

/** The little of commander's Command (moleculer-repl's own copy) used here. */
interface Command {
  commands: readonly Command[];
  name(): string;
  description(text: string): Command;
  command(declaration: string): Command;
  option(flags: string, description: string): Command;
  action(fn: (this: Command) => Promise<void>): Command;
  opts(): Record<string, unknown>;
  setOptionValue(key: string, value: unknown): Command;
  parent: Command | null;
  args: string[];
}

/** moleculer-repl's `events` command module; its `register` is wrapped to add the subcommands. */
interface ReplCommandModule {
  register(program: Command, broker: ServiceBroker): void;
}

function addEventSubcommands(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- moleculer-repl's command modules are CommonJS internals
  const events = require("moleculer-repl/src/commands/events.js") as ReplCommandModule;
  const original = events.register;
  if ((original as { nochat?: boolean }).nochat) return;
  const register = (program: Command, broker: ServiceBroker) => {
    original(program, broker);
    const parent = program.commands.find((c) => c.name() === "events");
    if (!parent) return;
    parent.description("List event listeners; `events tail`, `events stats`: the audit log");
    for (const sub of EVENT_SUBCOMMANDS) {
      const cmd = parent.command(sub.command).description(sub.description);
      for (const o of sub.options ?? []) cmd.option(o.option, o.description);
      cmd.action(async function (this: Command) {
        const options = { ...this.opts() };
        // Commander keeps option values between parses; the REPL parses every line with one program.
        for (const key of Object.keys(this.opts())) this.setOptionValue(key, undefined);
        await run(sub, broker, { options, rawCommand: this.parent?.args.join(" ") ?? "" });
      });
    }
  };
  (register as { nochat?: boolean }).nochat = true;
  events.register = register;
}

/**
 * On an operator's node (no local services): every call it makes — the stock `call` command too —
 * runs as OPERATOR unless a principal is given. Never on a node with services, whose own calls
 * would otherwise pass every role check.
 */
export const OperatorPrincipalMiddleware = {
  name: "OperatorPrincipal",
  call(next: ServiceBroker["call"]) {
    return function (actionName: string, params?: unknown, opts?: { meta?: object }) {
      return next(actionName, params, { ...opts, meta: { user: OPERATOR, ...opts?.meta } });
    } as ServiceBroker["call"];
  },
  // Moleculer's typings have the `call` hook return a call's result; it returns the wrapped call.
} as unknown as Middleware;

type Evaluator = (
  cmd: string,
  context: object,
  file: string,
  cb: (err: Error | null, result?: unknown) => void,
) => void;

/** Opens the REPL with NoChat's commands. */
export function startOperatorRepl(broker: ServiceBroker, delimiter: string): void {
  addEventSubcommands();
  broker.options.replOptions = {
    delimiter,
    customCommands: OPERATOR_COMMANDS.map((command) => ({
      command: command.command,
      description: command.description,
      options: command.options,
      allowUnknownOptions: command.allowUnknownOptions,
      action: (b: ServiceBroker, args: CommandArgs) => run(command, b, args),
    })) as unknown as NonNullable<ServiceBroker["options"]["replOptions"]>["customCommands"],
  };
  const server = broker.repl() as
    (import("node:events").EventEmitter & { eval: Evaluator; ignoreUndefined: boolean }) | undefined;
  if (!server) return;
  // Commands print their own output; the `undefined` every one of them returns is noise.
  server.ignoreUndefined = true;
  // One line at a time, each after the previous finished: Node's REPL would start every piped line
  // at once (`npm run repl < commands.txt`, tests), mixing their output.
  const evaluate = server.eval;
  let queue = Promise.resolve();
  // At the end of piped input moleculer-repl stops the broker and exits at once: let the commands
  // still queued (an `events tail --for 5`, say) finish first.
  const exitListeners = server.listeners("exit") as (() => void)[];
  server.removeAllListeners("exit");
  server.on("exit", () => void queue.then(() => exitListeners.forEach((listener) => listener())));
  server.eval = (cmd, context, file, cb) => {
    queue = queue.then(
      () =>
        new Promise<void>((done) =>
          evaluate.call(server, cmd, context, file, (err, result) => {
            cb(err, result);
            done();
          }),
        ),
    );
  };
}
