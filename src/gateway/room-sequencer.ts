/**
 * Live messages in seq order per room. chat broadcasts each batch after its commit; with one chat
 * instance the batches already arrive in commit order, but two instances committing to the same
 * room can broadcast in the other order. A gateway holds a message that skips a seq for a moment
 * (`holdMs`) until the missing one arrives, then emits both in order; if it never comes (its
 * broadcast was lost), the held ones go out anyway and clients sync the gap. A message older than
 * the room's next seq goes out at once (clients drop duplicates).
 */
import type { Message } from "../contracts/objects.js";

interface RoomOrder {
  /** The seq this room's next message should have. */
  next: number;
  held: Map<number, Message>;
  timer?: NodeJS.Timeout;
  lastAt: number;
}

export class RoomSequencer {
  private readonly rooms = new Map<number, RoomOrder>();

  constructor(
    private readonly emit: (message: Message) => void,
    private readonly holdMs = 100,
  ) {}

  push(message: Message): void {
    const now = Date.now();
    const room = this.rooms.get(message.roomId);
    if (!room) {
      // The first this gateway sees of the room sets where it stands.
      this.rooms.set(message.roomId, { next: message.seq + 1, held: new Map(), lastAt: now });
      this.emit(message);
      return;
    }
    room.lastAt = now;
    if (message.seq < room.next) {
      this.emit(message);
    } else if (message.seq === room.next) {
      this.emit(message);
      room.next++;
      this.drain(room);
    } else {
      room.held.set(message.seq, message);
      room.timer ??= setTimeout(() => this.release(room), this.holdMs);
    }
  }

  /** Rooms holding nothing and quiet for `idleMs` are forgotten (called periodically). */
  sweep(idleMs: number): void {
    const before = Date.now() - idleMs;
    for (const [roomId, room] of this.rooms) {
      if (room.held.size === 0 && room.lastAt < before) this.rooms.delete(roomId);
    }
  }

  /** Emits every held message at once, in order (the gateway is stopping). */
  flush(): void {
    for (const room of this.rooms.values()) if (room.held.size > 0) this.release(room);
  }

  /** Rooms with a position (for tests and metrics). */
  get size(): number {
    return this.rooms.size;
  }

  private drain(room: RoomOrder): void {
    for (let m = room.held.get(room.next); m; m = room.held.get(room.next)) {
      room.held.delete(room.next);
      this.emit(m);
      room.next++;
    }
    if (room.held.size === 0 && room.timer) {
      clearTimeout(room.timer);
      room.timer = undefined;
    }
  }

  /** The gap did not fill in time: what is held goes out in order, and the room moves past it. */
  private release(room: RoomOrder): void {
    if (room.timer) clearTimeout(room.timer);
    room.timer = undefined;
    const seqs = [...room.held.keys()].sort((a, b) => a - b);
    for (const seq of seqs) this.emit(room.held.get(seq)!);
    room.held.clear();
    if (seqs.length > 0) room.next = Math.max(room.next, seqs[seqs.length - 1] + 1);
  }
}
