/**
 * Makes a service a producer of durable domain events: its outbox table is migrated with its other
 * tables (list `outboxMigration(owner)` among them) and a relay delivers the rows to each
 * consumer's `ingest` action. Mix in before sqlMixin (`mixins: [outboxMixin(o), sqlMixin(o, …)]`):
 * the last mixin starts first, so the tables exist before the relay runs.
 */
import type { ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { DomainEvent } from "../contracts/domain-events.js";
import { OutboxRelay, writeOutbox, type NewEvent } from "./outbox.js";
import type { Sql } from "./sql.js";
import type { WithSql } from "./sql-mixin.js";

export interface WithOutbox extends WithSql {
  outbox: OutboxRelay;
  /** Writes events in `trx` (or on their own) and has the relay deliver them after the commit. */
  publish(trx: Sql | undefined, events: NewEvent[]): Promise<DomainEvent[]>;
}

export function outboxMixin(owner: string): Partial<ServiceSchema> {
  const mixin: Partial<ServiceSchema<ServiceSettingSchema, object, WithOutbox>> = {
    methods: {
      async publish(trx: Sql | undefined, events: NewEvent[]) {
        const written = await writeOutbox(trx ?? this.db, owner, events);
        // Inside a transaction the rows are not visible until the commit; the kick then finds them,
        // or the next poll does.
        if (trx === undefined) this.outbox.kick();
        return written;
      },
    },
    async started() {
      this.outbox = new OutboxRelay(
        this.db,
        owner,
        this.broker.nodeID,
        async (consumer, events) => {
          await this.broker.call(`${consumer}.ingest`, { events }, { timeout: 15_000, retries: 0 });
        },
        {
          onError: (consumer, err) =>
            this.logger.debug(`outbox: delivery to ${consumer} failed, will retry`, (err as Error).message),
        },
      );
      this.outbox.start();
    },
    async stopped() {
      await this.outbox?.stop();
    },
  };
  return mixin as Partial<ServiceSchema>;
}
