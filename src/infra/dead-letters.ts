/**
 * The operators' view of dead letters across the cluster. Every producer of durable events keeps
 * its own (`<owner>_dead_letters`, in the database its instance uses: shared on MariaDB, per
 * process on SQLite) and answers for it through outboxMixin's actions; these gather them from
 * every producer instance on every node (log.deadLetters, GET /api/admin/dead-letters) and pass a
 * retry or a drop on to the instance whose database holds the id.
 */
import type { Context, ServiceBroker } from "moleculer";
import { AppError } from "../errors.js";
import type { DeadLetter } from "./outbox.js";
import type { ProducerDeadLetters } from "./outbox-mixin.js";

interface ProducerInstance {
  name: string;
  nodeID: string;
}

/** Every available instance of a service that has the outbox mixin's actions. */
export function producerInstances(broker: ServiceBroker, only?: string): ProducerInstance[] {
  const services = broker.registry.getServiceList({
    onlyAvailable: true,
    skipInternal: true,
    withActions: true,
  }) as unknown as {
    name: string;
    nodeID: string;
    actions: Record<string, unknown>;
  }[];
  return services
    .filter((s) => (only === undefined || s.name === only) && `${s.name}.outboxDeadLetters` in s.actions)
    .map((s) => ({ name: s.name, nodeID: s.nodeID }));
}

export interface DeadLetterListing {
  deadLetters: DeadLetter[];
  /** Per producer instance: how many its database holds (instances sharing a database count the same rows). */
  producers: { producer: string; nodeID: string; count: number }[];
}

/** Lists the dead letters of every producer instance, each once, oldest failure first. */
export async function gatherDeadLetters(
  ctx: Context,
  broker: ServiceBroker,
  limit: number,
): Promise<DeadLetterListing> {
  const answers = await Promise.all(
    producerInstances(broker).map((p) =>
      ctx.call<ProducerDeadLetters, { limit: number }>(`${p.name}.outboxDeadLetters`, { limit }, { nodeID: p.nodeID }),
    ),
  );
  const byId = new Map<string, DeadLetter>();
  for (const answer of answers) for (const letter of answer.deadLetters) byId.set(letter.id, letter);
  // Rows of one database seen through several instances are listed once.
  const deadLetters = [...byId.values()]
    .sort((a, b) => a.lastFailedAt.localeCompare(b.lastFailedAt) || a.id.localeCompare(b.id))
    .slice(0, limit);
  return {
    deadLetters,
    producers: answers.map((a) => ({ producer: a.producer, nodeID: a.nodeID, count: a.count })),
  };
}

/**
 * Asks every producer instance to retry (or drop) the dead letter `id`; the one whose database has
 * it does, in a transaction, so two instances on one database cannot both act. NOT_FOUND if none has it.
 */
export async function actOnDeadLetter(
  ctx: Context,
  broker: ServiceBroker,
  id: string,
  what: "retry" | "drop",
): Promise<DeadLetter> {
  const action = what === "retry" ? "outboxRetryDeadLetter" : "outboxDropDeadLetter";
  for (const p of producerInstances(broker)) {
    const letter = await ctx.call<DeadLetter | null, { id: string }>(
      `${p.name}.${action}`,
      { id },
      { nodeID: p.nodeID },
    );
    if (letter) return letter;
  }
  throw AppError.notFound("Dead letter");
}
