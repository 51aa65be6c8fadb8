/**
 * Moleculer tracing, switched by TRACING (src/config.ts):
 *   off     — no spans (the default);
 *   console — each node prints its spans of a request as a table when they finish, through its
 *             logger: in JSON logs every row is a line with that request's `requestId` and `userId`;
 *   event   — each node emits its finished spans as the `$tracing.spans` event (batched every 5 s)
 *             for a collector service on the bus to take.
 * A span's traceID is its request's id (`ctx.requestID`, from the gateway: the X-Request-ID
 * answer header), so a request's spans on every node share it. Spans cover actions and events,
 * tagged with the caller's user id only: never params, meta or responses (passwords, tokens,
 * message bodies).
 */
import { TracerExporters, type Context, type Span, type TracerOptions } from "moleculer";
import type { TracingMode } from "../config.js";
import { inRequest } from "./request-context.js";

/** Span tags of every action and event (Moleculer's default would copy all params). */
function spanTags(ctx: Context): { userId: number | null } {
  return { userId: (ctx.meta as { user?: { id: number } | null }).user?.id ?? null };
}

/**
 * Moleculer's Console exporter, printing a request's spans in the request's scope, so that its
 * lines carry the request id and user like the request's other log lines.
 */
class RequestConsoleExporter extends TracerExporters.Console {
  override spanFinished(span: Span): void {
    const userId = (span.tags as { userId?: number | null }).userId;
    inRequest(
      {
        requestID: span.traceID,
        meta: { user: typeof userId === "number" ? { id: userId } : null },
        service: span.service,
      },
      () => super.spanFinished(span),
    );
  }
}
// Registered by name, so each broker makes its own (typed as taking an instance; it takes a class).
TracerExporters.register("RequestConsole", RequestConsoleExporter as unknown as TracerExporters.Base);

/** The broker's `tracing` option for a TRACING mode; `tty`: colours for the console tables. */
export function tracingOptions(mode: TracingMode, tty: boolean): TracerOptions {
  if (mode === "off") return { enabled: false };
  const exporter =
    mode === "console"
      ? { type: "RequestConsole", options: { colors: tty, width: 120 } }
      : { type: "Event", options: { eventName: "$tracing.spans", interval: 5 } };
  return {
    enabled: true,
    // RequestConsole is registered above; Moleculer's typings know only its own exporter names.
    exporter: exporter as TracerOptions["exporter"],
    actions: true,
    events: true,
    tags: { action: spanTags, event: spanTags },
  };
}
