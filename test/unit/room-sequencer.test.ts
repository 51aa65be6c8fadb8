import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Message } from "../../src/contracts/objects.js";
import { RoomSequencer } from "../../src/gateway/room-sequencer.js";

const msg = (roomId: number, seq: number) => ({ roomId, seq, id: roomId * 1000 + seq }) as Message;

function recorder(holdMs = 30) {
  const out: string[] = [];
  const seq = new RoomSequencer((m) => out.push(`${m.roomId}:${m.seq}`), holdMs);
  return { out, seq };
}

describe("RoomSequencer", () => {
  it("emits a room's messages in seq order when a later one arrives first", () => {
    const { out, seq } = recorder();
    seq.push(msg(1, 5));
    seq.push(msg(1, 7));
    seq.push(msg(2, 1)); // another room is not held up
    assert.deepEqual(out, ["1:5", "2:1"]);
    seq.push(msg(1, 6));
    assert.deepEqual(out, ["1:5", "2:1", "1:6", "1:7"]);
  });

  it("lets held messages go, in order, when the gap does not fill in time; a late one goes out at once", async () => {
    const { out, seq } = recorder(20);
    seq.push(msg(1, 1));
    seq.push(msg(1, 4));
    seq.push(msg(1, 3));
    assert.deepEqual(out, ["1:1"]);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(out, ["1:1", "1:3", "1:4"]);
    seq.push(msg(1, 2)); // late: the client syncs or drops it
    seq.push(msg(1, 5));
    assert.deepEqual(out, ["1:1", "1:3", "1:4", "1:2", "1:5"]);
  });

  it("flush() emits what is held; sweep() forgets quiet rooms", () => {
    const { out, seq } = recorder(10_000);
    seq.push(msg(1, 1));
    seq.push(msg(1, 3));
    seq.push(msg(2, 1));
    seq.flush();
    assert.deepEqual(out, ["1:1", "2:1", "1:3"]);
    seq.sweep(-1);
    assert.equal(seq.size, 0);
  });
});
