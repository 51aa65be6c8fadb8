/**
 * src/log/archive-cli.ts, the audit log's backup tool: an export is gzipped NDJSON of every event in
 * `_id` order (read in pages), dates survive the round trip, an import is idempotent on the event id,
 * `--replace` makes the log exactly the archive, broken lines fail with their number; and the CLI
 * itself, run as the backups run it, against the embedded store under DATA_DIR.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { checkArchive, exportEvents, importEvents, parseArgs } from "../../src/log/archive-cli.js";
import type { EventDoc } from "../../src/log/event-log.js";
import { openDocStore, type DocStore } from "../../src/infra/docstore.js";

const ROOT = path.resolve(__dirname, "..", "..");
const CLI = path.join(ROOT, "src", "log", "archive-cli.ts");

function event(i: number): EventDoc {
  const ts = new Date(Date.UTC(2026, 0, 1, 12, 0, i));
  return {
    _id: `ev-${String(i).padStart(4, "0")}`,
    ts,
    hour: new Date(Date.UTC(2026, 0, 1, 12)),
    type: i % 2 ? "message.sent" : "user.registered",
    nodeId: "worker-1",
    requestId: i % 3 ? `req-${i}` : null,
    userId: i,
    roomId: i % 2 ? 10 + i : null,
    data: { userId: i, nested: { list: [1, "two", { three: 3 }] }, at: ts },
  };
}

/** A Writable that keeps what it is given. */
function sink(): { stream: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  return { stream, bytes: () => Buffer.concat(chunks) };
}

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  // In a few chunks, the first shorter than a gzip header, as a pipe may deliver it.
  yield data.subarray(0, 1);
  yield data.subarray(1, 100);
  yield data.subarray(100);
}

async function all(store: DocStore): Promise<EventDoc[]> {
  return store.collection<EventDoc>("events").find({}, { sort: { _id: 1 } });
}

describe("archive-cli", () => {
  let dir: string;
  const open = (name: string): Promise<DocStore> =>
    openDocStore({ mongoUrl: undefined, dataDir: path.join(dir, name) });

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "archive-cli-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("exports every event as gzipped NDJSON in _id order, across pages, and imports it back equal", async () => {
    const source = await open("a");
    const docs = Array.from({ length: 23 }, (_, i) => event(22 - i)); // inserted out of order
    await source.collection<EventDoc>("events").insertMany(docs);
    const out = sink();
    assert.equal(await exportEvents(source, out.stream, 5), 23);
    const lines = gunzipSync(out.bytes()).toString("utf8").trimEnd().split("\n");
    assert.equal(lines.length, 23);
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { _id: string })._id),
      docs.map((d) => d._id).sort(),
    );
    assert.deepEqual((JSON.parse(lines[0]) as { ts: unknown }).ts, { $date: "2026-01-01T12:00:00Z" });

    const target = await open("b");
    const r = await importEvents(target, once(out.bytes()), { batch: 4 });
    assert.deepEqual(r, { read: 23, inserted: 23, deleted: 0 });
    const restored = await all(target);
    assert.deepEqual(restored, await all(source));
    assert.ok(restored[0].ts instanceof Date && restored[0].data.at instanceof Date, "dates come back as dates");

    const again = await importEvents(target, once(out.bytes()));
    assert.deepEqual(again, { read: 23, inserted: 0, deleted: 0 }, "a second import adds nothing");
    await Promise.all([source.close(), target.close()]);
  });

  it("--replace makes the log exactly the archive; plain NDJSON is read too", async () => {
    const store = await open("c");
    await store.collection<EventDoc>("events").insertMany([event(1), event(500)]);
    const plain = Buffer.from(
      [event(1), event(2)].map((d) => JSON.stringify({ ...d, ts: { $date: d.ts } })).join("\n"),
    );
    const r = await importEvents(store, once(plain), { replace: true });
    assert.deepEqual(r, { read: 2, inserted: 2, deleted: 2 });
    assert.deepEqual(
      (await all(store)).map((d) => d._id),
      ["ev-0001", "ev-0002"],
    );
    await store.close();
  });

  it("--replace of a damaged archive fails before it deletes anything; check reads without a store", async () => {
    const store = await open("h");
    const kept = [event(1), event(2), event(3)];
    await store.collection<EventDoc>("events").insertMany(kept);
    const out = sink();
    await exportEvents(store, out.stream);
    const archive = out.bytes();
    const good = (d: EventDoc): string => JSON.stringify({ ...d, ts: { $date: d.ts.toISOString() } });
    const damaged: [string, Buffer, RegExp][] = [
      ["a truncated gzip stream", archive.subarray(0, archive.length - 12), /unexpected end of file/],
      ["a broken last line", gzipSync(`${good(event(4))}\n${good(event(5))}\n{oops\n`), /line 3: not JSON/],
      ["a line that is no event", Buffer.from(`${good(event(4))}\n{"_id":6}\n`), /line 2: not an audit event/],
    ];
    for (const [what, bytes, error] of damaged) {
      await assert.rejects(importEvents(store, once(bytes), { replace: true }), error, what);
      await assert.rejects(
        importEvents(store, () => once(bytes), { replace: true }),
        error,
        what,
      );
      await assert.rejects(checkArchive(once(bytes)), error, what);
      assert.deepEqual(await all(store), kept, `${what}: the events are untouched`);
    }
    assert.equal(await checkArchive(() => once(archive)), 3);
    // A source read twice (a file) gives the same result as one kept in memory (stdin).
    const r = await importEvents(store, () => once(gzipSync(good(event(9)))), { replace: true });
    assert.deepEqual(r, { read: 1, inserted: 1, deleted: 3 });
    assert.deepEqual(
      (await all(store)).map((d) => d._id),
      ["ev-0009"],
    );
    await store.close();
  });

  it("an empty store exports an empty archive, and an empty archive imports nothing", async () => {
    const store = await open("d");
    const out = sink();
    assert.equal(await exportEvents(store, out.stream), 0);
    assert.equal(gunzipSync(out.bytes()).length, 0);
    assert.deepEqual(await importEvents(store, once(out.bytes())), { read: 0, inserted: 0, deleted: 0 });
    await store.close();
  });

  it("fails on a broken line with its number, and on lines that are not events", async () => {
    const store = await open("e");
    const good = JSON.stringify({ ...event(1), ts: { $date: event(1).ts.toISOString() } });
    await assert.rejects(importEvents(store, once(gzipSync(`${good}\n{oops\n`))), /line 2: not JSON/);
    await assert.rejects(importEvents(store, once(Buffer.from(`\n{"_id":3}\n`))), /line 2: not an audit event/);
    await assert.rejects(importEvents(store, once(Buffer.from(`{"_id":"x","ts":"2026"}`))), /line 1: not an audit/);
    await store.close();
  });

  it("parses its arguments and refuses others", () => {
    assert.deepEqual(parseArgs(["export"]), { command: "export", replace: false });
    assert.deepEqual(parseArgs(["export", "-o", "f.gz"]), { command: "export", out: "f.gz", replace: false });
    assert.deepEqual(parseArgs(["import", "--replace", "f.gz"]), { command: "import", file: "f.gz", replace: true });
    assert.deepEqual(parseArgs(["import", "-"]), { command: "import", file: "-", replace: false });
    assert.deepEqual(parseArgs(["check", "f.gz"]), { command: "check", file: "f.gz", replace: false });
    for (const bad of [
      [],
      ["dump"],
      ["export", "--replace"],
      ["import", "a", "b"],
      ["export", "--out"],
      ["check", "--replace"],
    ]) {
      assert.throws(() => parseArgs(bad), Error, bad.join(" "));
    }
  });

  it("runs as a command: export to a file, import from stdin with --replace, count", async () => {
    const store = await open("f");
    await store.collection<EventDoc>("events").insertMany([event(7), event(8), event(9)]);
    await store.close();
    const env = {
      PATH: process.env.PATH,
      DATA_DIR: path.join(dir, "f"),
      JWT_SECRET: "a-test-secret-of-more-than-32-characters-0123456789",
    };
    // check needs no store, so no configuration either (`only` replaces the environment).
    const cli = (args: string[], input?: Buffer, only?: NodeJS.ProcessEnv): ReturnType<typeof spawnSync> =>
      spawnSync(process.execPath, ["--import", "tsx", CLI, ...args], {
        cwd: ROOT,
        env: only ?? env,
        input,
        timeout: 60_000,
      });

    const file = path.join(dir, "f.ndjson.gz");
    const exported = cli(["export", "--out", file]);
    assert.equal(exported.status, 0, String(exported.stderr));
    assert.match(String(exported.stderr), /exported 3 events/);
    const archive = readFileSync(file);

    env.DATA_DIR = path.join(dir, "g");
    const imported = cli(["import", "--replace", "-"], archive);
    assert.equal(imported.status, 0, String(imported.stderr));
    assert.match(String(imported.stderr), /imported 3 events .*\(3 new, 0 deleted first\)/);
    assert.equal(String(cli(["count"]).stdout).trim(), "3");

    const usage = cli(["backup"]);
    assert.equal(usage.status, 2);
    assert.match(String(usage.stderr), /unknown command "backup"[\s\S]*usage:/);
    writeFileSync(path.join(dir, "broken"), "{nope\n");
    const broken = cli(["import", path.join(dir, "broken")]);
    assert.equal(broken.status, 1);
    assert.match(String(broken.stderr), /line 1: not JSON/);
    const replaced = cli(["import", "--replace", path.join(dir, "broken")]);
    assert.equal(replaced.status, 1);
    assert.equal(String(cli(["count"]).stdout).trim(), "3", "a damaged archive leaves the events");

    const checked = cli(["check", file], undefined, { PATH: process.env.PATH });
    assert.equal(checked.status, 0, String(checked.stderr));
    assert.match(String(checked.stderr), /holds 3 events, all readable/);
    assert.equal(cli(["check", "-"], Buffer.from("{nope\n"), { PATH: process.env.PATH }).status, 1);
  });
});
