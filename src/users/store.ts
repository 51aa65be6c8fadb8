/** The users table: accounts without credentials (those belong to auth). */
import type { UserRecord } from "../contracts/accounts.js";
import type { Role, UserStatus } from "../contracts/objects.js";
import { AppError } from "../errors.js";
import type { Outbox, Trace } from "../infra/outbox.js";
import { isUniqueViolation, type Sql } from "../infra/sql.js";

interface UserRow {
  id: number;
  username: string;
  display_name: string;
  status: string;
  last_seen_at: number | string | null;
  created_at: number | string;
  roles: string;
  online: number | boolean;
}

const iso = (ms: number | string | null): string | null => (ms === null ? null : new Date(Number(ms)).toISOString());

function toRecord(row: UserRow): UserRecord {
  return {
    id: row.id,
    username: row.username,
    displayName: row.display_name,
    // Presence wins: without a connected socket a user is offline whatever they chose.
    status: row.online ? (row.status as UserStatus) : "offline",
    lastSeenAt: iso(row.last_seen_at),
    createdAt: iso(row.created_at) as string,
    roles: row.roles ? (row.roles.split(",") as Role[]) : [],
    chosenStatus: row.status as UserStatus,
  };
}

/** Escapes LIKE wildcards so a search for "a_b" means exactly that. */
const likePrefix = (q: string): string => q.replace(/[!%_]/g, (c) => `!${c}`) + "%";

export class UserStore {
  constructor(
    private readonly db: Sql,
    private readonly outbox: Outbox,
  ) {}

  async create(input: { username: string; displayName: string; roles: Role[] }, trace: Trace): Promise<UserRecord> {
    try {
      const id = await this.db.transaction(async (trx) => {
        const username = input.username.toLowerCase();
        const [id] = await trx("users").insert({
          username,
          display_name: input.displayName,
          status: "online",
          created_at: Date.now(),
          roles: input.roles.join(","),
        });
        await this.outbox.write(trx, [
          {
            type: "user.registered",
            requestId: trace.requestId,
            data: { userId: Number(id), username, admin: input.roles.includes("admin") },
          },
        ]);
        return Number(id);
      });
      return (await this.get(id)) as UserRecord;
    } catch (err) {
      if (isUniqueViolation(err)) throw AppError.conflict("Username is already taken");
      throw err;
    }
  }

  async get(id: number): Promise<UserRecord | undefined> {
    const row = await this.db<UserRow>("users").where({ id }).first();
    return row ? toRecord(row) : undefined;
  }

  async getByUsername(username: string): Promise<UserRecord | undefined> {
    const row = await this.db<UserRow>("users").where({ username: username.toLowerCase() }).first();
    return row ? toRecord(row) : undefined;
  }

  async getMany(ids: number[]): Promise<UserRecord[]> {
    if (ids.length === 0) return [];
    const rows = await this.db<UserRow>("users").whereIn("id", ids);
    return rows.map(toRecord);
  }

  async search(prefix: string, limit: number): Promise<UserRecord[]> {
    const q = this.db<UserRow>("users").orderBy("username").limit(limit);
    if (prefix) q.whereRaw("username like ? escape '!'", [likePrefix(prefix.toLowerCase())]);
    return (await q).map(toRecord);
  }

  async update(
    id: number,
    patch: { displayName?: string; status?: UserStatus },
    trace: Trace,
  ): Promise<UserRecord | undefined> {
    const changes: Partial<UserRow> = {};
    if (patch.displayName !== undefined) changes.display_name = patch.displayName;
    if (patch.status !== undefined) changes.status = patch.status;
    if (Object.keys(changes).length > 0) {
      await this.db.transaction(async (trx) => {
        // No such user: nothing changed, so nothing to announce.
        if ((await trx("users").where({ id }).update(changes)) === 0) return;
        await this.outbox.write(trx, [
          { type: "user.updated", requestId: trace.requestId, data: { userId: id, fields: Object.keys(patch) } },
        ]);
      });
    }
    return this.get(id);
  }

  async getManyByUsername(usernames: string[]): Promise<UserRecord[]> {
    if (usernames.length === 0) return [];
    const rows = await this.db<UserRow>("users").whereIn(
      "username",
      usernames.map((u) => u.toLowerCase()),
    );
    return rows.map(toRecord);
  }

  async remove(id: number): Promise<void> {
    await this.db("users").where({ id }).delete();
  }
}
