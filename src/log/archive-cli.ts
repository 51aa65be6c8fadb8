/**
 * The audit log's backup tool: every event of the log service's document store out as one gzipped
 * NDJSON file, and back in. The backups (ops/ansible/roles/backup) run it on a cluster node:
 *
 *   node dist/src/log/archive-cli.js export [--out FILE]         gzip NDJSON to FILE or stdout
 *   node dist/src/log/archive-cli.js import [--replace] [FILE]   from FILE or stdin ("-"), gzipped or not
 *   node dist/src/log/archive-cli.js check [FILE]                 read and check an archive, no store
 *   node dist/src/log/archive-cli.js count                        how many events the store holds
 *
 * The store is the one the log service opens, from the same configuration (src/config.ts): MONGO_URL,
 * else the embedded store under DATA_DIR. Run it with the node's environment, e.g.
 * `node --env-file=/etc/nochat/nochat.env …`. One line per event in MongoDB Extended JSON (relaxed),
 * so dates come back as dates; lines are in `_id` order, read in pages, so memory stays flat.
 * Importing is idempotent on the event id (a repeated event is skipped); `--replace` reads and checks the
 * whole archive first, then deletes every event in the store and imports it, so the log becomes exactly
 * the archive (a restore) and a damaged archive leaves the store untouched. `check` reads and checks an
 * archive without opening the store. Progress and counts go to stderr.
 */
import { createReadStream, createWriteStream, renameSync, rmSync } from "node:fs";
import { createInterface } from "node:readline";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { BSON } from "mongodb";
import { config } from "../config.js";
import { openDocStore, type DocCollection, type DocStore } from "../infra/docstore.js";
import type { EventDoc } from "./event-log.js";

/** The collection EventLog keeps the audit log in. */
const EVENTS = "events";
const PAGE = 1000;

const { EJSON } = BSON;

/** Every event, in `_id` order, one page at a time. */
async function* eventsOf(events: DocCollection<EventDoc>, page = PAGE): AsyncGenerator<EventDoc> {
  let last: string | undefined;
  for (;;) {
    const filter = last === undefined ? {} : { _id: { $gt: last } };
    const docs = await events.find(filter, { sort: { _id: 1 }, limit: page });
    for (const doc of docs) yield doc;
    if (docs.length < page) return;
    last = docs[docs.length - 1]._id;
  }
}

/** Writes the store's events to `out` as gzipped NDJSON; resolves with how many. */
export async function exportEvents(store: DocStore, out: Writable, page = PAGE): Promise<number> {
  const events = store.collection<EventDoc>(EVENTS);
  let count = 0;
  async function* lines(): AsyncGenerator<string> {
    for await (const doc of eventsOf(events, page)) {
      count += 1;
      yield EJSON.stringify(doc, { relaxed: true }) + "\n";
    }
  }
  await pipeline(Readable.from(lines()), createGzip(), out);
  return count;
}

/** `input` as it is, or gunzipped when it starts with gzip's magic bytes (1f 8b). */
async function* maybeGunzip(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const chunks = input[Symbol.asyncIterator]();
  // The first two bytes decide, however the input happens to be cut into chunks.
  let head = Buffer.alloc(0);
  let done = false;
  while (head.length < 2 && !done) {
    const next = await chunks.next();
    if (next.done) done = true;
    else head = Buffer.concat([head, next.value]);
  }
  const whole = (async function* () {
    if (head.length > 0) yield head;
    while (!done) {
      const next = await chunks.next();
      if (next.done) return;
      yield next.value;
    }
  })();
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const gunzip = createGunzip();
    // A read error of the source destroys gunzip with it, so the loop below throws it.
    void pipeline(whole, gunzip).catch(() => undefined);
    yield* gunzip;
  } else {
    yield* whole;
  }
}

export interface ImportResult {
  /** Events read from the archive. */
  read: number;
  /** Of those, events the store did not hold yet. */
  inserted: number;
  /** Events deleted first (`replace`). */
  deleted: number;
}

/**
 * An archive: its bytes once, or a function that reads them again on each call (a file). `replace`
 * reads an archive twice; one given once is kept in memory (its gzipped bytes) for the second pass.
 */
export type ArchiveSource = AsyncIterable<Buffer> | (() => AsyncIterable<Buffer>);

/** The archive's events, each checked; a broken line or a damaged gzip stream throws (with its line). */
async function* parseArchive(input: AsyncIterable<Buffer>): AsyncGenerator<EventDoc> {
  const lines = createInterface({ input: Readable.from(maybeGunzip(input)), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo += 1;
    if (line.trim() === "") continue;
    let doc: EventDoc;
    try {
      doc = EJSON.parse(line, { relaxed: true }) as EventDoc;
    } catch (err) {
      throw new Error(`line ${lineNo}: not JSON (${(err as Error).message})`);
    }
    if (typeof doc !== "object" || doc === null || typeof doc._id !== "string" || !(doc.ts instanceof Date)) {
      throw new Error(`line ${lineNo}: not an audit event (a string _id and a date ts expected)`);
    }
    yield doc;
  }
}

/** A source that can be read more than once. */
async function rereadable(input: ArchiveSource): Promise<() => AsyncIterable<Buffer>> {
  if (typeof input === "function") return input;
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(chunk);
  return async function* () {
    yield* chunks;
  };
}

/** Reads the whole archive without a store; resolves with its number of events, rejects if it is broken. */
export async function checkArchive(input: ArchiveSource): Promise<number> {
  let count = 0;
  for await (const doc of parseArchive(typeof input === "function" ? input() : input)) {
    void doc;
    count += 1;
  }
  return count;
}

/** Reads an archive written by exportEvents (gzipped or plain NDJSON) into the store. */
export async function importEvents(
  store: DocStore,
  input: ArchiveSource,
  opts: { replace?: boolean; batch?: number } = {},
): Promise<ImportResult> {
  const events = store.collection<EventDoc>(EVENTS);
  const batchSize = opts.batch ?? PAGE;
  let source: AsyncIterable<Buffer>;
  let deleted = 0;
  if (opts.replace) {
    // The whole archive is read and checked before anything is deleted: a damaged archive fails the
    // import with the store as it was.
    const open = await rereadable(input);
    await checkArchive(open);
    source = open();
    deleted = await events.deleteMany({});
  } else {
    // Without `replace`, lines are checked as they stream in (importing is idempotent: a failed
    // import can be repeated).
    source = typeof input === "function" ? input() : input;
  }
  const result: ImportResult = { read: 0, inserted: 0, deleted };
  let batch: EventDoc[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    result.inserted += (await events.insertMany(batch)).inserted;
    batch = [];
  };
  for await (const doc of parseArchive(source)) {
    batch.push(doc);
    result.read += 1;
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  return result;
}

const USAGE = `usage: archive-cli export [--out FILE]
       archive-cli import [--replace] [FILE|-]
       archive-cli check [FILE|-]
       archive-cli count
The store is MONGO_URL's, else the embedded one under DATA_DIR (as the log service's).`;

class UsageError extends Error {}

interface Args {
  command: "export" | "import" | "check" | "count";
  out?: string;
  file?: string;
  replace: boolean;
}

export function parseArgs(argv: string[]): Args {
  const [command, ...rest] = argv;
  if (command !== "export" && command !== "import" && command !== "check" && command !== "count") {
    throw new UsageError(command ? `unknown command "${command}"` : "no command");
  }
  const args: Args = { command, replace: false };
  for (let i = 0; i < rest.length; i += 1) {
    const arg = rest[i];
    if (command === "export" && (arg === "--out" || arg === "-o")) {
      args.out = rest[++i];
      if (!args.out) throw new UsageError(`${arg} needs a file name`);
    } else if (command === "import" && arg === "--replace") {
      args.replace = true;
    } else if (
      (command === "import" || command === "check") &&
      args.file === undefined &&
      (arg === "-" || !arg.startsWith("-"))
    ) {
      args.file = arg;
    } else {
      throw new UsageError(`unexpected argument "${arg}"`);
    }
  }
  return args;
}

/** Writes to FILE.partial and renames it into place once complete, so a failed export leaves no FILE. */
async function exportToFile(store: DocStore, file: string): Promise<number> {
  const partial = `${file}.partial`;
  try {
    const count = await exportEvents(store, createWriteStream(partial, { mode: 0o600 }));
    renameSync(partial, file);
    return count;
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  }
}

/** The archive named by FILE (read again on each call), or stdin. */
function archiveOf(file: string | undefined): ArchiveSource {
  return file && file !== "-" ? () => createReadStream(file) : process.stdin;
}

async function run(args: Args): Promise<void> {
  if (args.command === "check") {
    // No store: a restore checks its archive before it stops anything.
    const count = await checkArchive(archiveOf(args.file));
    process.stderr.write(`archive-cli: ${args.file ?? "-"} holds ${count} events, all readable\n`);
    return;
  }
  const c = config();
  const store = await openDocStore({ mongoUrl: c.mongoUrl, dataDir: c.dataDir });
  const where = c.mongoUrl ? "MongoDB" : `the embedded store in ${c.dataDir}`;
  try {
    if (args.command === "count") {
      process.stdout.write(`${await store.collection<EventDoc>(EVENTS).count({})}\n`);
    } else if (args.command === "export") {
      const count = args.out ? await exportToFile(store, args.out) : await exportEvents(store, process.stdout);
      process.stderr.write(`archive-cli: exported ${count} events from ${where}\n`);
    } else {
      const r = await importEvents(store, archiveOf(args.file), { replace: args.replace });
      process.stderr.write(
        `archive-cli: imported ${r.read} events into ${where} (${r.inserted} new` +
          (args.replace ? `, ${r.deleted} deleted first)\n` : ")\n"),
      );
    }
  } finally {
    await store.close();
  }
}

if (require.main === module) {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`archive-cli: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  // exitCode, not exit(): stdout may still be flushing into a pipe.
  run(args).catch((err: unknown) => {
    process.stderr.write(`archive-cli: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
