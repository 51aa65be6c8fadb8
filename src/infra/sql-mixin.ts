/**
 * Gives a service its SQL database: opened at creation, migrated at start (each service owns its
 * tables and migrations), released at stop. The service builds its store on `this.db` in `started`.
 */
import type { ServiceSchema, ServiceSettingSchema } from "moleculer";
import { config } from "../config.js";
import { migrate, openSql, releaseSql, type Migration, type Sql } from "./sql.js";

export interface WithSql {
  db: Sql;
}

export function sqlMixin(owner: string, migrations: Migration[]): Partial<ServiceSchema> {
  const target = () => ({
    databaseUrl: config().databaseUrl,
    dataDir: config().dataDir,
  });
  const mixin: Partial<ServiceSchema<ServiceSettingSchema, object, WithSql>> = {
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
