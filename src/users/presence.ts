/**
 * Presence: a user is online while any of their sockets is connected on any gateway node. Each
 * connection is a row (socket id, user, node), so every users instance sees the same truth; the
 * online flag flips in a conditional UPDATE, so exactly one instance reports each transition.
 * A user whose last socket closed goes offline only after a grace period (a page reload does not
 * flap), and the connections of a dead gateway node are counted out.
 */
import type { Sql } from "../infra/sql.js";

export const PRESENCE_GRACE_MS = 5_000;

export interface ConnectedUser {
  nodeId: string;
  userId: number;
  username: string;
  sockets: number;
  /** When the oldest of these sockets connected. */
  since: string;
}

export class PresenceStore {
  constructor(private readonly db: Sql) {}

  /** Records a connection; true when this made the user come online. */
  async connect(userId: number, socketId: string, nodeId: string, now = Date.now()): Promise<boolean> {
    await this.db("presence_connections")
      .insert({
        socket_id: socketId,
        user_id: userId,
        node_id: nodeId,
        connected_at: now,
      })
      .onConflict("socket_id")
      .ignore();
    const changed = await this.db("users")
      .where({ id: userId, online: false })
      .update({ online: true, last_seen_at: now });
    return changed > 0;
  }

  /** Forgets a connection; returns whether the user still has any. */
  async disconnect(socketId: string, userId: number): Promise<boolean> {
    await this.db("presence_connections").where({ socket_id: socketId }).delete();
    return this.hasConnections(userId);
  }

  async hasConnections(userId: number): Promise<boolean> {
    const row = await this.db("presence_connections").where({ user_id: userId }).first("socket_id");
    return row !== undefined;
  }

  /** Marks the user offline if they still have no connection; true when this made them go offline. */
  async goOfflineIfIdle(userId: number, now = Date.now()): Promise<boolean> {
    if (await this.hasConnections(userId)) return false;
    const changed = await this.db("users")
      .where({ id: userId, online: true })
      .update({ online: false, last_seen_at: now });
    return changed > 0;
  }

  /** Drops the connections of nodes that are gone; returns the users who had some there. */
  async dropNodes(isAlive: (nodeId: string) => boolean): Promise<number[]> {
    const rows = await this.db("presence_connections").distinct<{ node_id: string }[]>("node_id");
    const dead = rows.map((r) => r.node_id).filter((n) => !isAlive(n));
    if (dead.length === 0) return [];
    const users = await this.db("presence_connections")
      .whereIn("node_id", dead)
      .distinct<{ user_id: number }[]>("user_id");
    await this.db("presence_connections").whereIn("node_id", dead).delete();
    return users.map((u) => u.user_id);
  }

  /**
   * Who is connected where, for the operator: one row per (gateway node, user) with the number of
   * sockets, at most `limit` rows, and how many connections there are in all.
   */
  async connectedUsers(limit: number): Promise<{ rows: ConnectedUser[]; connections: number }> {
    const rows = await this.db("presence_connections as pc")
      .join("users as u", "u.id", "pc.user_id")
      .groupBy("pc.node_id", "pc.user_id", "u.username")
      .orderBy([{ column: "pc.node_id" }, { column: "u.username" }])
      .limit(limit)
      .select<
        { node_id: string; user_id: number; username: string; sockets: number | string; since: number | string }[]
      >(
        "pc.node_id",
        "pc.user_id",
        "u.username",
        this.db.raw("count(*) as sockets"),
        this.db.raw("min(pc.connected_at) as since"),
      );
    const total = await this.db("presence_connections").count<{ n: number | string }[]>({ n: "*" }).first();
    return {
      rows: rows.map((r) => ({
        nodeId: r.node_id,
        userId: r.user_id,
        username: r.username,
        sockets: Number(r.sockets),
        since: new Date(Number(r.since)).toISOString(),
      })),
      connections: Number(total?.n ?? 0),
    };
  }

  /** One user's connections per gateway node. */
  async connectionsOf(userId: number): Promise<{ nodeId: string; sockets: number }[]> {
    const rows = await this.db("presence_connections")
      .where({ user_id: userId })
      .groupBy("node_id")
      .orderBy("node_id")
      .select<{ node_id: string; sockets: number | string }[]>("node_id", this.db.raw("count(*) as sockets"));
    return rows.map((r) => ({ nodeId: r.node_id, sockets: Number(r.sockets) }));
  }

  /** Users flagged online (for the online-users gauge). */
  async countOnline(): Promise<number> {
    const row = await this.db("users").where({ online: true }).count<{ n: number | string }[]>({ n: "*" }).first();
    return Number(row?.n ?? 0);
  }

  /** Users flagged online without any connection (their grace timer died with an instance). */
  async strandedOnline(): Promise<number[]> {
    const rows = await this.db("users")
      .where({ online: true })
      .whereNotExists(
        this.db("presence_connections").whereRaw("presence_connections.user_id = users.id").select("socket_id"),
      )
      .select<{ id: number }[]>("id");
    return rows.map((r) => r.id);
  }
}
