/**
 * The operator's commands in the Moleculer REPL (`npm run repl`, src/operator/repl.ts). Each calls
 * admin- or operator-only actions — never a database — and prints a table. The REPL node calls as
 * OPERATOR (src/infra/permissions.ts), so these actions refuse everyone else, and none of them is
 * published on REST or the socket.
 */
import type { ServiceBroker } from "moleculer";
import { getBorderCharacters, table } from "table";
import type { InternalActionName, OutboxStatus, ParamsOf, ResultOf, SessionInfo } from "../contracts/actions.js";
import type { AppEvent } from "../contracts/objects.js";
import { call } from "../infra/calls.js";
import { OPERATOR } from "../infra/permissions.js";

/** What a command's handler gets: positional arguments by name, `--options`, and the line as typed. */
export interface CommandArgs {
  [arg: string]: unknown;
  options: Record<string, unknown>;
  rawCommand: string;
}

export interface OperatorCommand {
  /** Commander's declaration, e.g. `kick <room> <username>`. */
  command: string;
  description: string;
  options?: { option: string; description: string }[];
  /** Lets free text (announce) through as extra words. */
  allowUnknownOptions?: boolean;
  action(broker: ServiceBroker, args: CommandArgs): Promise<void>;
}

type Row = (string | number)[];

export function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

export function printTable(header: string[], rows: Row[]): void {
  if (rows.length === 0) return;
  print(table([header, ...rows], { border: getBorderCharacters("norc") }));
}

function printSessions(title: string, sessions: SessionInfo[]): void {
  print(title);
  printTable(
    ["Session", "Started", "Expires"],
    sessions.map((s) => [s.id, s.createdAt, s.expiresAt]),
  );
}

/** A string option (`--type auth.login`), or undefined when absent or given without a value. */
const stringOption = (args: CommandArgs, name: string): string | undefined =>
  typeof args.options[name] === "string" ? (args.options[name] as string) : undefined;

/** A whole number option (`--top 5`), or the default; anything else is refused before a call. */
function count(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined || value === true) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`--${name} takes a whole number from 1 to ${max}`);
  return n;
}

export class UsageError extends Error {}

/** "3 min" rather than milliseconds: how long ago, for people. */
export function age(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d`;
}

const since = (iso: string, now = Date.now()): string => `${age(now - Date.parse(iso))} ago`;

/** Every command calls as OPERATOR, also from a development REPL on a node with services. */
const asOperator = <N extends InternalActionName>(broker: ServiceBroker, action: N, params: ParamsOf<N>) =>
  call(broker, action, params, { meta: { user: OPERATOR } });

async function findUser(broker: ServiceBroker, username: string): Promise<ResultOf<"users.inspect">> {
  return asOperator(broker, "users.inspect", { username });
}

/** One audit event on one line: time, type, who, where, and the rest of its data. */
export function eventLine(e: AppEvent): string {
  const who = e.userId !== null ? ` user=${e.userId}` : "";
  const where = e.roomId !== null ? ` room=${e.roomId}` : "";
  const data = JSON.stringify(e.data);
  return `${e.ts}  ${e.type}${who}${where}  ${data.length > 200 ? `${data.slice(0, 199)}…` : data}`;
}

/** Follows the audit log: new events every second until `stop` resolves. */
export async function tailEvents(
  broker: ServiceBroker,
  type: string | undefined,
  stop: Promise<void>,
  pollMs = 1000,
): Promise<void> {
  let from = new Date().toISOString();
  let seen = new Set<string>();
  let stopped = false;
  void stop.then(() => (stopped = true));
  while (!stopped) {
    const { events } = await asOperator(broker, "log.query", { from, limit: 500, type });
    // Newest first; events at the same instant as `from` come again next time: `seen` skips them.
    const fresh = events.filter((e) => !seen.has(e.id)).reverse();
    for (const e of fresh) print(eventLine(e));
    if (events.length > 0) {
      from = events[0].ts;
      seen = new Set(events.filter((e) => e.ts === from).map((e) => e.id));
    }
    await Promise.race([stop, new Promise((resolve) => setTimeout(resolve, pollMs))]);
  }
}

/**
 * `events tail` ends on Ctrl-C or Enter, or after `--for` seconds. At a terminal any key press
 * arrives on stdin; from a pipe (`npm run repl < commands.txt`) only an empty line or the end of
 * the input stops it, and the lines after it wait their turn.
 */
const CTRL_C = String.fromCharCode(3);

export function untilKeyOrTimeout(seconds: number | undefined): Promise<void> {
  return new Promise((resolve) => {
    const onData = (chunk: Buffer | string) => {
      const text = chunk.toString();
      if (process.stdin.isTTY || text === "\n" || text === "\r\n" || text === "\r" || text === CTRL_C) done();
    };
    const done = () => {
      process.stdin.off("data", onData);
      process.stdin.off("end", done);
      clearTimeout(timer);
      resolve();
    };
    process.stdin.on("data", onData);
    process.stdin.once("end", done);
    const timer = seconds === undefined ? undefined : setTimeout(done, seconds * 1000);
  });
}

export async function eventStats(broker: ServiceBroker, from?: string, to?: string): Promise<void> {
  const parse = (value: string | undefined, name: string): string | undefined => {
    if (value === undefined) return undefined;
    if (Number.isNaN(Date.parse(value)))
      throw new UsageError(`--${name} takes a date, e.g. 2026-12-01 or 2026-12-01T10:00Z`);
    return new Date(value).toISOString();
  };
  const result = await asOperator(broker, "log.stats", {
    from: parse(from, "from"),
    to: parse(to, "to"),
  });
  const totals = new Map<string, number>();
  for (const c of result.counts) totals.set(c.type, (totals.get(c.type) ?? 0) + c.count);
  print(`Audit events from ${result.from} to ${result.to}:`);
  const rows = [...totals].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (rows.length === 0) print("none");
  printTable(["Type", "Events"], rows);
}

export const OPERATOR_COMMANDS: OperatorCommand[] = [
  {
    command: "online",
    description: "Users connected now, per gateway node",
    options: [{ option: "--limit <n>", description: "rows at most (default 1000)" }],
    async action(broker, args) {
      const limit = count(args.options.limit, "limit", 1000, 10_000);
      const listing = await asOperator(broker, "users.online", { limit });
      const nodes = new Set(listing.users.map((u) => u.nodeId));
      const users = new Set(listing.users.map((u) => u.userId));
      printTable(
        ["Gateway node", "User", "Id", "Sockets", "Connected"],
        listing.users.map((u) => [u.nodeId, u.username, u.userId, u.sockets, since(u.since)]),
      );
      print(
        `${users.size} user(s) online on ${nodes.size} gateway node(s), ${listing.connections} socket(s)` +
          (listing.truncated ? ` — first ${limit} rows only (--limit)` : ""),
      );
    },
  },
  {
    command: "rooms",
    description: "The busiest rooms: members, messages, latest activity",
    options: [{ option: "--top <n>", description: "how many rooms (default 20)" }],
    async action(broker, args) {
      const top = count(args.options.top, "top", 20, 1000);
      const { rooms } = await asOperator(broker, "chat.roomStats", { top });
      if (rooms.length === 0) print("No rooms yet.");
      printTable(
        ["Room", "Id", "Kind", "Members", "Messages", "Latest activity"],
        rooms.map((r) => [r.name, r.id, r.kind, r.members, r.messages, since(r.lastActivity)]),
      );
    },
  },
  {
    command: "user <username>",
    description: "A user's profile, roles, sessions, connections and rooms",
    async action(broker, args) {
      const { user, connections } = await findUser(broker, String(args.username));
      const [{ sessions }, { rooms }] = await Promise.all([
        asOperator(broker, "auth.sessionsOf", {
          userId: user.id,
        }),
        asOperator(broker, "chat.roomsOfUser", { userId: user.id }),
      ]);
      printTable(
        ["Field", "Value"],
        [
          ["Username", user.username],
          ["Id", user.id],
          ["Display name", user.displayName],
          ["Roles", user.roles.join(", ") || "-"],
          ["Status", `${user.status} (chose ${user.chosenStatus})`],
          ["Last seen", user.lastSeenAt ?? "-"],
          ["Registered", user.createdAt],
          ["Connections", connections.map((c) => `${c.nodeId}: ${c.sockets}`).join(", ") || "none"],
        ],
      );
      printSessions(`Active sessions: ${sessions.length}`, sessions);
      print(`Rooms: ${rooms.length}`);
      printTable(
        ["Room", "Id", "Kind", "Role"],
        rooms.map((r) => [r.name, r.id, r.kind, r.role]),
      );
    },
  },
  {
    command: "admin <grant|revoke> <username>",
    description: "Grant or revoke a user's admin role",
    async action(broker, args) {
      const op = String(args["grant|revoke"]);
      if (op !== "grant" && op !== "revoke") throw new UsageError("admin grant <username> | admin revoke <username>");
      const result = await asOperator(broker, "users.setAdmin", {
        username: String(args.username),
        admin: op === "grant",
      });
      const now = result.admin ? "is now an admin" : "is no longer an admin";
      const already = result.admin ? "is already an admin" : "is not an admin";
      print(
        result.changed
          ? `${result.username} ${now} — their tokens carry the change from their next refresh`
          : `${result.username} ${already}: nothing changed`,
      );
    },
  },
  {
    command: "kick <room> <username>",
    description: "Remove a user from a room (by room id or exact name)",
    async action(broker, args) {
      const { user } = await findUser(broker, String(args.username));
      const result = await asOperator(broker, "chat.removeMember", {
        room: String(args.room),
        userId: user.id,
      });
      print(
        result.removed
          ? `${user.username} was removed from room #${result.roomId}`
          : `${user.username} is not a member of room #${result.roomId}`,
      );
    },
  },
  {
    command: "sessions <revoke|list> <username>",
    description: "List a user's sessions, or end them all (their sockets are disconnected)",
    async action(broker, args) {
      const op = String(args["revoke|list"]);
      const { user } = await findUser(broker, String(args.username));
      if (op === "list") {
        const { sessions } = await asOperator(broker, "auth.sessionsOf", { userId: user.id });
        printSessions(`${user.username}: ${sessions.length} active session(s)`, sessions);
        return;
      }
      if (op !== "revoke") throw new UsageError("sessions revoke <username> | sessions list <username>");
      const { revoked } = await asOperator(broker, "auth.revokeUserSessions", { userId: user.id });
      print(
        revoked > 0
          ? `${revoked} session(s) of ${user.username} ended; their sockets are being disconnected`
          : `${user.username} had no active session; any socket still open is being disconnected`,
      );
    },
  },
  {
    command: "announce <room> <text>",
    description: 'Post a system message to a room: announce general "Maintenance at 18:00"',
    allowUnknownOptions: true,
    async action(broker, args) {
      const room = String(args.room);
      // The line as typed, after the command and the room: the text may be quoted or not.
      const prefix = `announce ${room} `;
      const text = args.rawCommand.startsWith(prefix) ? args.rawCommand.slice(prefix.length).trim() : "";
      if (!text) throw new UsageError('announce <room> <text>, e.g. announce general "Back in 5 minutes"');
      const message = await asOperator(broker, "chat.announce", { room, body: text });
      print(`Announced in room #${message.roomId} as message ${message.seq}`);
    },
  },
  {
    command: "outbox",
    description: "Durable events each producer's consumers have not acknowledged yet",
    async action(broker) {
      const actions = broker.registry.getActionList({ onlyAvailable: true, skipInternal: true }) as { name: string }[];
      const names = [...new Set(actions.map((a) => a.name).filter((n) => n.endsWith(".outboxStatus")))].sort();
      if (names.length === 0) {
        print("No producer is reachable (is the cluster up, and this REPL on its NAMESPACE?)");
        return;
      }
      // Each producer's own action (<producer>.outboxStatus, from outboxMixin): not in the map by name.
      const statuses = await Promise.all(
        names.map((n) => broker.call<OutboxStatus, object>(n, {}, { meta: { user: OPERATOR } })),
      );
      const rows: Row[] = [];
      for (const s of statuses) {
        for (const c of s.consumers) {
          rows.push([s.producer, c.consumer, c.pending, c.pending > 0 ? age(c.oldestAgeMs) : "-", s.deadLetters]);
        }
      }
      printTable(["Producer", "Consumer", "Pending", "Oldest", "Dead letters"], rows);
    },
  },
];

/** `events tail` and `events stats`: subcommands of Moleculer's own `events`, see repl.ts. */
export const EVENT_SUBCOMMANDS: OperatorCommand[] = [
  {
    command: "tail",
    description: "Follow the audit log live (Enter or Ctrl-C stops)",
    options: [
      { option: "--type <type>", description: "only events of this type, e.g. auth.login" },
      { option: "--for <seconds>", description: "stop after this many seconds" },
    ],
    async action(broker, args) {
      const type = stringOption(args, "type");
      const seconds = args.options.for === undefined ? undefined : count(args.options.for, "for", 60, 86_400);
      print(`Following the audit log${type ? ` (${type})` : ""}: Enter or Ctrl-C stops`);
      await tailEvents(broker, type, untilKeyOrTimeout(seconds));
      print("Stopped following the audit log.");
    },
  },
  {
    command: "stats",
    description: "Audit events per type (default: the last 24 hours)",
    options: [
      { option: "--from <date>", description: "from this time (ISO 8601)" },
      { option: "--to <date>", description: "until this time (ISO 8601)" },
    ],
    async action(broker, args) {
      await eventStats(broker, stringOption(args, "from"), stringOption(args, "to"));
    },
  },
];
