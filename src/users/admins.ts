/**
 * Admin is an operator's act, never a side effect of registering:
 * - NOCHAT_ADMINS is applied at start to accounts that already exist: listed ones become admins
 *   (source "env"), admins that came from the list but are no longer on it are demoted, and listed
 *   names without an account are reported (a warning) — registering one later grants nothing.
 * - `users.setAdmin` (bus and REPL only, src/../services/users.service.ts) grants or revokes for
 *   one existing account (source "granted"); the list never demotes those.
 * `users.admin_source` says which: "env", "granted", or null (not an admin; admins from before
 * this column count as "env", the only way there was). Roles reach tokens at the next refresh.
 */
import type { Role } from "../contracts/objects.js";
import type { Outbox, Trace } from "../infra/outbox.js";
import type { Migration, Sql } from "../infra/sql.js";

export const adminSourceMigration: Migration = {
  name: "003_admin_source",
  async up(db) {
    await db.schema.alterTable("users", (t) => {
      t.string("admin_source", 8).nullable();
    });
  },
};

export type AdminSource = "env" | "granted";

interface Row {
  id: number;
  username: string;
  roles: string;
  admin_source: string | null;
}

const rolesOf = (row: Row): Role[] => (row.roles ? (row.roles.split(",") as Role[]) : []);
const isAdmin = (row: Row): boolean => rolesOf(row).includes("admin");

export interface AdminListOutcome {
  granted: string[];
  demoted: string[];
  /** Listed names without an account: nothing was granted. */
  missing: string[];
}

async function setRole(
  trx: Sql,
  outbox: Outbox,
  row: Row,
  admin: boolean,
  source: AdminSource | null,
  trace: Trace,
  by: string,
) {
  const roles: Role[] = rolesOf(row).filter((r) => r !== "admin");
  if (admin) roles.push("admin");
  await trx("users")
    .where({ id: row.id })
    .update({ roles: roles.join(","), admin_source: source });
  await outbox.write(trx, [
    {
      type: "user.admin_changed",
      requestId: trace.requestId,
      data: { userId: row.id, username: row.username, admin, by },
    },
  ]);
}

/** NOCHAT_ADMINS at start: see the module comment. */
export async function applyAdminList(
  db: Sql,
  outbox: Outbox,
  listed: string[],
  trace: Trace,
): Promise<AdminListOutcome> {
  const names = [...new Set(listed.map((u) => u.trim().toLowerCase()).filter(Boolean))];
  return db.transaction(async (trx) => {
    const outcome: AdminListOutcome = { granted: [], demoted: [], missing: [] };
    const found = names.length > 0 ? await trx<Row>("users").whereIn("username", names).forUpdate() : [];
    const byName = new Map(found.map((r) => [r.username, r]));
    for (const name of names) {
      const row = byName.get(name);
      if (!row) outcome.missing.push(name);
      else if (!isAdmin(row)) {
        await setRole(trx, outbox, row, true, "env", trace, "NOCHAT_ADMINS");
        outcome.granted.push(name);
      } else if (row.admin_source === null) {
        await trx("users").where({ id: row.id }).update({ admin_source: "env" });
      }
    }
    const admins = await trx<Row>("users").where("roles", "like", "%admin%").forUpdate();
    for (const row of admins) {
      if (!isAdmin(row) || row.admin_source === "granted" || byName.has(row.username)) continue;
      await setRole(trx, outbox, row, false, null, trace, "NOCHAT_ADMINS");
      outcome.demoted.push(row.username);
    }
    return outcome;
  });
}

/** An operator's grant or revocation for one existing account; null when there is no such account. */
export async function setAdmin(
  db: Sql,
  outbox: Outbox,
  target: { id?: number; username?: string },
  admin: boolean,
  trace: Trace,
  by: string,
): Promise<{ id: number; username: string; admin: boolean; changed: boolean } | null> {
  return db.transaction(async (trx) => {
    const query = trx<Row>("users");
    const row = await (
      target.id !== undefined
        ? query.where({ id: target.id })
        : query.where({ username: (target.username ?? "").toLowerCase() })
    )
      .forUpdate()
      .first();
    if (!row) return null;
    const changed = isAdmin(row) !== admin || (admin && row.admin_source !== "granted");
    if (changed) await setRole(trx, outbox, row, admin, admin ? "granted" : null, trace, by);
    return { id: row.id, username: row.username, admin, changed };
  });
}
