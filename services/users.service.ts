import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { config } from "../src/config.js";
import type { CreateUserParams } from "../src/contracts/actions.js";
import type { Role, User, UserStatus } from "../src/contracts/objects.js";
import { LIMITS, rules } from "../src/contracts/limits.js";
import { emitEvent } from "../src/contracts/events.js";
import { AppError } from "../src/errors.js";
import { principalOf } from "../src/infra/permissions.js";
import { sqlMixin, type WithSql } from "../src/infra/sql-mixin.js";
import { usersMigrations } from "../src/users/migrations.js";
import { publicUser, UserStore, type UserRecord } from "../src/users/store.js";

type Vars = WithSql & { store: UserStore };

async function mustGet(store: UserStore, id: number): Promise<UserRecord> {
  const user = await store.get(id);
  if (!user) throw AppError.notFound("User");
  return user;
}

const UsersService: ServiceSchema<ServiceSettingSchema, object, Vars> = {
  name: "users",
  mixins: [sqlMixin("users", usersMigrations)],

  actions: {
    /** Internal: called by auth at registration. */
    create: {
      visibility: "public",
      params: { username: rules.username, displayName: { ...rules.displayName, optional: true } },
      async handler(ctx: Context<CreateUserParams>): Promise<UserRecord> {
        const { username } = ctx.params;
        const roles: Role[] = config().admins.includes(username.toLowerCase()) ? ["admin"] : [];
        const user = await this.store.create({ username, displayName: ctx.params.displayName ?? username, roles });
        await emitEvent(ctx, "users.created", { userId: user.id, username: user.username, roles: user.roles });
        return user;
      },
    },

    /** Internal: the account behind a login, or null. */
    findByUsername: {
      visibility: "public",
      params: { username: { type: "string", max: 256 } },
      async handler(ctx: Context<{ username: string }>): Promise<UserRecord | null> {
        return (await this.store.getByUsername(ctx.params.username)) ?? null;
      },
    },

    /** Internal: one account with its roles (auth, when it issues tokens). */
    getRecord: {
      visibility: "public",
      params: { id: rules.id },
      async handler(ctx: Context<{ id: number }>): Promise<UserRecord | null> {
        return (await this.store.get(ctx.params.id)) ?? null;
      },
    },

    /** Internal: users by id for other services (e.g. room members), in one query. */
    getMany: {
      visibility: "public",
      params: { ids: { type: "array", items: rules.id, max: 1000 } },
      async handler(ctx: Context<{ ids: number[] }>): Promise<User[]> {
        return (await this.store.getMany(ctx.params.ids)).map((u) => publicUser(u));
      },
    },

    /** Internal: removes an account whose registration could not be completed. */
    remove: {
      visibility: "public",
      params: { id: rules.id },
      async handler(ctx: Context<{ id: number }>): Promise<void> {
        await this.store.remove(ctx.params.id);
      },
    },

    me: {
      auth: "required",
      params: {},
      async handler(ctx: Context): Promise<User> {
        return publicUser(await mustGet(this.store, principalOf(ctx).id), true);
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
        const user = await this.store.update(principalOf(ctx).id, ctx.params);
        if (!user) throw AppError.notFound("User");
        return publicUser(user, true);
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
        q: { type: "string", trim: true, max: LIMITS.username.max, optional: true },
        limit: rules.limit(LIMITS.searchLimit.max),
      },
      async handler(ctx: Context<{ q?: string; limit?: number }>): Promise<{ users: User[] }> {
        const users = await this.store.search(ctx.params.q ?? "", ctx.params.limit ?? LIMITS.searchLimit.default);
        return { users: users.map((u) => publicUser(u)) };
      },
    },
  },

  async started() {
    this.store = new UserStore(this.db);
    await this.store.grantAdmins(config().admins);
  },
};

export default UsersService;
