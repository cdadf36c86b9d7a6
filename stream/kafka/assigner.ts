// Assigns tasks, not partitions: every topic-partition a task reads (its sources' partition p, its
// tables' and changelogs' partition p) goes to the same member, which plain round-robin does not
// guarantee. Sticky: a member keeps the tasks it had (its state is warm) as far as balance allows;
// members announce what they own in the group protocol's user data (the protocol is the client's:
// stream/kafka/client.ts).
import type { CompiledTopology } from "../dsl/compile.ts";

export interface TaskId {
  sub: number;
  partition: number;
}

export function taskKey(t: TaskId): string {
  return `${t.sub}_${t.partition}`;
}

/** Balanced, sticky distribution of task ids over members. Pure, for tests. */
export function distribute(tasks: string[], members: Array<{ id: string; owned: string[] }>): Map<string, string[]> {
  const sorted = [...members].sort((a, b) => a.id.localeCompare(b.id));
  const out = new Map<string, string[]>(sorted.map((m) => [m.id, []]));
  if (sorted.length === 0) return out;
  const floor = Math.floor(tasks.length / sorted.length);
  let ceilSlots = tasks.length % sorted.length;
  const valid = new Set(tasks);
  const taken = new Set<string>();
  for (const m of sorted) {
    const mine = out.get(m.id) as string[];
    for (const t of m.owned) {
      if (!valid.has(t) || taken.has(t)) continue;
      const cap = floor + (ceilSlots > 0 ? 1 : 0);
      if (mine.length >= cap) break;
      mine.push(t);
      taken.add(t);
    }
    if (mine.length > floor) ceilSlots--;
  }
  const free = tasks.filter((t) => !taken.has(t));
  for (const t of free) {
    let best: string[] | null = null;
    for (const m of sorted) {
      const mine = out.get(m.id) as string[];
      if (!best || mine.length < best.length) best = mine;
    }
    best?.push(t);
  }
  return out;
}

/**
 * Each member's assignment (topic -> partitions): every task of the topology, distributed over the
 * members (`distribute`), each task as all its topics' partition p. Pure: the group's assigner runs
 * it (stream/kafka/client.ts), and so does the in-memory group of stream/testing/fake-kafka.ts.
 */
export function assignTasks(
  topology: CompiledTopology,
  taskCounts: Map<number, number>,
  members: Array<{ id: string; owned: string[] }>,
): Map<string, Record<string, number[]>> {
  const allTasks: string[] = [];
  for (const sub of topology.subtopologies) {
    for (let p = 0; p < (taskCounts.get(sub.id) ?? 0); p++) allTasks.push(taskKey({ sub: sub.id, partition: p }));
  }
  const topicsOfSub = new Map<number, string[]>();
  for (const [topic, role] of topology.topicRoles) {
    const list = topicsOfSub.get(role.sub) ?? [];
    list.push(topic);
    topicsOfSub.set(role.sub, list);
  }
  const out = new Map<string, Record<string, number[]>>();
  for (const [memberId, tasks] of distribute(allTasks, members)) {
    const assignment: Record<string, number[]> = {};
    for (const t of tasks) {
      const [sub, partition] = t.split("_").map(Number) as [number, number];
      for (const topic of topicsOfSub.get(sub) ?? []) {
        const list = assignment[topic] ?? [];
        list.push(partition);
        assignment[topic] = list;
      }
    }
    out.set(memberId, assignment);
  }
  return out;
}
