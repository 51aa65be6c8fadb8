/**
 * Waiting in tests, one way for each job:
 *
 *   await sleep(200);                                            a fixed pause
 *   const m = await eventually("bob's mention", async () => …);  poll until a check holds
 *   await withTimeout(socketClosed, 3_000, "no disconnect");     bound a promise
 *
 * An eventually() check answers "not yet" by returning undefined, null or false, or by throwing
 * (an assertion inside it may fail until the condition holds); anything else ends the wait and is
 * returned. A check that sees something that must never happen throws GiveUp: the wait fails at
 * once instead of polling on. Timing out fails the test with `what` and the last answer or error.
 */
import assert from "node:assert/strict";

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Thrown by an eventually() check: stop polling and fail with this error now. */
export class GiveUp extends Error {
  override name = "GiveUp";
}

export interface EventuallyOptions {
  /** Default 10 s. */
  timeoutMs?: number;
  /** Pause between two checks; default 100 ms. */
  intervalMs?: number;
  /** More to say when the wait times out, read then (a server's log). */
  context?: () => string;
}

/** What an eventually() check returns once it holds. */
export type Held<T> = Exclude<T, undefined | null | false>;

/**
 * Runs `check` until it returns something other than undefined, null or false (or a promise of
 * it), and returns that; see the module comment.
 */
export async function eventually<T>(
  what: string,
  check: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 100, context }: EventuallyOptions = {},
): Promise<Held<T>> {
  const started = Date.now();
  let last = "no answer";
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value as Held<T>;
      last = `answer: ${String(value)}`;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = `error: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (Date.now() - started >= timeoutMs) {
      assert.fail(
        `timed out after ${timeoutMs} ms waiting for ${what}; last ${last}${context ? `\n${context()}` : ""}`,
      );
    }
    await sleep(intervalMs);
  }
}

/** `promise`, or a rejection with `message` when it has not settled within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${message} (not within ${ms} ms)`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
