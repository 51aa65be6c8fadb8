/**
 * NoChat's keys on Moleculer's action schemas: its guard (`auth: "required"`, `roles: [...]`),
 * checked by PermissionMiddleware (src/infra/permissions.ts), and whether running it again is safe
 * (`idempotent`), which DatabaseOutageMiddleware (src/infra/database-outage.ts) relies on.
 */
import type { PrincipalRole } from "../src/contracts/objects.js";

declare module "moleculer" {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- must repeat the type parameter to merge
  interface ActionSchema<TThis> {
    auth?: "required";
    roles?: PrincipalRole[];
    idempotent?: boolean;
  }
}
