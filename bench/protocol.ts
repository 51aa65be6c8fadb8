/**
 * What bench/run.ts (the orchestrator) and bench/load-worker.ts (a load-generator process) say to
 * each other over the child-process IPC channel. Every user of a room is in the same worker, so a
 * worker checks its rooms' acknowledgements against its rooms' deliveries on its own.
 */
import type { HistogramJson } from "./hist.js";

export interface WorkerUser {
  userId: number;
  token: string;
  roomId: number;
}

/** Counts per 100 ms slot (Math.floor(epochMs / 100)): the orchestrator sums a window's slots. */
export type Slots = Record<string, number>;
export const SLOT_MS = 100;

export type ToWorker =
  | {
      type: "init";
      worker: number;
      gateways: string[];
      users: WorkerUser[];
      /** NoChat answers `sync`; a baseline does not (what a receiver missed is then lost). */
      canSync: boolean;
      bodyChars: number;
    }
  | { type: "connect" }
  /** Closed loop: every user keeps one send in flight until `closedStop`. */
  | { type: "closedStart"; tag: string }
  | { type: "closedStop" }
  /** Open loop: sends at `ratePerSec` on a fixed schedule from `startAt` (epoch ms) for `durationMs`. */
  | { type: "open"; startAt: number; durationMs: number; ratePerSec: number }
  /** Waits until every user holds every acknowledged message of its room, syncs what is missing. */
  | { type: "settle"; timeoutMs: number }
  /** Opens `count` idle sockets on `gateway` with the users' tokens in turn. */
  | { type: "idleOpen"; gateway: string; count: number; concurrency: number }
  | { type: "idleClose" }
  | { type: "exit" };

export interface Progress {
  acked: number;
  received: number;
  inFlight: number;
  failedAttempts: number;
  disconnects: number;
}

export interface RoomAcks {
  roomId: number;
  /** Message ids acknowledged in this room (each clientMsgId once). */
  ids: number[];
}

export type FromWorker =
  | { type: "ready" }
  | { type: "connected"; ok: number; failed: number; error?: string }
  | { type: "progress"; worker: number; progress: Progress }
  | { type: "closedStopped"; acks: Slots; receipts: Slots; failedAttempts: number }
  | {
      type: "openDone";
      scheduled: number;
      acked: number;
      /** How far behind its schedule the worker sent, at worst (ms): large values mean the generator lagged. */
      maxLagMs: number;
      ack: HistogramJson;
      e2e: HistogramJson;
      failedAttempts: number;
    }
  | {
      type: "settled";
      /** Sum over users of their room's acknowledged messages: what receivers should hold. */
      expected: number;
      /** Held by receivers after live delivery (and sync, where there is one). */
      held: number;
      missedLive: number;
      recoveredBySync: number;
      lost: number;
      duplicates: number;
      /** A clientMsgId acknowledged as two different messages. */
      ackConflicts: number;
      rooms: RoomAcks[];
      waitedMs: number;
    }
  | { type: "idleOpened"; connected: number; failed: number; ms: number; error?: string }
  | { type: "idleClosed" }
  | { type: "error"; message: string };
