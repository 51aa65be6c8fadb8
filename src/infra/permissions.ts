/**
 * Permission middleware: an action declares `auth: "required"` or `roles: ["admin"]`, and the rule
 * holds for every caller — REST, socket or another service on the bus — because it is checked
 * where the action runs, against the Principal the gateway put in `ctx.meta.user`.
 */
import type { ActionSchema, Context, Middleware } from "moleculer";
import type { Principal, Role } from "../contracts/objects.js";
import { AppError } from "../errors.js";

export interface GuardedAction {
  auth?: "required";
  roles?: Role[];
}

export interface CallMeta {
  user?: Principal;
  requestId?: string;
}

/** The caller of an `auth: "required"` action; the middleware guarantees it is there. */
export function principalOf(ctx: Context): Principal {
  const user = (ctx.meta as CallMeta).user;
  if (!user) throw AppError.unauthorized();
  return user;
}

type Handler = (ctx: Context) => Promise<unknown>;

export const PermissionMiddleware: Middleware = {
  name: "Permissions",
  localAction(next: Handler, action: ActionSchema & GuardedAction): Handler {
    const roles = action.roles ?? [];
    if (action.auth !== "required" && roles.length === 0) return next;
    return function guarded(ctx: Context) {
      const user = (ctx.meta as CallMeta).user;
      if (!user) return Promise.reject(AppError.unauthorized());
      if (roles.some((role) => !user.roles.includes(role))) return Promise.reject(AppError.forbidden());
      return next(ctx);
    };
  },
};

// Actions declare their guard in the schema; teach Moleculer's typings the two keys. The module
// exports its namespace (`export =`), so its interfaces are augmented at the top level.
declare module "../../node_modules/moleculer/src/service" {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- must repeat the type parameter to merge
  interface ActionSchema<TThis> {
    auth?: "required";
    roles?: Role[];
  }
}
