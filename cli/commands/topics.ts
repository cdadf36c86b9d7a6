import { Command } from "commander";
import { clientEndpoints } from "../../infra/stack/config.ts";
import { type CatalogState, reconcileCatalog } from "../../infra/topics/apply.ts";
import { describeChange } from "../../infra/topics/reconcile.ts";
import { type KafkaSecurity, kafkaSecurityFromEnv } from "../../kafka/security.ts";
import { loadTopicCatalog } from "../../schemas/catalog.ts";
import { printTable } from "../table.ts";

export function topicsCommand(): Command {
  const topics = new Command("topics").description("the topic catalog (schemas/topics.yaml) against the Kafka cluster");

  topics
    .command("apply")
    .description("create missing topics, add partitions, set retention and cleanup as the catalog says")
    .option("--dry-run", "show what would change, change nothing")
    .option("--brokers <list>", "Kafka bootstrap servers (default: WEIR_KAFKA_BROKERS, else the local stack)")
    .option(
      "--env <name>",
      "the catalog's environment whose replication applies (default: WEIR_TOPICS_ENV, else local)",
    )
    .action(async (opts: { dryRun?: boolean; brokers?: string; env?: string }) => {
      const state = await applyCatalog(opts.brokers, !!opts.dryRun, opts.env);
      printApplied(state, !!opts.dryRun);
      if (state.plans.some((p) => p.changes.some((c) => c.kind === "conflict"))) process.exitCode = 1;
    });

  topics
    .command("describe")
    .description("each catalog topic: schema, key, partitions and retention, in the catalog and on the broker")
    .option("--json", "print JSON")
    .option("--brokers <list>", "Kafka bootstrap servers (default: WEIR_KAFKA_BROKERS, else the local stack)")
    .option(
      "--env <name>",
      "the catalog's environment whose replication is expected (default: WEIR_TOPICS_ENV, else local)",
    )
    .action(async (opts: { json?: boolean; brokers?: string; env?: string }) => {
      const state = await reconcileCatalog(brokersFrom(opts.brokers), catalogFor(opts.env), {
        dryRun: true,
        security: securityFor(opts.brokers),
      });
      if (opts.json) {
        console.log(
          JSON.stringify(
            {
              topics: state.plans.map((p) => ({ ...p.spec, broker: p.state, changes: p.changes })),
              unmanaged: state.unmanaged,
            },
            null,
            2,
          ),
        );
        return;
      }
      printTable(
        ["TOPIC", "SCHEMA", "KEY", "PARTITIONS", "RETENTION", "CLEANUP", "STATE"],
        state.plans.map(({ spec, state: s, changes }) => [
          spec.name,
          spec.schema,
          spec.key ?? "-",
          s.exists && s.partitions !== spec.partitions
            ? `${spec.partitions} (broker ${s.partitions})`
            : String(spec.partitions),
          formatRetention(spec.retentionMs) +
            (s.exists && s.configs["retention.ms"] !== String(spec.retentionMs)
              ? ` (broker ${formatRetention(Number(s.configs["retention.ms"]))})`
              : ""),
          spec.cleanup,
          !s.exists ? "missing" : changes.length === 0 ? "ok" : changes.map(describeChange).join("; "),
        ]),
      );
      if (state.unmanaged.length > 0) console.log(`\nnot in the catalog: ${state.unmanaged.join(", ")}`);
    });

  return topics;
}

/** Brokers given on the command line: their security from the environment only, never the local stack's. */
function securityFor(option: string | undefined): KafkaSecurity | undefined {
  return option ? kafkaSecurityFromEnv() : clientEndpoints().kafkaSecurity;
}

function brokersFrom(option: string | undefined): string[] {
  return option ? option.split(",").map((b) => b.trim()) : clientEndpoints().kafkaBrokers;
}

function catalogFor(environment: string | undefined) {
  return environment ? loadTopicCatalog(undefined, process.env, undefined, environment) : loadTopicCatalog();
}

/** `weir topics apply`, also run by `weir stack up` (with the environment its broker count calls for). */
export async function applyCatalog(
  brokers: string | undefined,
  dryRun: boolean,
  environment?: string,
  security: KafkaSecurity | undefined = securityFor(brokers),
): Promise<CatalogState> {
  return reconcileCatalog(brokersFrom(brokers), catalogFor(environment), { dryRun, security });
}

export function printApplied(state: CatalogState, dryRun: boolean): void {
  const changed = state.plans.filter((p) => p.changes.length > 0);
  const verb = dryRun ? "would" : "did";
  if (changed.length === 0) console.log(`topics: all ${state.plans.length} catalog topics match the broker`);
  for (const p of changed) console.log(`topics: ${p.spec.name}: ${verb} ${p.changes.map(describeChange).join("; ")}`);
}

function formatRetention(ms: number): string {
  if (ms < 0) return "forever";
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
