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

type SqlTarget = Parameters<typeof openSql>[0];

export interface WithSql {
  db: Sql;
}

/**
 * Where the service's database is: its `settings` when given (tests point brokers at their own
 * databases this way), else DATABASE_URL and DATA_DIR.
 */
export interface SqlSettings {
  databaseUrl?: string;
  dataDir?: string;
}

/** How long `<service>.ready` waits for `SELECT 1` before answering UNAVAILABLE. */
export const SQL_READY_TIMEOUT_MS = 1_000;

export function sqlMixin(owner: string, migrations: Migration[]): Partial<ServiceSchema> {
  const mixin: Partial<ServiceSchema<ServiceSettingSchema & SqlSettings, object, WithSql & { sqlTarget: SqlTarget }>> =
    {
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
        this.sqlTarget = {
          databaseUrl: this.settings.databaseUrl ?? config().databaseUrl,
          dataDir: this.settings.dataDir ?? config().dataDir,
        };
        this.db = openSql(this.sqlTarget);
      },
      async started() {
        await migrate(this.db, owner, migrations);
      },
      async stopped() {
        await releaseSql(this.sqlTarget);
      },
    };
  // Mixins are typed for any service; the services using this one declare `WithSql` in their vars.
  return mixin as Partial<ServiceSchema>;
}
