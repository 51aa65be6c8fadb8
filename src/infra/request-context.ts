/**
 * The request a piece of code works for, without passing it around: every local action and event
 * handler runs inside an AsyncLocalStorage scope holding its Moleculer context
 * (RequestContextMiddleware), and the JSON log formatter adds that request's id and user to each
 * line written meanwhile — so `this.logger.info(…)` in a handler, and anything it awaits, carries
 * `requestId` and `userId` besides the logger's own `nodeID`, `svc` and `mod`.
 *
 * The request id is Moleculer's `ctx.requestID`: set where a call enters (the gateway: REST or
 * socket), passed on to every call and event made under it, across nodes, and the traceID of its
 * tracing spans (src/infra/tracing.ts).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Context, Middleware } from "moleculer";

/** What the scope keeps: a Moleculer Context is one; the socket gateway and span printer make their own. */
export interface RequestScope {
  requestID?: string | null;
  /** Read when a line is written: the gateway sets `user` after its context's scope began. */
  meta?: { user?: { id: number } | null };
  /** The service working for the request, for lines from loggers that are not a service's. */
  service?: { name: string } | null;
}

const storage = new AsyncLocalStorage<RequestScope>();

/** Runs `fn` for the request `scope`: log lines written meanwhile (and in what it awaits) name it. */
export function inRequest<T>(scope: RequestScope, fn: () => T): T {
  return storage.run(scope, fn);
}

/** The request being worked for here, if any. */
export function currentRequest(): RequestScope | undefined {
  return storage.getStore();
}

type Handler = (ctx: Context) => Promise<unknown>;

/** Every local action and event handler runs in its context's scope. Costs one storage.run a call. */
export const RequestContextMiddleware: Middleware = {
  name: "RequestContext",
  localAction(next: Handler): Handler {
    return function inRequestScope(ctx: Context) {
      return storage.run(ctx, next, ctx);
    };
  },
  localEvent(next: (ctx: Context) => void | Promise<void>) {
    return function inRequestScope(ctx: Context) {
      return storage.run(ctx, next, ctx);
    };
  },
};

/** A Console logger's bindings: node, namespace, module, and for a service's logger its name and version. */
export interface LogBindings {
  nodeID: string;
  ns: string;
  mod: string;
  svc?: string;
  ver?: string;
}

/**
 * Moleculer's Console logger formatter for JSON lines (stdout not a TTY): Moleculer's own "json"
 * line — `{ ts, level, msg, nodeID, ns, mod, svc, ver }` — plus, inside a request, `requestId` and
 * `userId` (null when anonymous), and `svc` for loggers that are not a service's (e.g. the tracer's).
 * Called by Moleculer with its `printArgs` (objects printed as for "json"); outside a request the
 * line is exactly Moleculer's.
 */
export function jsonLogFormatter(
  type: string,
  args: unknown[],
  bindings: LogBindings,
  { printArgs }: { printArgs: (args: unknown[]) => unknown[] },
): string[] {
  const line: Record<string, unknown> = { ts: Date.now(), level: type, msg: printArgs(args).join(" "), ...bindings };
  const scope = storage.getStore();
  if (scope) {
    if (line.svc === undefined && scope.service?.name) line.svc = scope.service.name;
    line.requestId = scope.requestID ?? null;
    line.userId = scope.meta?.user?.id ?? null;
  }
  return [JSON.stringify(line)];
}
