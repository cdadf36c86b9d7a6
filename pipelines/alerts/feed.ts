// The live health alerts: a consumer of alerts.health (the health pipeline's FIRING and RESOLVED
// records, committed in its transactions, so read_committed sees each once) handing each decoded
// record to a handler. The console's board follows it with a group of its own from the newest record
// (history comes from ClickHouse); the notifier follows it with the shared group `weir-alerts-notifier`,
// committing a record's offset once its webhooks are done, so notifiers share the partitions and a
// restarted one goes on where the last left off.
import { randomUUID } from "node:crypto";
import type { Consumer } from "kafkajs";
import type { Logger } from "pino";
import { KafkaClient } from "../../kafka/client.ts";
import type { KafkaSecurity } from "../../kafka/security.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { HealthAlert } from "../health/alerts.ts";

export const ALERTS_TOPIC = "alerts.health";
export const NOTIFIER_GROUP = "weir-alerts-notifier";

export interface AlertFeedOptions {
  brokers: string[];
  /** TLS and SASL of those brokers (kafka/security.ts). */
  security?: KafkaSecurity | undefined;
  topic?: string;
  /** A shared group (the notifier's); default a group of this process alone, removed at close. */
  groupId?: string;
  logger: Logger;
  /** Called for each record in order per partition; the offset is committed after it resolves. */
  onAlert: (a: HealthAlert) => void | Promise<void>;
}

const codec = codecFor("HealthAlert");

export class AlertFeed {
  private consumer: Consumer | null = null;
  private readonly groupId: string;
  private readonly ownGroup: boolean;
  private readonly client: KafkaClient;
  /** Records that did not decode (a foreign writer): skipped, counted, logged. */
  undecodable = 0;

  constructor(private readonly options: AlertFeedOptions) {
    this.ownGroup = options.groupId === undefined;
    this.groupId = options.groupId ?? `weir-console-${randomUUID().slice(0, 8)}`;
    this.client = new KafkaClient({
      brokers: options.brokers,
      security: options.security,
      clientId: this.groupId,
      logger: options.logger,
    });
  }

  /** Joins the group; resolves once it has its partitions, so records written from now on are seen. */
  async start(): Promise<void> {
    const consumer = this.client.consumer({ groupId: this.groupId, assigner: undefined });
    this.consumer = consumer;
    const joined = new Promise<void>((resolve) => {
      const off = consumer.on(consumer.events.GROUP_JOIN, () => {
        off();
        resolve();
      });
    });
    await consumer.connect();
    // A group new to the topic starts at its end: a notifier started today must not page for last week.
    await consumer.subscribe({ topic: this.options.topic ?? ALERTS_TOPIC, fromBeginning: false });
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (!message.value) return;
        let alert: HealthAlert;
        try {
          alert = codec.decode(message.value);
        } catch (e) {
          this.undecodable++;
          this.options.logger.warn({ err: (e as Error).message }, "an alerts record did not decode; skipped");
          return;
        }
        await this.options.onAlert(alert);
      },
    });
    await joined;
  }

  async stop(): Promise<void> {
    const c = this.consumer;
    this.consumer = null;
    if (!c) return;
    await c.disconnect().catch(() => {});
    if (this.ownGroup) {
      const admin = this.client.native.admin();
      try {
        await admin.connect();
        await admin.deleteGroups([this.groupId]);
      } catch {
        // A group left behind expires with the broker's offsets retention.
      } finally {
        await admin.disconnect().catch(() => {});
      }
    }
  }
}
