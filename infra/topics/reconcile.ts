// Makes a Kafka cluster match the topic catalog: creates missing topics, adds partitions, and sets
// the configs the catalog decides. It never deletes a topic and never shrinks one (Kafka cannot);
// such differences are reported as conflicts for a person to settle.
import { setTimeout as sleep } from "node:timers/promises";
import kafkajs, { type Admin } from "kafkajs";
import { type TopicCatalog, type TopicSpec, topicConfigs } from "../../schemas/catalog.ts";

export interface TopicState {
  exists: boolean;
  partitions: number;
  replicationFactor: number;
  /** Every config's current value. */
  configs: Record<string, string>;
  /** Configs set on the topic itself (not defaults): AlterConfigs must re-send them or they are reset. */
  overrides: Record<string, string>;
}

export type TopicChange =
  | { kind: "create" }
  | { kind: "add-partitions"; from: number; to: number }
  | { kind: "set-config"; key: string; from: string | undefined; to: string }
  | { kind: "conflict"; message: string };

export interface TopicPlan {
  spec: TopicSpec;
  state: TopicState;
  changes: TopicChange[];
}

// kafkajs is CommonJS and Node's export detection misses these two: take them from the module object.
const { ConfigResourceTypes, ConfigSource } = kafkajs;

const MISSING: TopicState = { exists: false, partitions: 0, replicationFactor: 0, configs: {}, overrides: {} };

export async function readTopicStates(admin: Admin, names: string[]): Promise<Map<string, TopicState>> {
  const existing = new Set(await admin.listTopics());
  const present = names.filter((n) => existing.has(n));
  const states = new Map<string, TopicState>(names.map((n) => [n, MISSING]));
  if (present.length === 0) return states;
  const [metadata, described] = await Promise.all([
    admin.fetchTopicMetadata({ topics: present }),
    admin.describeConfigs({
      includeSynonyms: false,
      resources: present.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
    }),
  ]);
  for (const t of metadata.topics) {
    const resource = described.resources.find((r) => r.resourceName === t.name);
    const entries = resource?.configEntries ?? [];
    states.set(t.name, {
      exists: true,
      partitions: t.partitions.length,
      replicationFactor: t.partitions[0]?.replicas.length ?? 0,
      configs: Object.fromEntries(entries.map((e) => [e.configName, e.configValue])),
      overrides: Object.fromEntries(
        entries
          .filter((e) => e.configSource === ConfigSource.TOPIC_CONFIG && !e.isSensitive)
          .map((e) => [e.configName, e.configValue]),
      ),
    });
  }
  return states;
}

export function planTopic(spec: TopicSpec, state: TopicState): TopicChange[] {
  if (!state.exists) return [{ kind: "create" }];
  const changes: TopicChange[] = [];
  if (state.partitions < spec.partitions)
    changes.push({ kind: "add-partitions", from: state.partitions, to: spec.partitions });
  if (state.partitions > spec.partitions) {
    changes.push({
      kind: "conflict",
      message: `has ${state.partitions} partitions, the catalog says ${spec.partitions}: Kafka cannot remove partitions`,
    });
  }
  if (state.replicationFactor !== spec.replicationFactor) {
    changes.push({
      kind: "conflict",
      message: `replication factor is ${state.replicationFactor}, the catalog says ${spec.replicationFactor}: change it with a partition reassignment`,
    });
  }
  for (const [key, to] of Object.entries(topicConfigs(spec))) {
    if (state.configs[key] !== to) changes.push({ kind: "set-config", key, from: state.configs[key], to });
  }
  return changes;
}

export async function planTopics(admin: Admin, catalog: TopicCatalog): Promise<TopicPlan[]> {
  const states = await readTopicStates(
    admin,
    catalog.topics.map((t) => t.name),
  );
  return catalog.topics.map((spec) => {
    const state = states.get(spec.name) ?? MISSING;
    return { spec, state, changes: planTopic(spec, state) };
  });
}

/** Carries out every change but the conflicts. */
export async function applyTopicPlans(admin: Admin, plans: TopicPlan[]): Promise<void> {
  const creates = plans.filter((p) => p.changes.some((c) => c.kind === "create"));
  if (creates.length > 0) {
    await admin.createTopics({
      waitForLeaders: true,
      topics: creates.map((p) => ({
        topic: p.spec.name,
        numPartitions: p.spec.partitions,
        replicationFactor: p.spec.replicationFactor,
        configEntries: Object.entries(topicConfigs(p.spec)).map(([name, value]) => ({ name, value })),
      })),
    });
  }
  const grow = plans.flatMap((p) =>
    p.changes.filter((c) => c.kind === "add-partitions").map(() => ({ topic: p.spec.name, count: p.spec.partitions })),
  );
  if (grow.length > 0) await admin.createPartitions({ topicPartitions: grow });
  // A new partition answers NOT_LEADER_FOR_PARTITION for a moment after creation, and kafkajs gives
  // up on that at once: return only when every new or grown topic serves offsets.
  await waitUntilServing(admin, [...creates.map((p) => p.spec.name), ...grow.map((g) => g.topic)], 30_000);
  const reconfigure = plans.filter((p) => p.changes.some((c) => c.kind === "set-config"));
  if (reconfigure.length > 0) {
    await admin.alterConfigs({
      validateOnly: false,
      // AlterConfigs replaces the topic's whole set of overrides: keep the ones the catalog does not decide.
      resources: reconfigure.map((p) => ({
        type: ConfigResourceTypes.TOPIC,
        name: p.spec.name,
        configEntries: Object.entries({ ...p.state.overrides, ...topicConfigs(p.spec) }).map(([name, value]) => ({
          name,
          value,
        })),
      })),
    });
  }
}

/** Waits until each topic answers ListOffsets on every partition; retriable errors are retried until the deadline. */
export async function waitUntilServing(admin: Admin, topics: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const topic of topics) {
    for (;;) {
      try {
        await admin.fetchTopicOffsets(topic);
        break;
      } catch (e) {
        if (!(e as { retriable?: boolean }).retriable || Date.now() > deadline) throw e;
        await sleep(100);
      }
    }
  }
}

/** Topics on the broker that the catalog does not name (Kafka's internal topics excepted). */
export async function unmanagedTopics(admin: Admin, catalog: TopicCatalog): Promise<string[]> {
  const known = new Set(catalog.topics.map((t) => t.name));
  return (await admin.listTopics()).filter((t) => !known.has(t) && !t.startsWith("__")).sort();
}

export function describeChange(c: TopicChange): string {
  switch (c.kind) {
    case "create":
      return "create";
    case "add-partitions":
      return `partitions ${c.from} -> ${c.to} (keys move to other partitions)`;
    case "set-config":
      return `${c.key} ${c.from ?? "(unset)"} -> ${c.to}`;
    case "conflict":
      return `CONFLICT: ${c.message}`;
  }
}
