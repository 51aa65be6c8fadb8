import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupCommit, type Outcome } from "../../src/infra/group-commit.js";

/** A flush that records its batches and answers when released. */
function recorder() {
  const batches: number[][] = [];
  const releases: (() => void)[] = [];
  const flush = async (items: number[]): Promise<Outcome<number>[]> => {
    batches.push(items);
    await new Promise<void>((resolve) => releases.push(resolve));
    return items.map((n) => (n < 0 ? { ok: false, error: new Error(`negative ${n}`) } : { ok: true, value: n * 10 }));
  };
  return { batches, releases, flush };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("GroupCommit", () => {
  it("takes one tick's submissions together, and those that arrive during a flush into the next", async () => {
    const r = recorder();
    const gc = new GroupCommit(r.flush, { maxBatch: 100, maxInFlight: 1 });
    const first = [1, 2, 3].map((n) => gc.submit(n));
    await tick();
    assert.deepEqual(r.batches, [[1, 2, 3]]);
    const second = [4, 5].map((n) => gc.submit(n));
    await tick();
    assert.deepEqual(r.batches, [[1, 2, 3]], "nothing starts while a flush is in flight");
    assert.equal(gc.waiting, 2);
    r.releases[0]();
    assert.deepEqual(await Promise.all(first), [10, 20, 30]);
    await tick();
    assert.deepEqual(r.batches, [
      [1, 2, 3],
      [4, 5],
    ]);
    r.releases[1]();
    assert.deepEqual(await Promise.all(second), [40, 50]);
  });

  it("answers each item alone: one error rejects only its own caller", async () => {
    const r = recorder();
    const gc = new GroupCommit(r.flush, { maxBatch: 100, maxInFlight: 1 });
    const results = [1, -2, 3].map((n) =>
      gc.submit(n).then(
        (v) => `ok ${v}`,
        (e: Error) => e.message,
      ),
    );
    await tick();
    r.releases[0]();
    assert.deepEqual(await Promise.all(results), ["ok 10", "negative -2", "ok 30"]);
  });

  it("a flush that throws rejects every item of its batch, and the next batch still runs", async () => {
    let calls = 0;
    const gc = new GroupCommit<number, number>(
      async (items) => {
        calls++;
        if (calls === 1) throw new Error("database down");
        return items.map((n) => ({ ok: true, value: n }));
      },
      { maxBatch: 100, maxInFlight: 1 },
    );
    const failed = await Promise.allSettled([gc.submit(1), gc.submit(2)]);
    assert.deepEqual(
      failed.map((f) => (f.status === "rejected" ? (f.reason as Error).message : "fulfilled")),
      ["database down", "database down"],
    );
    assert.equal(await gc.submit(3), 3);
  });

  it("splits at maxBatch and runs up to maxInFlight flushes at once", async () => {
    const r = recorder();
    const gc = new GroupCommit(r.flush, { maxBatch: 2, maxInFlight: 2 });
    const all = [1, 2, 3, 4, 5].map((n) => gc.submit(n));
    await tick();
    assert.deepEqual(r.batches, [
      [1, 2],
      [3, 4],
    ]);
    r.releases[0]();
    await tick();
    await tick();
    assert.deepEqual(r.batches.at(-1), [5]);
    r.releases[1]();
    r.releases[2]();
    assert.deepEqual(await Promise.all(all), [10, 20, 30, 40, 50]);
  });
});
