import type { Context, ServiceBroker, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { config } from "../src/config.js";
import type { ResultOf } from "../src/contracts/actions.js";
import type { User, UserStatus } from "../src/contracts/objects.js";
import { LIMITS, rules } from "../src/contracts/limits.js";
import { AppError } from "../src/errors.js";
import { noteDatabaseError } from "../src/infra/database-outage.js";
import { isOperator, principalOf } from "../src/infra/permissions.js";
import { sqlMixin } from "../src/infra/sql-mixin.js";
import { outboxMixin, type WithOutbox } from "../src/infra/outbox-mixin.js";
import { METRIC, registerMetrics, setMetric } from "../src/infra/metrics.js";
import { usersMigrations } from "../src/users/migrations.js";
import { applyAdminList, setAdmin } from "../src/users/admins.js";
import { ownUser, publicUser, type UserRecord } from "../src/contracts/accounts.js";
import { UserStore } from "../src/users/store.js";
import { PRESENCE_GRACE_MS, PresenceStore } from "../src/users/presence.js";
import { broadcastEvent } from "../src/contracts/events.js";
import { call, type ActionContext } from "../src/infra/calls.js";

/** The service's own methods (`methods` below), typed for their callers and their bodies. */
interface Methods {
  announce(ctx: Context | ServiceBroker, userId: number): Promise<void>;
  settleOffline(userId: number): Promise<void>;
  sweepPresence(): Promise<void>;
  /** The usernames that are admins by configuration. */
  adminList(): string[];
}

/** `settings.admins` (tests) or else NOCHAT_ADMINS. */
interface Settings extends ServiceSettingSchema {
  admins?: string[];
}

interface Vars extends WithOutbox {
  store: UserStore;
  presence: PresenceStore;
  graceTimers: Map<number, NodeJS.Timeout>;
  sweepTimer: NodeJS.Timeout;
  onlineTimer: NodeJS.Timeout | undefined;
  startedAt: number;
}

/** How often a users instance counts online users for the gauge (when metrics are on). */
const ONLINE_COUNT_MS = 5_000;

const connectionParams = { socketId: { type: "string", max: 64 }, nodeId: { type: "string", max: 128 } } as const;

async function mustGet(store: UserStore, id: number): Promise<UserRecord> {
  const user = await store.get(id);
  if (!user) throw AppError.notFound("User");
  return user;
}

const UsersService: ServiceSchema<Settings, Methods, Vars> = {
  name: "users",
  mixins: [outboxMixin("users"), sqlMixin("users", usersMigrations)],

  actions: {
    /** Internal: called by auth at registration. */
    create: {
      visibility: "public",
      params: {
        username: rules.username,
        displayName: { ...rules.displayName, optional: true },
      },
      async handler(ctx: ActionContext<"users.create">): Promise<ResultOf<"users.create">> {
        const { username } = ctx.params;
        // Never admin: NOCHAT_ADMINS applies at start to accounts that exist, setAdmin afterwards.
        const user = await this.store.create(
          { username, displayName: ctx.params.displayName ?? username, roles: [] },
          { requestId: ctx.requestID ?? null },
        );
        return user;
      },
    },

    /**
     * Admins and the operator (REPL: `admin grant <name>`); not published on REST. Grants or revokes
     * admin for an existing account.
     */
    setAdmin: {
      visibility: "public",
      roles: ["admin"],
      params: {
        id: { ...rules.id, optional: true },
        username: { type: "string", min: 1, max: 32, optional: true },
        admin: { type: "boolean" },
        $$strict: "remove",
      },
      async handler(ctx: ActionContext<"users.setAdmin">): Promise<ResultOf<"users.setAdmin">> {
        const caller = principalOf(ctx);
        const { id, username, admin } = ctx.params;
        if ((id === undefined) === (username === undefined)) {
          throw AppError.validation([{ field: "id", message: "Give exactly one of 'id' and 'username'." }]);
        }
        const by = isOperator(caller) ? "operator" : `user:${caller.id}`;
        const result = await setAdmin(
          this.db,
          this.outbox,
          { id, username },
          admin,
          { requestId: ctx.requestID ?? null },
          by,
        );
        if (!result) throw AppError.notFound("User");
        const listed = this.adminList().includes(result.username);
        if (!admin && listed) {
          this.logger.warn(`${result.username} is in NOCHAT_ADMINS: the next start makes them admin again`);
        }
        this.logger.info(`admin ${admin ? "granted to" : "revoked from"} ${result.username} by ${by}`);
        return result;
      },
    },

    /** Internal: the account behind a login, or null. */
    findByUsername: {
      visibility: "public",
      params: { username: { type: "string", max: 256 } },
      async handler(ctx: ActionContext<"users.findByUsername">): Promise<ResultOf<"users.findByUsername">> {
        return (await this.store.getByUsername(ctx.params.username)) ?? null;
      },
    },

    /** Internal: one account with its roles (auth, when it issues tokens). */
    getRecord: {
      visibility: "public",
      params: { id: rules.id },
      async handler(ctx: ActionContext<"users.getRecord">): Promise<ResultOf<"users.getRecord">> {
        return (await this.store.get(ctx.params.id)) ?? null;
      },
    },

    /** Internal: the accounts behind `@name` mentions (unknown names are left out). */
    findManyByUsername: {
      visibility: "public",
      params: { usernames: { type: "array", items: { type: "string", max: 64 }, max: 100 } },
      async handler(ctx: ActionContext<"users.findManyByUsername">): Promise<ResultOf<"users.findManyByUsername">> {
        const users = await this.store.getManyByUsername(ctx.params.usernames);
        return users.map((u) => ({ id: u.id, username: u.username }));
      },
    },

    /** Internal: users by id for other services (e.g. room members), in one query. */
    getMany: {
      idempotent: true,
      visibility: "public",
      params: { ids: { type: "array", items: rules.id, max: 1000 } },
      async handler(ctx: ActionContext<"users.getMany">): Promise<ResultOf<"users.getMany">> {
        return (await this.store.getMany(ctx.params.ids)).map((u) => publicUser(u));
      },
    },

    /** Internal: removes an account whose registration could not be completed. */
    remove: {
      visibility: "public",
      params: { id: rules.id },
      async handler(ctx: ActionContext<"users.remove">): Promise<ResultOf<"users.remove">> {
        await this.store.remove(ctx.params.id);
      },
    },

    /** Internal, from the gateway: a socket of `ctx.meta.user` connected on node `nodeId`. */
    connected: {
      visibility: "public",
      auth: "required",
      params: connectionParams,
      async handler(ctx: ActionContext<"users.connected">): Promise<ResultOf<"users.connected">> {
        const user = principalOf(ctx);
        const timer = this.graceTimers.get(user.id);
        if (timer) clearTimeout(timer);
        this.graceTimers.delete(user.id);
        if (await this.presence.connect(user.id, ctx.params.socketId, ctx.params.nodeId)) {
          await this.announce(ctx, user.id);
        }
      },
    },

    /** Internal, from the gateway: a socket closed. Offline follows after the grace period. */
    disconnected: {
      visibility: "public",
      auth: "required",
      params: connectionParams,
      async handler(ctx: ActionContext<"users.disconnected">): Promise<ResultOf<"users.disconnected">> {
        const user = principalOf(ctx);
        if (await this.presence.disconnect(ctx.params.socketId, user.id)) return;
        const previous = this.graceTimers.get(user.id);
        if (previous) clearTimeout(previous);
        const timer = setTimeout(() => void this.settleOffline(user.id), PRESENCE_GRACE_MS);
        timer.unref();
        this.graceTimers.set(user.id, timer);
      },
    },

    me: {
      auth: "required",
      params: {},
      async handler(ctx: Context): Promise<User> {
        return ownUser(await mustGet(this.store, principalOf(ctx).id));
      },
    },

    updateMe: {
      auth: "required",
      params: {
        displayName: { ...rules.displayName, optional: true },
        status: { ...rules.status, optional: true },
        $$strict: "remove",
      },
      async handler(ctx: Context<{ displayName?: string; status?: UserStatus }>): Promise<User> {
        const user = await this.store.update(principalOf(ctx).id, ctx.params, { requestId: ctx.requestID ?? null });
        if (!user) throw AppError.notFound("User");
        return ownUser(user);
      },
    },

    get: {
      auth: "required",
      params: { id: rules.id },
      async handler(ctx: Context<{ id: number }>): Promise<User> {
        return publicUser(await mustGet(this.store, ctx.params.id));
      },
    },

    search: {
      auth: "required",
      params: {
        q: {
          type: "string",
          trim: true,
          max: LIMITS.username.max,
          optional: true,
        },
        limit: rules.limit(LIMITS.searchLimit.max),
      },
      async handler(ctx: Context<{ q?: string; limit?: number }>): Promise<{ users: User[] }> {
        const users = await this.store.search(ctx.params.q ?? "", ctx.params.limit ?? LIMITS.searchLimit.default);
        return { users: users.map((u) => publicUser(u)) };
      },
    },

    // ---- operator only (src/operator/commands.ts), never on REST or sockets ----

    /** Users connected now, per gateway node. */
    online: {
      idempotent: true,
      visibility: "public",
      roles: ["operator"],
      params: { limit: rules.limit(10_000), $$strict: "remove" },
      async handler(ctx: ActionContext<"users.online">): Promise<ResultOf<"users.online">> {
        const limit = ctx.params.limit ?? 1000;
        const { rows, connections } = await this.presence.connectedUsers(limit);
        return { users: rows, connections, truncated: rows.length === limit };
      },
    },

    /** One account as the operator sees it: profile, roles, connections per node. */
    inspect: {
      idempotent: true,
      visibility: "public",
      roles: ["operator"],
      params: { username: { type: "string", min: 1, max: 256 }, $$strict: "remove" },
      async handler(ctx: ActionContext<"users.inspect">): Promise<ResultOf<"users.inspect">> {
        const record = await this.store.getByUsername(ctx.params.username);
        if (!record) throw AppError.notFound("User");
        return { user: record, connections: await this.presence.connectionsOf(record.id) };
      },
    },
  },

  events: {
    /** A gateway node died or left: its sockets are gone. */
    async "$node.disconnected"() {
      await this.sweepPresence();
    },
  },

  methods: {
    adminList() {
      return this.settings.admins ?? config().admins;
    },

    async announce(via: Context | ServiceBroker, userId: number) {
      const user = await this.store.get(userId);
      if (!user) return;
      const roomIds = await call(via, "chat.roomIdsOf", { userId }).catch(() => []);
      await broadcastEvent(via, "users.presence.changed", {
        userId,
        status: user.status,
        lastSeenAt: user.lastSeenAt,
        roomIds,
      });
    },

    async settleOffline(userId: number) {
      this.graceTimers.delete(userId);
      try {
        if (await this.presence.goOfflineIfIdle(userId)) await this.announce(this.broker, userId);
      } catch (err) {
        // A database outage is logged once per outage, not per user.
        if (!noteDatabaseError(this, err)) this.logger.warn(`presence: could not settle user ${userId}`, err);
      }
    },

    /**
     * Counts out connections of nodes the registry no longer lists, and users left online without a
     * connection (their grace timer died with another instance). Runs on node loss and periodically.
     */
    async sweepPresence() {
      // Right after start the registry has not discovered every node yet.
      if (Date.now() - this.startedAt < 15_000) return;
      const alive = new Set(
        (
          this.broker.registry.getNodeList({
            onlyAvailable: true,
            withServices: false,
          }) as { id: string }[]
        ).map((n) => n.id),
      );
      const affected = await this.presence.dropNodes((nodeId) => alive.has(nodeId));
      const stranded = await this.presence.strandedOnline();
      for (const userId of new Set([...affected, ...stranded])) {
        if (!this.graceTimers.has(userId)) await this.settleOffline(userId);
      }
    },
  },

  async started() {
    this.store = new UserStore(this.db, this.outbox);
    this.presence = new PresenceStore(this.db);
    this.graceTimers = new Map();
    this.startedAt = Date.now();
    const admins = await applyAdminList(this.db, this.outbox, this.adminList(), { requestId: null });
    for (const name of admins.granted) this.logger.info(`NOCHAT_ADMINS: ${name} is now an admin`);
    for (const name of admins.demoted)
      this.logger.warn(`NOCHAT_ADMINS: ${name} is no longer listed and is no longer an admin`);
    if (admins.missing.length > 0) {
      this.logger.warn(
        `NOCHAT_ADMINS: no account named ${admins.missing.join(", ")}; nothing granted (registering that name later grants nothing either)`,
      );
    }
    this.sweepTimer = setInterval(() => {
      this.sweepPresence().catch((err: unknown) => {
        if (!noteDatabaseError(this, err)) this.logger.warn("presence sweep failed", err);
      });
    }, 10_000);
    this.sweepTimer.unref();
    // The online-users gauge: one count every ONLINE_COUNT_MS, only with metrics on.
    if (registerMetrics(this.broker, [METRIC.usersOnline])) {
      const count = () =>
        this.presence.countOnline().then(
          (n) => setMetric(this.broker, METRIC.usersOnline, n),
          (err: unknown) => this.logger.debug("online users not counted", (err as Error).message),
        );
      void count();
      this.onlineTimer = setInterval(() => void count(), ONLINE_COUNT_MS);
      this.onlineTimer.unref();
    }
  },

  async stopped() {
    clearInterval(this.sweepTimer);
    clearInterval(this.onlineTimer);
    for (const timer of this.graceTimers.values()) clearTimeout(timer);
  },
};

export default UsersService;
