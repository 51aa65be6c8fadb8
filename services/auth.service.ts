import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { config } from "../src/config.js";
import type { ResultOf } from "../src/contracts/actions.js";
import { broadcastEvent } from "../src/contracts/events.js";
import { rules } from "../src/contracts/limits.js";
import type { AuthResult, Principal, TokenPair } from "../src/contracts/objects.js";
import { hashPassword, spendVerifyTime, verifyPassword } from "../src/auth/passwords.js";
import { authMigrations } from "../src/auth/migrations.js";
import { AuthStore, throttleKeys } from "../src/auth/store.js";
import { TokenSigner } from "../src/auth/tokens.js";
import { AppError } from "../src/errors.js";
import { usernameTag } from "../src/auth/audit.js";
import { RefusalSampler } from "../src/log/sampler.js";
import { principalOf } from "../src/infra/permissions.js";
import { sqlMixin } from "../src/infra/sql-mixin.js";
import { outboxMixin, type WithOutbox } from "../src/infra/outbox-mixin.js";
import { countMetric, METRIC, registerMetrics } from "../src/infra/metrics.js";
import type { NewEvent, Trace } from "../src/infra/outbox.js";
import { ownUser, type UserRecord } from "../src/contracts/accounts.js";
import { call, type ActionContext } from "../src/infra/calls.js";

/** The service's own methods (`methods` below), typed for their callers and their bodies. */
interface Methods {
  /** Publishes a refusal's audit event unless its kind is past the sampling rate (counted instead). */
  audit(ctx: Context, kind: string, event: NewEvent): Promise<void>;
  issue(user: UserRecord, sessionId: string, refreshToken: string): Promise<TokenPair>;
}

interface Vars extends WithOutbox {
  store: AuthStore;
  sampler: RefusalSampler;
  signer: TokenSigner;
}

const trace = (ctx: Context): Trace => ({ requestId: ctx.requestID ?? null });

/** The caller's address as the gateway saw it (TRUST_PROXY aware); calls from inside share one. */
const addressOf = (ctx: Context): string => (ctx.meta as { clientAddress?: string }).clientAddress ?? "internal";

const INVALID_LOGIN = "Invalid username or password";

const AuthService: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "auth",
  mixins: [outboxMixin("auth"), sqlMixin("auth", authMigrations)],

  actions: {
    register: {
      params: {
        username: rules.username,
        password: rules.password,
        displayName: { ...rules.displayName, optional: true },
        $$strict: "remove",
      },
      async handler(
        ctx: Context<{
          username: string;
          password: string;
          displayName?: string;
        }>,
      ): Promise<AuthResult> {
        const { username, password, displayName } = ctx.params;
        // Every attempt counts (taken names too): an address cannot mass-create accounts.
        const { perAddress, windowSeconds } = config().registerLimit;
        const key = throttleKeys.registerAddress(addressOf(ctx));
        const { count, retryAfter } = (await this.store.throttleCounts([key], windowSeconds * 1000)).get(key)!;
        if (count >= perAddress) {
          countMetric(this.broker, METRIC.rateLimited, { limit: "register" });
          throw AppError.rateLimited(retryAfter, "Too many registrations; try again later");
        }
        await this.store.count([key], windowSeconds * 1000);
        const passwordHash = await hashPassword(password);
        const user = await call(ctx, "users.create", { username, displayName });
        try {
          await this.store.setPassword(user.id, passwordHash);
          const { sessionId, refreshToken } = await this.store.openSession(user.id, trace(ctx));
          return {
            user: ownUser(user, false),
            ...(await this.issue(user, sessionId, refreshToken)),
          };
        } catch (err) {
          // Do not leave an account nobody can log into.
          await call(ctx, "users.remove", { id: user.id }).catch(() => undefined);
          throw err;
        }
      },
    },

    login: {
      params: {
        username: { type: "string", min: 1, max: 256 },
        password: { type: "string", min: 1, max: 1024 },
        $$strict: "remove",
      },
      async handler(ctx: Context<{ username: string; password: string }>): Promise<AuthResult> {
        const { username, password } = ctx.params;
        const { perAddress, perUserAddress, perUser, windowSeconds } = config().loginLimit;
        const windowMs = windowSeconds * 1000;
        const address = addressOf(ctx);
        const keys = {
          address: throttleKeys.loginAddress(address),
          pair: throttleKeys.loginPair(username, address),
          user: throttleKeys.loginUser(username),
        };
        const counts = await this.store.throttleCounts(Object.values(keys), windowMs);
        const [byAddress, byPair, byUser] = [counts.get(keys.address)!, counts.get(keys.pair)!, counts.get(keys.user)!];
        // Per address: one address trying many usernames (password spraying). Per username from
        // one address: guessing one account. Per username from everywhere: a distributed attack —
        // but an address that has not failed for this username yet still gets its try, so nobody
        // can lock the owner out by failing on purpose (OWASP's advice).
        const wait =
          byAddress.count >= perAddress
            ? byAddress.retryAfter
            : byPair.count >= perUserAddress
              ? byPair.retryAfter
              : byUser.count >= perUser && byPair.count > 0
                ? byUser.retryAfter
                : 0;
        const hash = usernameTag(config().jwtSecret, username);
        if (wait > 0) {
          countMetric(this.broker, METRIC.loginThrottled);
          const known = await call(ctx, "users.findByUsername", { username });
          await this.audit(ctx, "throttled", {
            type: "auth.throttled",
            requestId: ctx.requestID ?? null,
            data: { username: known?.username ?? null, usernameTag: hash, retryAfter: wait },
          });
          throw AppError.rateLimited(wait, "Too many failed logins; try again later");
        }

        const user = await call(ctx, "users.findByUsername", { username });
        const passwordHash = user ? await this.store.passwordHash(user.id) : undefined;
        const ok =
          user && passwordHash ? await verifyPassword(passwordHash, password) : await spendVerifyTime(password);
        if (!user || !ok) {
          await this.store.count(Object.values(keys), windowMs);
          const reason = user ? "bad_password" : "unknown_user";
          countMetric(this.broker, METRIC.loginFailures, { reason });
          // An unknown name is whatever was typed: only its keyed hash is kept.
          await this.audit(ctx, reason, {
            type: "auth.login_failed",
            requestId: ctx.requestID ?? null,
            data: { username: user?.username ?? null, usernameTag: hash, reason, userId: user?.id ?? null },
          });
          throw AppError.unauthorized(INVALID_LOGIN);
        }
        await this.store.clearCounts([keys.pair, keys.user]);
        const { sessionId, refreshToken } = await this.store.openSession(user.id, trace(ctx));
        return {
          user: ownUser(user, false),
          ...(await this.issue(user, sessionId, refreshToken)),
        };
      },
    },

    refresh: {
      params: {
        refreshToken: { type: "string", min: 1, max: 512 },
        $$strict: "remove",
      },
      async handler(ctx: Context<{ refreshToken: string }>): Promise<TokenPair> {
        const outcome = await this.store.rotate(ctx.params.refreshToken, trace(ctx));
        if (outcome.kind === "reused") {
          await broadcastEvent(ctx, "auth.session.revoked", {
            sessionId: outcome.sessionId,
            userId: outcome.userId,
            reason: "reuse",
          });
        }
        if (outcome.kind !== "rotated") throw AppError.unauthorized("Invalid refresh token");
        const user = await call(ctx, "users.getRecord", { id: outcome.userId });
        if (!user) throw AppError.unauthorized("Invalid refresh token");
        return this.issue(user, outcome.sessionId, outcome.refreshToken);
      },
    },

    logout: {
      auth: "required",
      params: {},
      async handler(ctx: Context): Promise<void> {
        const principal = principalOf(ctx);
        await this.store.revokeSession(principal.sessionId, trace(ctx));
        await broadcastEvent(ctx, "auth.session.revoked", {
          sessionId: principal.sessionId,
          userId: principal.id,
          reason: "logout",
        });
      },
    },

    /** Internal: the gateway's token check (cached there), for REST and the socket handshake. */
    resolveToken: {
      visibility: "public",
      params: { token: { type: "string", min: 1, max: 4096 } },
      async handler(ctx: ActionContext<"auth.resolveToken">): Promise<ResultOf<"auth.resolveToken">> {
        const refuse = async (reason: string, userId: number | null): Promise<never> => {
          await this.audit(ctx, reason, {
            type: "auth.token_refused",
            requestId: ctx.requestID ?? null,
            data: { reason, userId },
          });
          throw AppError.unauthorized(reason === "session_ended" ? "Session has ended" : "Invalid or expired token");
        };
        const claims = await this.signer.verify(ctx.params.token).catch(() => refuse("invalid_token", null));
        if (!(await this.store.sessionActive(claims.principal.sessionId))) {
          return refuse("session_ended", claims.principal.id);
        }
        return claims;
      },
    },

    /**
     * Internal: which of these sessions have ended. Gateways ask every few seconds for the sessions
     * of their open sockets, so a revocation whose broadcast was missed still disconnects them.
     */
    inactiveSessions: {
      visibility: "public",
      params: { sessionIds: { type: "array", items: { type: "string", max: 64 }, max: 1000 } },
      async handler(ctx: ActionContext<"auth.inactiveSessions">): Promise<ResultOf<"auth.inactiveSessions">> {
        return { inactive: await this.store.inactiveSessions(ctx.params.sessionIds) };
      },
    },

    // ---- operator only (src/operator/commands.ts), never on REST or sockets ----

    /** A user's active sessions, newest first. */
    sessionsOf: {
      idempotent: true,
      visibility: "public",
      roles: ["operator"],
      params: { userId: rules.id, limit: rules.limit(1000), $$strict: "remove" },
      async handler(ctx: ActionContext<"auth.sessionsOf">): Promise<ResultOf<"auth.sessionsOf">> {
        return { sessions: await this.store.activeSessions(ctx.params.userId, ctx.params.limit ?? 100) };
      },
    },

    /** Ends every session of a user: their refresh tokens stop working and every gateway drops their sockets. */
    revokeUserSessions: {
      visibility: "public",
      roles: ["operator"],
      params: { userId: rules.id, $$strict: "remove" },
      async handler(ctx: ActionContext<"auth.revokeUserSessions">): Promise<ResultOf<"auth.revokeUserSessions">> {
        const revoked = await this.store.revokeUserSessions(ctx.params.userId, trace(ctx));
        // Also with no active session left: sockets of sessions that just expired go too.
        await broadcastEvent(ctx, "auth.user.sessions_revoked", { userId: ctx.params.userId, reason: "operator" });
        return { revoked };
      },
    },
  },

  methods: {
    async audit(_ctx: Context, kind: string, event: NewEvent) {
      if (this.sampler.admit(event.type, kind)) await this.publish([event]);
    },

    async issue(user: UserRecord, sessionId: string, refreshToken: string): Promise<TokenPair> {
      const principal: Principal = {
        id: user.id,
        username: user.username,
        roles: user.roles,
        sessionId,
      };
      return {
        accessToken: await this.signer.sign(principal),
        refreshToken,
        expiresIn: this.signer.accessTtlSeconds,
      };
    },
  },

  created() {
    const c = config();
    this.signer = new TokenSigner(c.jwtSecret, c.accessTokenTtlSeconds);
  },

  async started() {
    this.sampler = new RefusalSampler(config().auditRefusalsPerMinute, (events) => {
      this.publish(events).catch((err: unknown) =>
        this.logger.warn("could not record suppressed refusals", (err as Error).message),
      );
    });
    this.sampler.start();
    this.store = new AuthStore(this.db, this.outbox, config().refreshTokenTtlDays * 24 * 3600 * 1000);
    registerMetrics(this.broker, [METRIC.loginThrottled, METRIC.loginFailures, METRIC.rateLimited]);
  },

  stopped() {
    this.sampler?.stop();
  },
};

export default AuthService;
