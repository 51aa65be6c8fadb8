/**
 * The gateway's audit records — HTTP access records and socket connects/disconnects — on their way
 * to the log. Access records hold method, route, status, duration, user and request id —
 * never bodies, query strings or headers (tokens live there). Requests only add to a bounded buffer;
 * the buffer goes to the gateway's outbox (one multi-row insert) every second, when it holds 500,
 * and on stop, and from there durably to the log. Past `maxBuffered` the oldest records are
 * dropped, so a database outage cannot grow the gateway's memory; how many is reported (`onDropped`,
 * the gateway logs a warning) once the outbox takes records again.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { NewEvent } from "../infra/outbox.js";
import type { RefusalSampler } from "../log/sampler.js";

export interface AccessRequest extends IncomingMessage {
  /** Set by moleculer-web, which rewrites `url` to the part after the route's path ("/api"). */
  originalUrl?: string;
  $alias?: { method: string; path: string; fullPath?: string };
  $route?: { path?: string };
  $ctx?: { requestID?: string | null; meta: { user?: { id: number } } };
}

export class AccessLog {
  private buffer: NewEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private dropped = 0;

  constructor(
    private readonly persist: (events: NewEvent[]) => Promise<void>,
    private readonly opts = { maxBatch: 500, intervalMs: 1000, maxBuffered: 20_000 },
    /** Samples refused anonymous requests (4xx without a user), so a flood cannot fill the log. */
    private readonly sampler?: RefusalSampler,
    /** Told how many records were dropped while the outbox was unreachable, once it takes them again. */
    private readonly onDropped: (count: number) => void = () => undefined,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.opts.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }

  /** For the HTTP server's "request" event: every API request, whatever answers it, is recorded. */
  observe(req: AccessRequest, res: ServerResponse): void {
    if (!req.url?.startsWith("/api/")) return;
    const started = performance.now();
    res.once("finish", () => this.record(req, res, started));
  }

  private record(req: AccessRequest, res: ServerResponse, started: number): void {
    const userId = req.$ctx?.meta.user?.id ?? null;
    if (userId === null && res.statusCode >= 400 && res.statusCode < 500) {
      if (this.sampler && !this.sampler.admit("http.access", String(res.statusCode))) return;
    }
    const route = req.$alias
      ? `/api/${req.$alias.path.replace(/^\//, "")}`
      : (req.originalUrl ?? req.url ?? "").split("?")[0];
    this.add({
      type: "http.access",
      at: Date.now(),
      requestId: req.$ctx?.requestID ?? null,
      data: {
        method: req.method ?? "",
        route: route.slice(0, 200),
        status: res.statusCode,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        userId,
      },
    });
  }

  add(event: NewEvent): void {
    this.buffer.push(event);
    if (this.buffer.length > this.opts.maxBuffered) {
      this.dropped += this.buffer.length - this.opts.maxBuffered;
      this.buffer.splice(0, this.buffer.length - this.opts.maxBuffered);
    }
    if (this.buffer.length >= this.opts.maxBatch) void this.flush();
  }

  /** Hands the buffer to the outbox; on failure the records go back to the front and wait. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      while (this.buffer.length > 0) {
        const batch = this.buffer.splice(0, this.opts.maxBatch);
        try {
          await this.persist(batch);
        } catch {
          this.buffer.unshift(...batch);
          return;
        }
      }
      if (this.dropped > 0) {
        this.onDropped(this.dropped);
        this.dropped = 0;
      }
    });
    return this.flushing;
  }
}
