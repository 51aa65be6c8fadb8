/**
 * NoChat's keys on Moleculer's schemas: an action declares its guard (`auth: "required"`,
 * `roles: [...]`), checked by PermissionMiddleware (src/infra/permissions.ts).
 */
import type { PrincipalRole } from "../src/contracts/objects.js";

declare module "moleculer" {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- must repeat the type parameter to merge
  interface ActionSchema<TThis> {
    auth?: "required";
    roles?: PrincipalRole[];
  }
}
