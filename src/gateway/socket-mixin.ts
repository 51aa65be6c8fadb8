/**
 * Our socket.io mixin for the moleculer-web gateway (moleculer-io has no release for Moleculer 0.15).
 * It attaches socket.io to the gateway's HTTP server, authenticates the handshake with the same
 * cached token check as REST, refuses origins outside the allowlist, and turns each client event
 * into an action call with the socket's Principal as `ctx.meta.user`: validate → act → ack. Fan-out
 * (broadcast) happens when the owning service's bus event reaches this node.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Logger, ServiceBroker, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { Server, type Socket } from "socket.io";
import { config } from "../config.js";
import type { Principal } from "../contracts/objects.js";
import { socketRooms, type Ack, type ClientToServerEvents, type ServerToClientEvents } from "../contracts/socket.js";
import { AppError, toErrorBody } from "../errors.js";
import type { CallMeta } from "../infra/permissions.js";
import { sanitizeInput } from "./sanitize.js";

export interface SocketData {
  principal: Principal;
}

export type ChatServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
export type ChatSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/** How a client event is served: an action call, or a handler local to the gateway. */
export type SocketCall =
  | {
      action: string;
      /** Reject before calling, e.g. for a per-user rate limit. */
      before?: (socket: ChatSocket) => void;
    }
  | {
      handle: (socket: ChatSocket, payload: Record<string, unknown>) => unknown;
    };

/** The service `this` the mixin needs: the gateway's server and its token resolution. */
export interface SocketHost {
  broker: ServiceBroker;
  logger: Logger;
  server: import("node:http").Server;
  io: ChatServer;
  resolvePrincipal(token: string, requestId?: string | null): Promise<Principal>;
  socketCalls(): Record<string, SocketCall>;
  /** Runs in the handshake, after authentication: the socket is not connected until it resolves. */
  prepareSocket?(socket: ChatSocket): Promise<void>;
  onSocketConnected?(socket: ChatSocket): Promise<void> | void;
  onSocketDisconnected?(socket: ChatSocket, reason: string): Promise<void> | void;
  attachSocketServer(): void;
  revokeSessionSockets(sessionId: string): void;
}

/** Same origin by default; ALLOWED_ORIGINS adds more. Clients that send no Origin (bots, servers) pass. */
export function originAllowed(req: IncomingMessage, allowed: string[]): boolean {
  const origin = req.headers.origin;
  if (!origin) return true;
  if (allowed.includes(origin) || allowed.includes("*")) return true;
  const host = req.headers.host;
  return host !== undefined && (origin === `http://${host}` || origin === `https://${host}`);
}

// A message body is at most 4,000 characters (≤ 16,000 bytes of UTF-8); leave room for the envelope.
const MAX_SOCKET_PACKET = 20 * 1024;

const mixin: Partial<ServiceSchema<ServiceSettingSchema, object, SocketHost>> = {
  name: "socket",

  methods: {
    attachSocketServer() {
      const allowed = config().allowedOrigins;
      const io: ChatServer = new Server(this.server, {
        path: "/socket.io",
        maxHttpBufferSize: MAX_SOCKET_PACKET,
        serveClient: false,
        allowRequest: (req, callback) => callback(null, originAllowed(req, allowed)),
        cors: allowed.length > 0 ? { origin: allowed, credentials: true } : undefined,
      });
      this.io = io;

      io.use((socket, next) => {
        const token: unknown = socket.handshake.auth?.token;
        if (typeof token !== "string" || token.length === 0 || token.length > 4096) {
          return next(new Error("UNAUTHORIZED"));
        }
        this.resolvePrincipal(token)
          .then(async (principal) => {
            socket.data.principal = principal;
            await socket.join([socketRooms.user(principal.id), socketRooms.session(principal.sessionId)]);
            // Subscribed before the client hears "connect": a sync it sends at once cannot race a
            // message committed in between.
            await this.prepareSocket?.(socket);
          })
          .then(
            () => next(),
            (err: unknown) => {
              const { body, internal } = toErrorBody(err);
              if (internal) this.logger.warn("socket handshake failed", err);
              next(new Error(body.code === "UNAUTHORIZED" ? "UNAUTHORIZED" : "UNAVAILABLE"));
            },
          );
      });

      io.on("connection", (socket: ChatSocket) => {
        const calls = this.socketCalls();
        // An event nobody serves still gets an answer, if the client asked for one.
        socket.onAny((event: string, ...args: unknown[]) => {
          const last = args[args.length - 1];
          if (!(event in calls) && typeof last === "function") {
            (last as (res: Ack<unknown>) => void)({
              ok: false,
              error: { code: "NOT_FOUND", message: `Unknown event '${event.slice(0, 64)}'` },
            });
          }
        });
        for (const [event, call] of Object.entries(calls)) {
          // The ack is whatever function comes last: a client that sends only a callback, or extra
          // arguments before it, still gets its answer (a validation error) instead of a hang.
          socket.on(event as keyof ClientToServerEvents, (...args: unknown[]) => {
            const last = args[args.length - 1];
            const reply = typeof last === "function" ? (last as (res: Ack<unknown>) => void) : undefined;
            const payload = reply && args.length === 1 ? undefined : args[0];
            void handleCall(this.broker, socket, call, payload, reply);
          });
        }
        socket.on("disconnect", (reason) => {
          void Promise.resolve(this.onSocketDisconnected?.(socket, reason)).catch((err: unknown) =>
            this.logger.warn("socket disconnect handling failed", err),
          );
        });
        void Promise.resolve(this.onSocketConnected?.(socket)).catch((err: unknown) =>
          this.logger.warn("socket connect handling failed", err),
        );
      });
    },

    /** Sends `session:revoked` to a session's sockets on this node and disconnects them. */
    revokeSessionSockets(sessionId: string) {
      const room = socketRooms.session(sessionId);
      this.io.to(room).emit("session:revoked", {});
      this.io.in(room).disconnectSockets(true);
    },
  },

  async started() {
    this.attachSocketServer();
  },

  async stopped() {
    // Closing socket.io also closes the HTTP server, which would otherwise wait for open sockets.
    await new Promise<void>((resolve) => {
      if (!this.io) return resolve();
      this.io.close(() => resolve());
    });
  },
};

/** Typed for its host above; a mixin is declared for any service. */
export const SocketMixin = mixin as Partial<ServiceSchema>;

async function handleCall(
  broker: ServiceBroker,
  socket: ChatSocket,
  call: SocketCall,
  payload: unknown,
  ack: ((res: Ack<unknown>) => void) | undefined,
): Promise<void> {
  const requestId = randomUUID();
  try {
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
      throw AppError.validation([{ field: "payload", message: "The payload must be an object." }]);
    }
    // Prototype keys dropped, nesting bounded: the same as for REST bodies.
    sanitizeInput(payload);
    let data: unknown;
    if ("handle" in call) {
      data = await call.handle(socket, payload as Record<string, unknown>);
    } else {
      call.before?.(socket);
      const meta: CallMeta = { user: socket.data.principal, requestId };
      data = await broker.call(call.action, payload, {
        meta,
        requestID: requestId,
      });
    }
    ack?.({ ok: true, data: data ?? null });
  } catch (err) {
    const { body, internal } = toErrorBody(err, requestId);
    if (internal) broker.logger.error(`socket ${"action" in call ? call.action : "event"} failed [${requestId}]`, err);
    ack?.({ ok: false, error: body });
  }
}
