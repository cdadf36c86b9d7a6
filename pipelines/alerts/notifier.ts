// The notifier as a running service: it follows alerts.health in the shared group weir-alerts-notifier
// (notifiers share the partitions; a record's offset is committed once its webhooks are done), sends
// each record to its receivers (webhooks.ts: retried, deduplicated) and writes what it did as the
// alert's NOTIFIED or NOTIFY_FAILED action, which the board's timeline shows. Keys delivered before a
// restart are read back from those actions, so a replayed record is not sent twice.
import type { Logger } from "pino";
import type { KafkaSecurity } from "../../kafka/security.ts";
import type { AlertBoard } from "./board.ts";
import { AlertFeed, NOTIFIER_GROUP } from "./feed.ts";
import { type Receiver, WebhookNotifier } from "./webhooks.ts";

export interface NotifierServiceOptions {
  brokers: string[];
  /** TLS and SASL of those brokers (kafka/security.ts). */
  security?: KafkaSecurity | undefined;
  topic?: string;
  groupId?: string;
  board: AlertBoard;
  receivers: readonly Receiver[];
  consoleUrl?: string;
  logger: Logger;
  fetch?: typeof fetch;
  backoff?: { initialMs: number; maxMs: number };
}

export class NotifierService {
  readonly notifier: WebhookNotifier;
  private readonly feed: AlertFeed;
  private readonly ac = new AbortController();
  /** Deliveries by result, for the log and tests. */
  readonly counts = { sent: 0, duplicate: 0, failed: 0 };

  constructor(private readonly options: NotifierServiceOptions) {
    this.notifier = new WebhookNotifier({
      scenes: options.board.scenes,
      receivers: options.receivers,
      ...(options.consoleUrl ? { consoleUrl: options.consoleUrl } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
    this.feed = new AlertFeed({
      brokers: options.brokers,
      security: options.security,
      groupId: options.groupId ?? NOTIFIER_GROUP,
      ...(options.topic ? { topic: options.topic } : {}),
      logger: options.logger,
      onAlert: async (a) => {
        const board = options.board;
        board.applyAlert(a);
        for (const o of await this.notifier.notify(a, this.ac.signal)) {
          this.counts[o.result]++;
          if (o.result === "duplicate") continue;
          const sent = o.result === "sent";
          options.logger[sent ? "info" : "warn"](
            { alert: a.id, state: a.state, receiver: o.receiver, attempts: o.attempts, detail: o.detail },
            sent ? "alert notified" : "alert notification failed",
          );
          await board
            .record({
              alertId: a.id,
              at: Date.now(),
              action: sent ? "NOTIFIED" : "NOTIFY_FAILED",
              actor: o.receiver,
              // The key, so a restarted notifier knows it was delivered; what went wrong otherwise.
              note: sent ? o.key : `${a.state}: ${o.detail} after ${o.attempts} tries`,
              service: a.service,
              id: `${o.key}/${sent ? "sent" : Date.now()}`,
            })
            .catch((e: unknown) => options.logger.error({ err: e, alert: a.id }, "could not record a notification"));
        }
      },
    });
  }

  async start(): Promise<void> {
    for (const key of this.options.board.notifiedKeys()) this.notifier.remember(key);
    await this.feed.start();
  }

  async stop(): Promise<void> {
    this.ac.abort();
    await this.feed.stop();
  }
}
