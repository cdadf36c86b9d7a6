import { Kafka, logLevel } from "kafkajs";
import { type KafkaSecurity, kafkajsSecurity } from "../../kafka/security.ts";
import type { TopicCatalog } from "../../schemas/catalog.ts";
import { applyTopicPlans, planTopics, type TopicPlan, unmanagedTopics } from "./reconcile.ts";

export interface CatalogState {
  plans: TopicPlan[];
  unmanaged: string[];
}

/** Compares the broker with the catalog and, unless `dryRun`, carries out every change but conflicts. */
export async function reconcileCatalog(
  brokers: string[],
  catalog: TopicCatalog,
  opts: { dryRun: boolean; security?: KafkaSecurity | undefined },
): Promise<CatalogState> {
  const kafka = new Kafka({
    clientId: "weir-topics",
    brokers,
    ...kafkajsSecurity(opts.security),
    logLevel: logLevel.NOTHING,
    retry: { retries: 3 },
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const plans = await planTopics(admin, catalog);
    if (!opts.dryRun) await applyTopicPlans(admin, plans);
    return { plans, unmanaged: await unmanagedTopics(admin, catalog) };
  } finally {
    await admin.disconnect();
  }
}
