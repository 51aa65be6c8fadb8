import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway, { type ApiSettingsSchema } from "moleculer-web";
import { ALL_SERVICES, config, PROJECT_ROOT } from "../src/config.js";
import { LIMITS, SEND_BATCH_MAX } from "../src/contracts/limits.js";
import type { Message, Principal } from "../src/contracts/objects.js";
import type { ParamsOf } from "../src/contracts/actions.js";
import { AppError, DATABASE_RETRY_AFTER_S, toErrorBody } from "../src/errors.js";
import type { CallMeta, GuardedAction } from "../src/infra/permissions.js";
import {
  healthOf,
  notReadyReasons,
  READY_CALL_TIMEOUT_MS,
  READY_PROBED,
  type Health,
  type Liveness,
  type Readiness,
} from "../src/gateway/health.js";
import { loadOpenApi, OPENAPI_CACHE_CONTROL, type OpenApiDocument } from "../src/gateway/openapi.js";
import { aliasesOf, REST_ROUTES, routeOf } from "../src/gateway/routes.js";
import { SocketMixin, type ChatSocket, type SocketCalls, type SocketHost } from "../src/gateway/socket-mixin.js";
import { TokenCache } from "../src/gateway/token-cache.js";
import { AccessLog, type AccessRequest } from "../src/gateway/access-log.js";
import { addSecurityHeaders, setSecurityHeaders, staticCacheHeaders } from "../src/gateway/security-headers.js";
import { outboxMigration } from "../src/infra/outbox.js";
import { outboxMixin, type WithOutbox } from "../src/infra/outbox-mixin.js";
import { countMetric, METRIC, observeSeconds, registerMetrics, setMetric } from "../src/infra/metrics.js";
import { sqlMixin } from "../src/infra/sql-mixin.js";
import { SendRateLimiter } from "../src/gateway/rate-limit.js";
import { sanitizeRequest } from "../src/gateway/sanitize.js";
import { clientAddress } from "../src/gateway/client-address.js";
import { restRootCallOptions } from "../src/gateway/request-id.js";
import { inRequest } from "../src/infra/request-context.js";
import { TypingTracker } from "../src/gateway/typing.js";
import { RoomSequencer } from "../src/gateway/room-sequencer.js";
import { RefusalSampler } from "../src/log/sampler.js";
import { socketRooms } from "../src/contracts/socket.js";
import { broadcastEvent, onBus } from "../src/contracts/events.js";
import { call } from "../src/infra/calls.js";
import { GroupCommit } from "../src/infra/group-commit.js";

type BatchedSend = ParamsOf<"chat.sendBatch">["sends"][number];

type GatewayRequest = IncomingMessage & {
  $ctx?: Context<unknown, CallMeta & { $statusCode?: number }>;
  $action?: GuardedAction;
  $alias?: { method: string; path: string };
};

/** The service's own methods (`methods` below), typed for their callers and their bodies. */
interface Methods {
  sendError(req: IncomingMessage, res: ServerResponse, err: unknown): void;
  warnUnavailable(line: string): void;
  checkSendRate(userId: number): void;
  countInstances(): void;
  checkSocketSessions(): Promise<void>;
}

interface Vars extends SocketHost, WithOutbox {
  unavailableLog: { since: number; more: number };
  tokens: TokenCache;
  accessLog: AccessLog;
  refusals: RefusalSampler;
  sendLimiter: SendRateLimiter;
  /** Socket sends, one `chat.sendBatch` call per tick. */
  sends: GroupCommit<BatchedSend, Message>;
  typing: TypingTracker;
  sweepTimer: NodeJS.Timeout;
  /** Emits live messages in seq order per room. */
  sequencer: RoomSequencer;
  sessionCheck: NodeJS.Timeout;
  instancesTimer: NodeJS.Timeout | undefined;
  /** docs/openapi.json, read at creation; undefined when it could not be read (404). */
  openapi: OpenApiDocument | undefined;
}

/** How often open sockets' sessions are re-checked (the safety net under revocation broadcasts). */
const SESSION_CHECK_MS = 1_500;

/** Longer than any access token we issue: refused at once. */
const MAX_TOKEN_CHARS = 4096;

const JSON_BODY = /^application\/(.+\+)?json\b/i;

/** A request's path without its query string. */
const restPath = (req: IncomingMessage & { originalUrl?: string }): string =>
  (req.originalUrl ?? req.url ?? "").split("?")[0].slice(0, 200);

/** The built browser UI (scripts/build-ui.mjs): index.html, sw.js and the hashed assets/. */
const PUBLIC_DIR = path.join(PROJECT_ROOT, "public");

const ApiService: ServiceSchema<ApiSettingsSchema, Methods, Vars> = {
  name: "api",
  // The last mixin starts first and stops last: socket.io must close before the HTTP server waits on it.
  // Its SQL database holds only its outbox: audit records wait there until the log has them.
  mixins: [outboxMixin("api"), sqlMixin("api", [outboxMigration("api")]), SocketMixin, ApiGateway],

  settings: {
    port: config().port,
    ip: config().host,
    routes: [
      {
        path: "/api",
        aliases: aliasesOf(REST_ROUTES),
        mappingPolicy: "restrict",
        authentication: true,
        authorization: true,
        bodyParsers: {
          // Every type the content-type check below lets through is parsed (`application/*+json` too).
          json: { strict: true, limit: LIMITS.requestBytes, type: ["application/json", "application/*+json"] },
          urlencoded: false,
        },
        // After the body parsers: prototype keys dropped, nesting bounded (src/gateway/sanitize.ts).
        use: [sanitizeRequest],
        callOptions: { timeout: config().requestTimeoutMs },

        onBeforeCall(ctx: Context<unknown, CallMeta>, _route: unknown, req: GatewayRequest) {
          const length = Number(req.headers["content-length"] ?? 0);
          const hasBody = length > 0 || req.headers["transfer-encoding"] !== undefined;
          if (hasBody && !JSON_BODY.test(req.headers["content-type"] ?? "")) {
            throw AppError.badRequest("Request bodies must be JSON (Content-Type: application/json)");
          }
          ctx.meta.requestId = ctx.requestID ?? undefined;
          // auth's per-address login and registration limits count this (TRUST_PROXY aware).
          (ctx.meta as { clientAddress?: string }).clientAddress = clientAddress(req, config().trustProxy);
        },

        onAfterCall(
          ctx: Context<unknown, { $statusCode?: number; $location?: string }>,
          _route: unknown,
          req: GatewayRequest,
          _res: ServerResponse,
          data: unknown,
        ) {
          const route = req.$alias && routeOf(req.$alias.method, req.$alias.path);
          ctx.meta.$statusCode ??= route?.status;
          if (ctx.meta.$statusCode === 201 && route?.location) ctx.meta.$location ??= route.location(data as never);
          return ctx.meta.$statusCode === 204 ? null : data;
        },
      },
    ],
    // moleculer-web hands `options` to serve-static as they are.
    assets: { folder: PUBLIC_DIR, options: { setHeaders: staticCacheHeaders(PUBLIC_DIR) } },
    log4XXResponses: false,
    logRequest: "debug",
    logResponse: "debug",
    // moleculer-web logs request params at debug by default: passwords and tokens, never.
    logRequestParams: null,
    // The REST call's request id: the caller's X-Request-ID if sane, else a new one (src/gateway/request-id.ts).
    rootCallOptions: restRootCallOptions as unknown as ApiSettingsSchema["rootCallOptions"],

    onError(this: Vars & Methods, req: GatewayRequest, res: ServerResponse, err: unknown) {
      const requestId = req.$ctx?.requestID ?? undefined;
      const { status, body, internal } = toErrorBody(err, requestId);
      const log = (): void => {
        if (internal) this.logger.error(`request ${req.method} ${req.url} failed [${requestId}]`, err);
        else if (status === 503)
          this.warnUnavailable(`request ${req.method} ${req.url}: ${body.message} [${requestId}]`);
      };
      // Past the REST action's own scope by now: its lines name the request again.
      if (req.$ctx) inRequest(req.$ctx, log);
      else log();
      if (res.headersSent) return void res.end();
      if (body.retryAfter !== undefined) res.setHeader("Retry-After", String(body.retryAfter));
      if (requestId) res.setHeader("X-Request-ID", requestId);
      res.setHeader("Content-Type", "application/json; charset=utf-8");
      res.writeHead(status);
      res.end(JSON.stringify({ error: body }));
    },
  },

  actions: {
    // A retry re-runs the whole HTTP handler on a request moleculer-web has already consumed
    // (its URL rewritten), which answers 404; the calls it makes are retried on their own.
    rest: {
      retryPolicy: { enabled: false },
      // Its span (TRACING) names the method and path, never the query string (moleculer-web's
      // default tags and name carry the whole URL).
      tracing: {
        spanName: (ctx: Context) => {
          const { req } = ctx.params as { req: GatewayRequest };
          return `${req.method} ${restPath(req)}`;
        },
        tags: (ctx: Context) => {
          const { req } = ctx.params as { req: GatewayRequest };
          return { method: req.method, path: restPath(req), userId: (ctx.meta as CallMeta).user?.id ?? null };
        },
      },
    },

    health: {
      params: {},
      handler(ctx: Context<unknown, CallMeta & { $statusCode?: number }>): Health {
        const health = healthOf(this.broker.registry, ALL_SERVICES);
        if (health.status !== "ok") ctx.meta.$statusCode = 503;
        // Node ids and their services are for admins (or everyone with HEALTH_DETAILS=public).
        const details = config().healthDetails === "public" || ctx.meta.user?.roles.includes("admin");
        if (!details) delete health.nodes;
        return health;
      },
    },

    /** For load balancers and systemd: the process answers. */
    healthLive: {
      params: {},
      handler(): Liveness {
        return { status: "ok" };
      },
    },

    /**
     * For load balancers: 200 while every required service is available and the databases this
     * gateway needs answer (each service's `ready`, src/infra/sql-mixin.ts), else 503 UNAVAILABLE
     * naming the reasons, with Retry-After.
     */
    healthReady: {
      params: {},
      retryPolicy: { enabled: false },
      async handler(ctx: Context): Promise<Readiness> {
        const health = healthOf(this.broker.registry, ALL_SERVICES);
        const { reasons, checked } = await notReadyReasons(health, READY_PROBED, (service) =>
          ctx.call(
            `${service}.ready`,
            {},
            {
              timeout: READY_CALL_TIMEOUT_MS,
              retries: 0,
              // Its own database through its own service, not another gateway's.
              ...(service === this.name ? { nodeID: this.broker.nodeID } : {}),
            },
          ),
        );
        if (reasons.length > 0) {
          throw AppError.unavailable(`Not ready: ${reasons.join("; ")}`, DATABASE_RETRY_AFTER_S);
        }
        return { status: "ok", checked };
      },
    },

    /** docs/openapi.json, public; cacheable, revalidated with its ETag (304). */
    openapi: {
      params: {},
      handler(ctx: Context<unknown, { $responseType?: string; $responseHeaders?: Record<string, string> }>): string {
        if (!this.openapi) throw AppError.notFound("The OpenAPI document");
        ctx.meta.$responseType = "application/json; charset=utf-8";
        ctx.meta.$responseHeaders = { "Cache-Control": OPENAPI_CACHE_CONTROL, ETag: this.openapi.etag };
        return this.openapi.body;
      },
    },
  },

  events: onBus<Vars>({
    /** Broadcast by auth, so every gateway node hears it. */
    "auth.session.revoked"(ctx) {
      this.tokens.dropSession(ctx.params.sessionId);
      this.revokeSessionSockets(ctx.params.sessionId);
    },
    "auth.user.sessions_revoked"(ctx) {
      this.tokens.dropUser(ctx.params.userId);
      this.revokeUserSockets(ctx.params.userId);
    },

    // Fan-out: chat broadcasts after commit; each gateway emits to its own sockets only.
    "chat.messages.created"(ctx) {
      const { messages, committedAt } = ctx.params;
      for (const message of messages) this.sequencer.push(message);
      // One observation per message, as the histogram is documented.
      if (committedAt !== undefined) {
        const seconds = (Date.now() - committedAt) / 1000;
        for (let i = 0; i < messages.length; i++) observeSeconds(this.broker, METRIC.fanout, seconds);
      }
    },
    "chat.message.updated"(ctx) {
      const { message } = ctx.params;
      this.io.to(socketRooms.room(message.roomId)).emit("message:updated", message);
    },
    "chat.message.deleted"(ctx) {
      const { id, roomId, seq } = ctx.params;
      this.io.to(socketRooms.room(roomId)).emit("message:deleted", { id, roomId, seq });
    },
    "chat.room.updated"(ctx) {
      this.io.to(socketRooms.room(ctx.params.room.id)).emit("room:updated", ctx.params.room);
    },
    "chat.member.changed"(ctx) {
      const { roomId, userId, action } = ctx.params;
      const room = socketRooms.room(roomId);
      const user = socketRooms.user(userId);
      const change = { roomId, userId, action };
      if (action === "joined" || action === "invited") {
        this.io.in(user).socketsJoin(room);
        this.io.to(room).emit("room:member", change);
      } else {
        // Tell the room and the user, then stop the user's sockets receiving the room at once.
        this.io.to(room).to(user).emit("room:member", change);
        this.io.in(user).socketsLeave(room);
      }
    },
    "unread.changed"(ctx) {
      const { userId, ...state } = ctx.params;
      this.io.to(socketRooms.user(userId)).emit("unread", state);
    },
    "notify.created"(ctx) {
      this.io.to(socketRooms.user(ctx.params.userId)).emit("notification", ctx.params.notification);
    },
    "users.presence.changed"(ctx) {
      const { userId, status, lastSeenAt, roomIds } = ctx.params;
      if (roomIds.length > 0)
        this.io.to(roomIds.map(socketRooms.room)).emit("presence", { userId, status, lastSeenAt });
    },
    "chat.typing"(ctx) {
      const { roomId, userId, typing } = ctx.params;
      this.io.to(socketRooms.room(roomId)).except(socketRooms.user(userId)).emit("typing", { roomId, userId, typing });
    },
  }),

  methods: {
    /** moleculer-web's hook: our onError logs (internal errors with their stack, server-side only). */
    errorHandler(req: IncomingMessage, res: ServerResponse, err: unknown) {
      this.sendError(req, res, err);
    },

    /** Shared by REST and the socket handshake; one bus call per token every few seconds at most. */
    async resolvePrincipal(token: string, requestId?: string | null): Promise<Principal> {
      // No token we issue is that long; auth's own check would name its internal field (422).
      if (token.length > MAX_TOKEN_CHARS) throw AppError.unauthorized("Invalid or expired token");
      const cached = this.tokens.get(token);
      if (cached) return cached;
      // With the request's id, so a refusal in the audit log goes with the request's access record.
      const resolved = await call(this.broker, "auth.resolveToken", { token }, { requestID: requestId ?? undefined });
      this.tokens.set(token, resolved.principal, resolved.expiresAt);
      return resolved.principal;
    },

    async authenticate(ctx: Context, _route: unknown, req: GatewayRequest): Promise<Principal | null> {
      const header = req.headers.authorization;
      if (!header) return null;
      const action = req.$action ?? {};
      // Public routes (login, refresh, register, health) serve anyone: a stale or foreign
      // Authorization header there only means the caller is anonymous.
      const guarded = action.auth === "required" || (action.roles?.length ?? 0) > 0;
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      if (!match) {
        if (!guarded) return null;
        throw AppError.unauthorized("Malformed Authorization header");
      }
      if (!guarded) return this.resolvePrincipal(match[1], ctx.requestID).catch(() => null);
      return this.resolvePrincipal(match[1], ctx.requestID);
    },

    /** Fast path of the permission middleware, which checks again where the action runs. */
    authorize(_ctx: Context, _route: unknown, req: GatewayRequest): void {
      const action = req.$action ?? {};
      const user = req.$ctx?.meta.user;
      if ((action.auth === "required" || action.roles?.length) && !user) throw AppError.unauthorized();
      if (action.roles?.some((role) => !user?.roles.includes(role))) throw AppError.forbidden();
      // Runs after authentication (onBeforeCall runs before it): the caller is known here.
      const route = req.$alias && routeOf(req.$alias.method, req.$alias.path);
      if (route?.sendLimited && user) this.checkSendRate(user.id);
    },

    /** Disconnects this node's sockets whose session has ended, whether or not its broadcast arrived. */
    async checkSocketSessions() {
      const sessions = new Set<string>();
      for (const socket of this.io.of("/").sockets.values()) sessions.add(socket.data.principal.sessionId);
      const ids = [...sessions];
      for (let i = 0; i < ids.length; i += 1000) {
        const { inactive } = await call(this.broker, "auth.inactiveSessions", { sessionIds: ids.slice(i, i + 1000) });
        for (const sessionId of inactive) {
          this.tokens.dropSession(sessionId);
          this.revokeSessionSockets(sessionId);
        }
      }
    },

    /**
     * 503s are expected while a service or its database is down: one line per 10 s, with a count of
     * the others, instead of one per request (the services log the outage itself once).
     */
    warnUnavailable(line: string) {
      const now = Date.now();
      const log = this.unavailableLog;
      if (now - log.since < 10_000) {
        log.more += 1;
        return;
      }
      const more = log.more > 0 ? ` (and ${log.more} more answered UNAVAILABLE in the previous 10 s)` : "";
      this.logger.warn(line + more);
      this.unavailableLog = { since: now, more: 0 };
    },

    /** The gauge nochat_service_instances{service} from the registry (in memory, no call). */
    countInstances() {
      const { nodes = [] } = healthOf(this.broker.registry, ALL_SERVICES);
      for (const service of ALL_SERVICES) {
        const n = nodes.filter((node) => node.services.includes(service)).length;
        setMetric(this.broker, METRIC.serviceInstances, n, { service });
      }
    },

    /** The per-user send limit, shared by `message:send` and `POST …/messages`. */
    checkSendRate(userId: number) {
      const wait = this.sendLimiter.take(userId);
      if (wait === 0) return;
      countMetric(this.broker, METRIC.rateLimited, { limit: "send" });
      throw AppError.rateLimited(wait, "Too many messages; slow down");
    },

    socketCalls(): SocketCalls {
      return {
        // Coalesced: this tick's sends of every socket go to chat as one bus call.
        "message:send": {
          handle: (socket, payload, requestId) => {
            this.checkSendRate(socket.data.principal.id);
            return this.sends.submit({ userId: socket.data.principal.id, requestId, payload });
          },
        },
        "message:edit": { action: "chat.edit" },
        "message:delete": { action: "chat.delete" },
        "reaction:toggle": { action: "chat.react" },
        "room:read": { action: "chat.markRead" },
        sync: {
          action: "chat.sync",
          // Bounds one call's work: at most SYNC_MAX_ROOMS rooms (each up to 200 messages).
          before: (_socket, payload) => {
            const rooms = (payload as { rooms?: unknown }).rooms;
            const max = config().syncMaxRooms;
            if (rooms && typeof rooms === "object" && Object.keys(rooms).length > max) {
              throw AppError.validation([
                { field: "rooms", message: `At most ${max} rooms per sync; ask for the others in another call.` },
              ]);
            }
          },
        },
        typing: {
          handle: (socket, payload) => {
            const { roomId, typing } = payload;
            if (typeof roomId !== "number" || !Number.isInteger(roomId) || roomId <= 0) {
              throw AppError.validation([
                {
                  field: "roomId",
                  message: "The 'roomId' field must be a positive integer.",
                },
              ]);
            }
            if (typeof typing !== "boolean") {
              throw AppError.validation([
                {
                  field: "typing",
                  message: "The 'typing' field must be a boolean.",
                },
              ]);
            }
            // The socket is in the room's channel only while its user is a member.
            if (!socket.rooms.has(socketRooms.room(roomId))) throw AppError.forbidden("Not a member of this room");
            this.typing.set(roomId, socket.data.principal.id, typing);
            return null;
          },
        },
      };
    },

    /**
     * Joins the socket to its rooms during the handshake. The list is read twice — before and after
     * joining — and rooms missing from the second read are left again: a kick that committed in
     * between found this socket already in its user room but not yet in the room it was kicked from.
     */
    async prepareSocket(socket: ChatSocket) {
      const { principal } = socket.data;
      const roomIdsOf = () => call(this.broker, "chat.roomIdsOf", { userId: principal.id });
      const first = await roomIdsOf();
      await socket.join(first.map(socketRooms.room));
      const now = new Set(await roomIdsOf());
      for (const roomId of first) if (!now.has(roomId)) await socket.leave(socketRooms.room(roomId));
    },

    async onSocketConnected(socket: ChatSocket) {
      const { principal } = socket.data;
      const meta: CallMeta = { user: principal };
      this.accessLog.add({
        type: "socket.connected",
        at: Date.now(),
        requestId: null,
        data: { userId: principal.id, socketId: socket.id },
      });
      await call(this.broker, "users.connected", { socketId: socket.id, nodeId: this.broker.nodeID }, { meta });
    },

    async onSocketDisconnected(socket: ChatSocket, reason: string) {
      const { principal } = socket.data;
      this.accessLog.add({
        type: "socket.disconnected",
        at: Date.now(),
        requestId: null,
        data: { userId: principal.id, socketId: socket.id, reason },
      });
      const stillHere = (await this.io.in(socketRooms.user(principal.id)).fetchSockets()).length > 0;
      if (!stillHere) this.typing.clearUser(principal.id);
      const meta: CallMeta = { user: principal };
      await call(this.broker, "users.disconnected", { socketId: socket.id, nodeId: this.broker.nodeID }, { meta });
    },
  },

  created() {
    try {
      this.openapi = loadOpenApi();
    } catch (err) {
      // A missing document must not keep the chat down: GET /api/openapi.json answers 404.
      this.openapi = undefined;
      this.logger.error(`GET /api/openapi.json will answer 404: ${(err as Error).message}`);
    }
    this.tokens = new TokenCache(2_000);
    this.unavailableLog = { since: 0, more: 0 };
    this.accessLog = new AccessLog(
      async (events) => {
        await this.publish(events);
      },
      undefined,
      // Its summaries (audit.suppressed) go the same buffered way as the records.
      (this.refusals = new RefusalSampler(config().auditRefusalsPerMinute, (events) => {
        for (const event of events) this.accessLog.add({ ...event, at: Date.now() });
      })),
      (count) => this.logger.warn(`access log: ${count} records dropped while the outbox was unreachable`),
    );
    this.server.prependListener("request", (req, res) => this.accessLog.observe(req as AccessRequest, res));
    // Before anything answers; socket.io's requests get theirs in started() (it takes them over).
    this.server.prependListener("request", (_req, res) => setSecurityHeaders(res));
    this.sendLimiter = new SendRateLimiter(config().sendLimit);
    this.sequencer = new RoomSequencer((message) =>
      this.io.to(socketRooms.room(message.roomId)).emit("message:new", message),
    );
    this.sends = new GroupCommit(
      async (sends) => {
        const { results } = await call(this.broker, "chat.sendBatch", { sends });
        return results.map((r) =>
          r.ok
            ? { ok: true, value: r.message }
            : { ok: false, error: new AppError(r.error.code, r.error.message, r.error) },
        );
      },
      // Calls in flight are chat's to queue (its own group commit); the gateway never waits for one.
      { maxBatch: SEND_BATCH_MAX, maxInFlight: Number.POSITIVE_INFINITY },
    );
    this.typing = new TypingTracker((roomId, userId, typing) => {
      void broadcastEvent(this.broker, "chat.typing", {
        roomId,
        userId,
        typing,
      });
    });
  },

  started() {
    // Runs after the mixins' started(): socket.io is attached.
    this.io.engine.on("initial_headers", addSecurityHeaders);
    this.io.engine.on("headers", addSecurityHeaders);
    this.accessLog.start();
    this.refusals.start();
    if (registerMetrics(this.broker, [METRIC.fanout, METRIC.serviceInstances])) {
      this.countInstances();
      this.instancesTimer = setInterval(() => this.countInstances(), 5_000);
      this.instancesTimer.unref();
    }
    this.sweepTimer = setInterval(() => {
      this.sendLimiter.sweep();
      this.sequencer.sweep(10 * 60_000);
    }, 60_000);
    this.sweepTimer.unref();
    this.sessionCheck = setInterval(() => {
      this.checkSocketSessions().catch((err: unknown) =>
        this.logger.debug("socket session check failed; will retry", (err as Error).message),
      );
    }, SESSION_CHECK_MS);
    this.sessionCheck.unref();
  },

  async stopped() {
    clearInterval(this.sweepTimer);
    this.sequencer.flush();
    clearInterval(this.sessionCheck);
    clearInterval(this.instancesTimer);
    this.typing.stop();
    this.refusals.stop();
    await this.accessLog.stop();
  },
};

export default ApiService;
