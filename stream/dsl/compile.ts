// Cuts the graph into sub-topologies: the parts connected by edges, separated by repartition
// topics. A sub-topology runs as one task per partition of its (co-partitioned) input topics; its
// stores each have a changelog topic with the same partition count.

import type { StoreConfig } from "../state/store.ts";
import { json, TopologyError } from "../types.ts";
import type { StreamApp } from "./app.ts";
import type { Node, RepartitionNode, SourceNode, TableNode } from "./graph.ts";

export interface StoreSpec {
  name: string;
  /** The compacted topic that makes the store survive a move; null for tables (their topic is the log). */
  changelog: string | null;
  nodeId: number;
  /** How each task creates the store (serde, TTL, bound). */
  config: StoreConfig<unknown>;
}

export interface SubTopology {
  id: number;
  nodes: number[];
  sources: SourceNode[];
  tables: TableNode[];
  stores: StoreSpec[];
  /** Repartition topics this sub-topology writes. */
  repartitions: RepartitionNode[];
  outputTopics: string[];
  /** External topics (sources and tables) whose partition counts must agree. */
  externalTopics: string[];
  /** Internal topics read here: upstream sub-topology per topic, for watermark channels. */
  upstream: Map<string, number>;
}

export interface CompiledTopology {
  app: StreamApp;
  subtopologies: SubTopology[];
  /** Every topic the worker consumes (sources, internal sources, tables, changelogs). */
  inputTopics: string[];
  internalTopics: { repartition: string[]; changelog: string[] };
  /** Which sub-topology and role a consumed topic has. */
  topicRoles: Map<string, { sub: number; role: "source" | "table" | "changelog"; store?: string }>;
}

export function compile(app: StreamApp): CompiledTopology {
  const { nodes, edges } = app.graph;
  if (nodes.length === 0) throw new TopologyError(`${app.appId}: the topology is empty`);
  const parent = nodes.map((n) => n.id);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x] as number] as number;
      x = parent[x] as number;
    }
    return x;
  };
  const union = (a: number, b: number) => {
    parent[find(a)] = find(b);
  };
  for (const e of edges) union(e.from, e.to);
  for (const n of nodes) if (n.kind === "operator") for (const r of n.reads) union(n.id, r);

  const groups = new Map<number, Node[]>();
  for (const n of nodes) {
    const root = find(n.id);
    const g = groups.get(root) ?? [];
    groups.set(root, g);
    g.push(n);
  }

  const readers = new Map<string, number>();
  const subtopologies: SubTopology[] = [];
  for (const members of groups.values()) {
    const id = subtopologies.length;
    const sources = members.filter((n): n is SourceNode => n.kind === "source");
    const tables = members.filter((n): n is TableNode => n.kind === "table");
    if (sources.length === 0) {
      throw new TopologyError(`${app.appId}: a part of the topology reads no stream (a table that nothing joins?)`);
    }
    for (const t of [...sources.map((s) => s.topic), ...tables.map((t) => t.topic)]) {
      if (readers.has(t)) {
        throw new TopologyError(`${app.appId}: topic ${t} is read twice; read it once and reuse the stream`);
      }
      readers.set(t, id);
    }
    const stores: StoreSpec[] = [];
    for (const n of members) {
      if (n.kind === "operator") {
        for (const s of n.operator.stores) {
          stores.push({ name: s.name, changelog: app.internalTopic(s.name, "changelog"), nodeId: n.id, config: s });
        }
      } else if (n.kind === "table") {
        // Decoded rows, never encoded: the table's topic is its log.
        stores.push({ name: n.store, changelog: null, nodeId: n.id, config: { name: n.store, serde: json() } });
      }
    }
    subtopologies.push({
      id,
      nodes: members.map((n) => n.id),
      sources,
      tables,
      stores,
      repartitions: members.filter((n): n is RepartitionNode => n.kind === "repartition"),
      outputTopics: members.flatMap((n) => (n.kind === "toTopic" ? [n.topic] : [])),
      externalTopics: [...sources.filter((s) => !s.internal).map((s) => s.topic), ...tables.map((t) => t.topic)],
      upstream: new Map(),
    });
  }
  for (const sub of subtopologies) {
    for (const r of sub.repartitions) {
      const reader = readers.get(r.topic);
      if (reader === undefined) throw new Error(`internal: repartition topic ${r.topic} has no reader`);
      subtopologies[reader]?.upstream.set(r.topic, sub.id);
    }
  }

  const topicRoles: CompiledTopology["topicRoles"] = new Map();
  for (const sub of subtopologies) {
    for (const s of sub.sources) topicRoles.set(s.topic, { sub: sub.id, role: "source" });
    for (const t of sub.tables) topicRoles.set(t.topic, { sub: sub.id, role: "table", store: t.store });
    for (const st of sub.stores) {
      if (st.changelog) topicRoles.set(st.changelog, { sub: sub.id, role: "changelog", store: st.name });
    }
  }
  return {
    app,
    subtopologies,
    inputTopics: [...topicRoles.keys()],
    internalTopics: {
      repartition: subtopologies.flatMap((s) => s.repartitions.map((r) => r.topic)),
      changelog: subtopologies.flatMap((s) => s.stores.flatMap((st) => (st.changelog ? [st.changelog] : []))),
    },
    topicRoles,
  };
}

/**
 * Partition counts: external topics of a sub-topology must agree (co-partitioning); a repartition
 * topic takes its reader's external count, or its upstream's when the reader has none.
 */
export function planPartitions(
  topology: CompiledTopology,
  external: Map<string, number>,
): { tasks: Map<number, number>; internal: Map<string, number> } {
  const tasks = new Map<number, number>();
  for (const sub of topology.subtopologies) {
    const counts = sub.externalTopics.map((t) => {
      const n = external.get(t);
      if (n === undefined) throw new TopologyError(`${topology.app.appId}: topic ${t} does not exist`);
      return [t, n] as const;
    });
    const distinct = new Set(counts.map(([, n]) => n));
    if (distinct.size > 1) {
      throw new TopologyError(
        `${topology.app.appId}: topics joined or merged in one step must have the same partition count (co-partitioning), but ${counts
          .map(([t, n]) => `${t} has ${n}`)
          .join(", ")}; repartition one side or fix the topics`,
      );
    }
    if (counts.length > 0) tasks.set(sub.id, counts[0]?.[1] as number);
  }
  // Sub-topologies fed only by repartition topics: explicit counts, else the largest upstream.
  for (let pass = 0; pass < topology.subtopologies.length; pass++) {
    for (const sub of topology.subtopologies) {
      if (tasks.has(sub.id)) continue;
      const wanted: number[] = [];
      for (const [topic, up] of sub.upstream) {
        const node = topology.subtopologies[up]?.repartitions.find((r) => r.topic === topic);
        if (node?.partitions) wanted.push(node.partitions);
        else if (tasks.has(up)) wanted.push(tasks.get(up) as number);
      }
      if (wanted.length === sub.upstream.size && wanted.length > 0) tasks.set(sub.id, Math.max(...wanted));
    }
  }
  const internal = new Map<string, number>();
  for (const sub of topology.subtopologies) {
    const n = tasks.get(sub.id);
    if (n === undefined) throw new TopologyError(`${topology.app.appId}: cannot size sub-topology ${sub.id}`);
    for (const [topic] of sub.upstream) internal.set(topic, n);
    for (const st of sub.stores) if (st.changelog) internal.set(st.changelog, n);
  }
  return { tasks, internal };
}
