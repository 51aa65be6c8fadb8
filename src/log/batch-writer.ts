/**
 * Coalesces the log's writes: concurrent `ingest` calls add their documents to one bounded buffer,
 * which is written as a single insertMany when it reaches `maxBatch` documents or `maxDelayMs`
 * after the first one arrived, and on stop. Each caller's promise settles when its own documents
 * are stored (or the write failed), so a caller only acknowledges what is really in the store.
 * When the buffer is full, new documents are refused at once: the producer keeps them in its
 * outbox and retries, so memory stays bounded even while the store is down.
 */
export interface BatchWriterOptions {
  maxBatch?: number;
  maxDelayMs?: number;
  maxBuffered?: number;
}

interface Pending<T> {
  docs: T[];
  resolve: (stored: number) => void;
  reject: (err: unknown) => void;
}

export class BufferFullError extends Error {
  constructor() {
    super("log buffer is full; retry later");
    this.name = "BufferFullError";
  }
}

export class BatchWriter<T> {
  private queue: Pending<T>[] = [];
  private buffered = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly maxBatch: number;
  private readonly maxDelayMs: number;
  private readonly maxBuffered: number;

  constructor(
    private readonly write: (docs: T[]) => Promise<number>,
    opts: BatchWriterOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 500;
    this.maxDelayMs = opts.maxDelayMs ?? 50;
    this.maxBuffered = opts.maxBuffered ?? 10_000;
  }

  /** Resolves with how many of `docs` were new once they are stored. */
  add(docs: T[]): Promise<number> {
    if (docs.length === 0) return Promise.resolve(0);
    if (this.buffered + docs.length > this.maxBuffered) return Promise.reject(new BufferFullError());
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ docs, resolve, reject });
      this.buffered += docs.length;
      if (this.buffered >= this.maxBatch) this.flushSoon(0);
      else this.flushSoon(this.maxDelayMs);
    });
  }

  /** Writes everything buffered (graceful stop). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.run();
  }

  private flushSoon(ms: number): void {
    if (this.timer && ms > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, ms);
  }

  /** Writes are serialised: one insertMany at a time, each of the callers queued when it started. */
  private run(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      while (this.queue.length > 0) {
        const batch: Pending<T>[] = [];
        let size = 0;
        while (this.queue.length > 0 && (batch.length === 0 || size + this.queue[0].docs.length <= this.maxBatch)) {
          const next = this.queue.shift() as Pending<T>;
          batch.push(next);
          size += next.docs.length;
        }
        this.buffered -= size;
        try {
          // insertMany reports only a total: callers learn their share of new documents approximately,
          // which is all they use it for (a count in the ack).
          const stored = await this.write(batch.flatMap((p) => p.docs));
          let left = stored;
          for (const p of batch) {
            const mine = Math.min(left, p.docs.length);
            left -= mine;
            p.resolve(mine);
          }
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    });
    return this.flushing;
  }
}
