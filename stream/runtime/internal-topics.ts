// Internal topics (Kafka Streams' InternalTopicManager role): before a worker joins its group, the
// topology's input and output topics must exist, and its changelog, repartition and DLQ topics are
// created with the partition counts the topology needs, or found with them. A mismatch is refused:
// a changelog or repartition topic with other counts than the inputs' would put keys in the wrong
// tasks.
import type { Logger } from "pino";
import { type CompiledTopology, planPartitions } from "../dsl/compile.ts";
import type { NewTopic, StreamAdmin } from "../kafka/stream-client.ts";

export interface TopicPlan {
  /** Partitions of every topic a task reads or writes, the DLQ included. */
  partitionCounts: Map<string, number>;
  /** Tasks per sub-topology. */
  taskCounts: Map<number, number>;
}

/** Compacted, and compacted at once: a restore reads one record per key, not its history. */
const CHANGELOG_CONFIG = { "cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": "3600000" };
/**
 * Read once, by the next sub-topology, and kept until then whatever the records' timestamps: they
 * carry event times, and a retention would delete a backlog of old events before it is read. The
 * worker deletes what its group has committed instead (repartition-purge.ts), as Kafka Streams does.
 */
export const REPARTITION_CONFIG = { "cleanup.policy": "delete", "retention.ms": "-1" };
/** What repartition topics were created with before: records older than a day were lost unread. */
const OLD_REPARTITION_RETENTION_MS = String(24 * 3600_000);
const DLQ_CONFIG = { "retention.ms": String(7 * 86_400_000) };

export async function prepareInternalTopics(
  admin: StreamAdmin,
  topology: CompiledTopology,
  log?: Pick<Logger, "info" | "warn">,
): Promise<TopicPlan> {
  const { app } = topology;
  const external = [...new Set(topology.subtopologies.flatMap((s) => s.externalTopics))];
  const outputs = [...new Set(topology.subtopologies.flatMap((s) => s.outputTopics))];
  const counts = await admin.partitionCounts([...external, ...outputs, app.dlqTopic]);
  const missing = [...external, ...outputs].filter((x) => !counts.has(x));
  if (missing.length > 0) {
    throw new Error(
      `${app.appId}: topics ${missing.join(", ")} do not exist; create them (weir topics apply for catalog topics)`,
    );
  }
  const plan = planPartitions(topology, counts);
  const existingInternal = await admin.partitionCounts([...plan.internal.keys()]);
  const create: NewTopic[] = [];
  for (const [topic, n] of plan.internal) {
    const have = existingInternal.get(topic);
    if (have === undefined) {
      const changelog = topology.internalTopics.changelog.includes(topic);
      create.push({ topic, partitions: n, config: changelog ? CHANGELOG_CONFIG : REPARTITION_CONFIG });
    } else if (have !== n) {
      throw new Error(
        `${app.appId}: internal topic ${topic} has ${have} partitions but the topology needs ${n}; the input topics changed: reset the app (delete its internal topics and group)`,
      );
    }
  }
  if (!counts.has(app.dlqTopic)) create.push({ topic: app.dlqTopic, partitions: 1, config: DLQ_CONFIG });
  await admin.createTopics(create);
  const kept = topology.internalTopics.repartition.filter((t) => existingInternal.has(t));
  await unboundRetention(admin, kept, log);
  const partitionCounts = new Map<string, number>();
  for (const [k, v] of counts) partitionCounts.set(k, v);
  for (const [k, v] of plan.internal) partitionCounts.set(k, v);
  if (!partitionCounts.has(app.dlqTopic)) partitionCounts.set(app.dlqTopic, 1);
  return { partitionCounts, taskCounts: plan.tasks };
}

/**
 * Repartition topics created with the old 24 h retention get retention.ms -1. One whose alter is
 * refused (no AlterConfigs right, say) is left as it is with a warning naming the fix: the worker
 * runs as before, with the risk it always had.
 */
async function unboundRetention(admin: StreamAdmin, topics: string[], log?: Pick<Logger, "info" | "warn">) {
  if (topics.length === 0) return;
  const configs = await admin.topicConfigs(topics);
  for (const topic of topics) {
    const retention = configs.get(topic)?.["retention.ms"];
    if (retention === "-1") continue;
    const fix = `kafka-configs.sh --bootstrap-server <broker> --alter --entity-type topics --entity-name ${topic} --add-config retention.ms=-1`;
    if (retention !== OLD_REPARTITION_RETENTION_MS) {
      // Set by someone else on purpose, or the broker's default: not ours to change.
      log?.warn(
        { topic, retentionMs: retention ?? "broker default", fix },
        `repartition topic ${topic} has a finite retention: records with event times older than it are deleted unread; fix: ${fix}`,
      );
      continue;
    }
    try {
      await admin.alterTopicConfig(topic, { "retention.ms": "-1" });
      log?.info({ topic }, `repartition topic ${topic}: retention.ms 24 h -> -1 (the worker purges what it has read)`);
    } catch (e) {
      log?.warn(
        { topic, err: (e as Error).message, fix },
        `could not set retention.ms=-1 on repartition topic ${topic} (${(e as Error).message}): records with event times older than 24 h are deleted unread; fix: ${fix}`,
      );
    }
  }
}
