/**
 * The log's BatchWriter (src/log/batch-writer.ts): concurrent adds coalesce into one write, flushed
 * by size, by time and on flush(); each caller's promise settles with its own batch; a bounded
 * buffer refuses new documents when full.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BatchWriter, BufferFullError } from "../../src/log/batch-writer.js";
import { sleep } from "../support/wait.js";

/** A store that records each write; `fail` makes the next writes throw; `delayMs` slows them down. */
class FakeStore {
  writes: string[][] = [];
  fail = 0;
  delayMs = 0;
  active = 0;
  maxActive = 0;
  /** Ids already stored: a repeat is not new (like the log's idempotent insert). */
  stored = new Set<string>();

  write = async (docs: string[]): Promise<number> => {
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.delayMs) await sleep(this.delayMs);
      if (this.fail > 0) {
        this.fail -= 1;
        throw new Error("store unreachable");
      }
      this.writes.push([...docs]);
      let fresh = 0;
      for (const d of docs) {
        if (!this.stored.has(d)) fresh += 1;
        this.stored.add(d);
      }
      return fresh;
    } finally {
      this.active -= 1;
    }
  };
}

/** Whether a promise has settled yet (after letting pending callbacks run). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await sleep(0);
  return done;
}

describe("BatchWriter", () => {
  it("flushes by size: the add that fills a batch writes it at once, as one write", async () => {
    const store = new FakeStore();
    const writer = new BatchWriter(store.write, { maxBatch: 3, maxDelayMs: 60_000 });
    const a = writer.add(["a1", "a2"]);
    await sleep(20);
    assert.equal(await settled(a), false, "below maxBatch and long before maxDelayMs: still buffered");
    assert.deepEqual(store.writes, []);
    const b = writer.add(["b1"]);
    assert.deepEqual(await Promise.all([a, b]), [2, 1]);
    assert.deepEqual(store.writes, [["a1", "a2", "b1"]]);
  });

  it("flushes by time: maxDelayMs after the first document", async () => {
    const store = new FakeStore();
    const writer = new BatchWriter(store.write, { maxBatch: 100, maxDelayMs: 80 });
    const started = Date.now();
    const a = writer.add(["a"]);
    await sleep(30);
    const b = writer.add(["b"]); // does not push the deadline back
    assert.deepEqual(store.writes, []);
    assert.deepEqual(await Promise.all([a, b]), [1, 1]);
    const took = Date.now() - started;
    assert.ok(took >= 75 && took < 500, `written after ${took} ms`);
    assert.deepEqual(store.writes, [["a", "b"]], "both in one write");
  });

  it("flush() writes everything buffered now (graceful stop)", async () => {
    const store = new FakeStore();
    const writer = new BatchWriter(store.write, { maxBatch: 100, maxDelayMs: 60_000 });
    const a = writer.add(["a"]);
    const b = writer.add(["b", "c"]);
    await writer.flush();
    assert.deepEqual(store.writes, [["a", "b", "c"]]);
    assert.deepEqual(await Promise.all([a, b]), [1, 2]);
    await writer.flush(); // nothing left: no empty write
    assert.equal(store.writes.length, 1);
  });

  it("splits a large queue into batches of at most maxBatch, never splitting one caller's documents", async () => {
    const store = new FakeStore();
    const writer = new BatchWriter(store.write, { maxBatch: 4, maxDelayMs: 60_000 });
    const calls = [writer.add(["a1", "a2", "a3"]), writer.add(["b1", "b2"]), writer.add(["c1"]), writer.add(["d1"])];
    await writer.flush();
    await Promise.all(calls);
    assert.deepEqual(store.writes, [
      ["a1", "a2", "a3"],
      ["b1", "b2", "c1", "d1"],
    ]);
  });

  it("writes are serialised: one at a time", async () => {
    const store = new FakeStore();
    store.delayMs = 20;
    const writer = new BatchWriter(store.write, { maxBatch: 2, maxDelayMs: 5 });
    const calls = Array.from({ length: 10 }, (_, i) => writer.add([`d${i}`]));
    await Promise.all(calls);
    assert.equal(store.maxActive, 1);
    assert.deepEqual(store.writes.flat().sort(), Array.from({ length: 10 }, (_, i) => `d${i}`).sort());
  });

  it("a failing write rejects only that batch's callers; the next batch is written", async () => {
    const store = new FakeStore();
    store.fail = 1;
    const writer = new BatchWriter(store.write, { maxBatch: 2, maxDelayMs: 60_000 });
    // Queued in one tick: [a, b] fill the first batch, [c] goes into the second.
    const a = writer.add(["a"]);
    const b = writer.add(["b"]);
    const c = writer.add(["c"]);
    await writer.flush();
    const results = await Promise.allSettled([a, b, c]);
    assert.deepEqual(
      results.map((r) => r.status),
      ["rejected", "rejected", "fulfilled"],
    );
    assert.match(String((results[0] as PromiseRejectedResult).reason), /store unreachable/);
    assert.deepEqual(store.writes, [["c"]]);

    // The writer keeps working: the refused documents can be added again (the producer retries).
    assert.deepEqual(await Promise.all([writer.add(["a"]), writer.add(["b"]), writer.flush()]), [1, 1, undefined]);
    assert.deepEqual(store.writes, [["c"], ["a", "b"]]);
  });

  it("callers learn how many of their documents were new (replays count 0)", async () => {
    const store = new FakeStore();
    const writer = new BatchWriter(store.write, { maxBatch: 100, maxDelayMs: 60_000 });
    const first = writer.add(["x", "y"]);
    await writer.flush();
    assert.equal(await first, 2);
    const replay = writer.add(["x", "y"]);
    await writer.flush();
    assert.equal(await replay, 0);
    assert.equal(await writer.add([]), 0, "nothing to add: resolved at once");
  });

  it("a full buffer refuses new documents at once with BufferFullError; room comes back after a write", async () => {
    const store = new FakeStore();
    const writer = new BatchWriter(store.write, { maxBatch: 100, maxDelayMs: 60_000, maxBuffered: 5 });
    const a = writer.add(["a1", "a2", "a3"]);
    await assert.rejects(writer.add(["b1", "b2", "b3"]), (err: unknown) => {
      assert.ok(err instanceof BufferFullError);
      assert.equal(err.name, "BufferFullError");
      assert.match(err.message, /full/);
      return true;
    });
    const c = writer.add(["c1", "c2"]); // exactly at the bound: accepted
    await assert.rejects(writer.add(["d1"]), BufferFullError);
    await writer.flush();
    assert.deepEqual(await Promise.all([a, c]), [3, 2]);
    assert.deepEqual(store.writes, [["a1", "a2", "a3", "c1", "c2"]], "refused documents were never written");
    const again = writer.add(["b1", "b2", "b3"]);
    await writer.flush();
    assert.equal(await again, 3);
  });
});
