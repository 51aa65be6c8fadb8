/**
 * Permission middleware: an action declares `auth: "required"` or `roles: ["admin"]`, and the rule
 * holds for every caller — REST, socket or another service on the bus — because it is checked
 * where the action runs, against the Principal the gateway put in `ctx.meta.user`.
 *
 * The operator's REPL calls as OPERATOR: it passes every role-guarded action (admin's and
 * `roles: ["operator"]`, which nobody else passes: no token carries that role) and no action that
 * only requires a signed-in user, since it is nobody's account. Like an admin principal, it is only
 * as trusted as the bus: whoever may join the cluster may call anything.
 */
import type { ActionSchema, Context, Middleware } from "moleculer";
import type { Principal, PrincipalRole } from "../contracts/objects.js";
import { AppError } from "../errors.js";

export interface GuardedAction {
  auth?: "required";
  roles?: PrincipalRole[];
}

/** The principal of operator commands (src/operator/); id 0 is nobody's account. */
export const OPERATOR: Principal = Object.freeze({
  id: 0,
  username: "operator",
  roles: ["operator"],
  sessionId: "operator",
}) as Principal;

export const isOperator = (user: Principal | undefined): boolean => user?.roles.includes("operator") === true;

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
      if (isOperator(user)) {
        if (roles.length === 0) return Promise.reject(AppError.forbidden("The operator acts as no user"));
      } else if (roles.some((role) => !user.roles.includes(role))) {
        return Promise.reject(AppError.forbidden());
      }
      return next(ctx);
    };
  },
};
