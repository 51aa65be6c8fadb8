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
import type { ActionServing, SocketResult } from "../contracts/actions.js";
import type { Principal } from "../contracts/objects.js";
import { socketRooms, type Ack, type ClientToServerEvents, type ServerToClientEvents } from "../contracts/socket.js";
import { AppError, toErrorBody } from "../errors.js";
import { countMetric, METRIC, observeSince, registerMetrics, setMetric } from "../infra/metrics.js";
import type { CallMeta } from "../infra/permissions.js";
import { inRequest } from "../infra/request-context.js";
import { sanitizeInput } from "./sanitize.js";
import { clientAddress } from "./client-address.js";
import { TokenBuckets } from "./rate-limit.js";

export interface SocketData {
  principal: Principal;
  /** The client address (TRUST_PROXY aware) the per-address socket cap counts. */
  address: string;
  /** Per-event rate limits of this socket. */
  buckets: TokenBuckets;
}

/** The local channel of a client address's sockets: its size is how many it has open here. */
const addressRoom = (address: string): string => `address:${address}`;

/** How long a client refused for too many sockets is told to wait before trying again. */
const SOCKET_CAP_RETRY_S = 10;

/** A handshake refusal: `connect_error` with message "RATE_LIMITED" and the contract's error as `data`. */
function tooManySockets(message: string): Error {
  const err = new Error("RATE_LIMITED") as Error & { data: unknown };
  err.data = toErrorBody(AppError.rateLimited(SOCKET_CAP_RETRY_S, message)).body;
  return err;
}

export type ChatServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
export type ChatSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/**
 * How client event E is served: an action whose params and result are E's payload and ack data
 * (ActionServing), or a handler local to the gateway answering E's ack data.
 */
export type SocketCall<E extends keyof ClientToServerEvents> =
  | {
      action: ActionServing<E>;
      /** Reject before calling, e.g. for a per-user rate limit. */
      before?: (socket: ChatSocket, payload: Record<string, unknown>) => void;
    }
  | {
      handle: (
        socket: ChatSocket,
        payload: Record<string, unknown>,
        requestId: string,
      ) => SocketResult<E> | Promise<SocketResult<E>>;
    };

/** Every client event of the contract and how it is served: a missing or misspelt event fails to compile. */
export type SocketCalls = { [E in keyof ClientToServerEvents]: SocketCall<E> };
/** Any entry of the table. */
type AnySocketCall = SocketCalls[keyof SocketCalls];

/** The service `this` the mixin needs: the gateway's server and its token resolution. */
export interface SocketHost {
  broker: ServiceBroker;
  logger: Logger;
  server: import("node:http").Server;
  io: ChatServer;
  resolvePrincipal(token: string, requestId?: string | null): Promise<Principal>;
  socketCalls(): SocketCalls;
  /** Runs in the handshake, after authentication: the socket is not connected until it resolves. */
  prepareSocket?(socket: ChatSocket): Promise<void>;
  onSocketConnected?(socket: ChatSocket): Promise<void> | void;
  onSocketDisconnected?(socket: ChatSocket, reason: string): Promise<void> | void;
  attachSocketServer(): void;
  revokeSessionSockets(sessionId: string): void;
  revokeUserSockets(userId: number): void;
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
      const { allowedOrigins: allowed, trustProxy, socketLimit, socketEventLimit } = config();
      const rooms = () => this.io.of("/").adapter.rooms;
      const io: ChatServer = new Server(this.server, {
        path: "/socket.io",
        maxHttpBufferSize: MAX_SOCKET_PACKET,
        // Chat frames are small: compressing each costs the fan-out more CPU than it saves bytes.
        perMessageDeflate: false,
        serveClient: false,
        allowRequest: (req, callback) => callback(null, originAllowed(req, allowed)),
        cors: allowed.length > 0 ? { origin: allowed, credentials: true } : undefined,
      });
      this.io = io;

      io.use((socket, next) => {
        // Caps count this node's sockets, those still in their handshake included: a socket joins
        // its address's and its user's channels in the same tick as the check, and leaves them
        // when it disconnects or its handshake fails (socket.io's cleanup).
        const address = clientAddress(socket.request, trustProxy);
        socket.data.address = address;
        if ((rooms().get(addressRoom(address))?.size ?? 0) >= socketLimit.perAddress) {
          countMetric(this.broker, METRIC.rateLimited, { limit: "socket_cap" });
          return next(
            tooManySockets(`Too many open connections from this address (at most ${socketLimit.perAddress})`),
          );
        }
        void socket.join(addressRoom(address));
        const token: unknown = socket.handshake.auth?.token;
        if (typeof token !== "string" || token.length === 0 || token.length > 4096) {
          return next(new Error("UNAUTHORIZED"));
        }
        this.resolvePrincipal(token)
          .then(async (principal) => {
            socket.data.principal = principal;
            if ((rooms().get(socketRooms.user(principal.id))?.size ?? 0) >= socketLimit.perUser) {
              countMetric(this.broker, METRIC.rateLimited, { limit: "socket_cap" });
              throw tooManySockets(`Too many open connections for this user (at most ${socketLimit.perUser})`);
            }
            await socket.join([socketRooms.user(principal.id), socketRooms.session(principal.sessionId)]);
            // Subscribed before the client hears "connect": a sync it sends at once cannot race a
            // message committed in between.
            await this.prepareSocket?.(socket);
          })
          .then(
            () => next(),
            (err: unknown) => {
              if (err instanceof Error && err.message === "RATE_LIMITED") return next(err);
              const { body, internal } = toErrorBody(err);
              if (internal) this.logger.warn("socket handshake failed", err);
              next(new Error(body.code === "UNAUTHORIZED" ? "UNAUTHORIZED" : "UNAVAILABLE"));
            },
          );
      });

      registerMetrics(this.broker, [METRIC.socketsConnected, METRIC.sendAck, METRIC.rateLimited]);
      const countSockets = () => setMetric(this.broker, METRIC.socketsConnected, io.of("/").sockets.size);
      io.on("connection", (socket: ChatSocket) => {
        countSockets();
        const calls = this.socketCalls();
        socket.data.buckets = new TokenBuckets();
        const eventRate = { perSecond: socketEventLimit.perSecond, burst: socketEventLimit.burst };
        const typingRate = { perSecond: socketEventLimit.typingPerSecond, burst: 2 * socketEventLimit.typingPerSecond };
        /** Each event has its own bucket per socket; a refused event is answered RATE_LIMITED (if it asked). */
        const limited = (event: string, reply: ((res: Ack<unknown>) => void) | undefined): boolean => {
          const known = Object.hasOwn(calls, event);
          const wait = socket.data.buckets.take(known ? event : "*", event === "typing" ? typingRate : eventRate);
          if (wait === 0) return false;
          countMetric(this.broker, METRIC.rateLimited, { limit: "socket_event" });
          const error = AppError.rateLimited(wait, `Too many '${known ? event : "unknown"}' events; slow down`);
          reply?.({ ok: false, error: toErrorBody(error).body });
          return true;
        };
        // An event nobody serves still gets an answer, if the client asked for one.
        socket.onAny((event: string, ...args: unknown[]) => {
          const last = args[args.length - 1];
          if (Object.hasOwn(calls, event)) return;
          const reply = typeof last === "function" ? (last as (res: Ack<unknown>) => void) : undefined;
          if (limited(event, reply)) return;
          if (reply) {
            reply({
              ok: false,
              error: { code: "NOT_FOUND", message: `Unknown event '${event.slice(0, 64)}'` },
            });
          }
        });
        for (const event of Object.keys(calls) as (keyof ClientToServerEvents)[]) {
          const call = calls[event];
          // The ack is whatever function comes last: a client that sends only a callback, or extra
          // arguments before it, still gets its answer (a validation error) instead of a hang.
          socket.on(event, (...args: unknown[]) => {
            const last = args[args.length - 1];
            const reply = typeof last === "function" ? (last as (res: Ack<unknown>) => void) : undefined;
            const payload = reply && args.length === 1 ? undefined : args[0];
            if (limited(event, reply)) return;
            const startedAt = performance.now();
            void handleCall(this.broker, socket, call, payload, reply).then((ok) => {
              if (event === "message:send")
                observeSince(this.broker, METRIC.sendAck, startedAt, { outcome: ok ? "ok" : "error" });
            });
          });
        }
        socket.on("disconnect", (reason) => {
          // socket.io has taken the socket out of the namespace by now.
          countSockets();
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

    /** The same for every socket of a user on this node (all their sessions ended). */
    revokeUserSockets(userId: number) {
      const room = socketRooms.user(userId);
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

/** Validate → act → ack; resolves whether the ack said ok. */
async function handleCall(
  broker: ServiceBroker,
  socket: ChatSocket,
  call: AnySocketCall,
  payload: unknown,
  ack: ((res: Ack<unknown>) => void) | undefined,
): Promise<boolean> {
  const requestId = randomUUID();
  // The call's log lines here and in local handlers name its request and user (src/infra/request-context.ts).
  return inRequest({ requestID: requestId, meta: { user: socket.data.principal } }, () =>
    runCall(broker, socket, call, payload, ack, requestId),
  );
}

async function runCall(
  broker: ServiceBroker,
  socket: ChatSocket,
  call: AnySocketCall,
  payload: unknown,
  ack: ((res: Ack<unknown>) => void) | undefined,
  requestId: string,
): Promise<boolean> {
  try {
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
      throw AppError.validation([{ field: "payload", message: "The payload must be an object." }]);
    }
    // Prototype keys dropped, nesting bounded: the same as for REST bodies.
    sanitizeInput(payload);
    let data: unknown;
    if ("handle" in call) {
      data = await call.handle(socket, payload as Record<string, unknown>, requestId);
    } else {
      call.before?.(socket, payload as Record<string, unknown>);
      const meta: CallMeta = { user: socket.data.principal, requestId };
      data = await broker.call(call.action, payload, {
        meta,
        requestID: requestId,
      });
    }
    ack?.({ ok: true, data: data ?? null });
    return true;
  } catch (err) {
    const { body, internal } = toErrorBody(err, requestId);
    if (internal) broker.logger.error(`socket ${"action" in call ? call.action : "event"} failed [${requestId}]`, err);
    ack?.({ ok: false, error: body });
    return false;
  }
}
