/**
 * Gives a service its SQL database: opened at creation, migrated at start (each service owns its
 * tables and migrations), released at stop. The service builds its store on `this.db` in `started`.
 *
 * It also gives the service a `ready` action: `SELECT 1` on its database within
 * SQL_READY_TIMEOUT_MS, for the gateways' readiness (`GET /api/health/ready`). A database outage
 * answers UNAVAILABLE (DatabaseOutageMiddleware); the action is neither retried nor counted by the
 * circuit breaker, so a probe says what the database does now. Not on any REST route or socket event.
 */
import type { ServiceSchema, ServiceSettingSchema } from "moleculer";
import { config } from "../config.js";
import { migrate, openSql, pingSql, releaseSql, type Migration, type Sql } from "./sql.js";

export interface WithSql {
  db: Sql;
}

/** How long `<service>.ready` waits for `SELECT 1` before answering UNAVAILABLE. */
export const SQL_READY_TIMEOUT_MS = 1_000;

export function sqlMixin(owner: string, migrations: Migration[]): Partial<ServiceSchema> {
  const target = () => ({
    databaseUrl: config().databaseUrl,
    dataDir: config().dataDir,
  });
  const mixin: Partial<ServiceSchema<ServiceSettingSchema, object, WithSql>> = {
    actions: {
      ready: {
        params: {},
        retryPolicy: { enabled: false },
        circuitBreaker: { enabled: false },
        async handler(): Promise<{ ok: true }> {
          await pingSql(this.db, SQL_READY_TIMEOUT_MS);
          return { ok: true };
        },
      },
    },
    created() {
      this.db = openSql(target());
    },
    async started() {
      await migrate(this.db, owner, migrations);
    },
    async stopped() {
      await releaseSql(target());
    },
  };
  // Mixins are typed for any service; the services using this one declare `WithSql` in their vars.
  return mixin as Partial<ServiceSchema>;
}
