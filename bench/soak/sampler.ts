// What the soak samples every few seconds, from outside the processes: each one's resident memory and
// CPU time from /proc, each consumer group's lag (committed offsets against the end offsets of its
// input topics and its internal repartition topics), and the shipper's
// own backlog from its /metrics.
import { readFileSync } from "node:fs";
import type { Admin } from "kafkajs";
import { cpuMsOf } from "../support/process.ts";

/** Resident memory of a process from /proc/<pid>/status (bytes), 0 once it is gone. */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export interface GroupLag {
  /** Records (and transaction markers: at most one per partition at rest) not committed yet. */
  lag: number;
  /** Sum of the end offsets of the group's topics: its input so far, for a rate. */
  ends: number;
  /** Partitions the group has committed on. */
  partitions: number;
}

/**
 * A group's lag over `topics` (its inputs and its repartition topics). A partition the group has not
 * committed on counts from its start.
 */
export async function groupLag(admin: Admin, groupId: string, topics: readonly string[]): Promise<GroupLag> {
  const committed = await admin.fetchOffsets({ groupId, topics: [...topics] });
  let lag = 0;
  let ends = 0;
  let partitions = 0;
  for (const topic of topics) {
    const mine = new Map(
      (committed.find((c) => c.topic === topic)?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]),
    );
    for (const p of await admin.fetchTopicOffsets(topic)) {
      const high = Number(p.high);
      const c = mine.get(p.partition) ?? -1;
      lag += Math.max(0, high - (c >= 0 ? c : Number(p.low)));
      ends += high;
      partitions++;
    }
  }
  return { lag, ends, partitions };
}

/** The repartition topics of a stream app (`<appId>-<name>-repartition`): its groups read them too. */
export function repartitionTopics(all: readonly string[], appId: string): string[] {
  return all.filter((t) => t.startsWith(`${appId}-`) && t.endsWith("-repartition")).sort();
}

/** A metric of a Prometheus page on 127.0.0.1, summed over its label sets; null when the page does not answer. */
export async function metricOf(port: number, name: string): Promise<number | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    let sum = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))) sum += Number(m[1]);
    return sum;
  } catch {
    return null;
  }
}

/** The machine's CPU time from /proc/stat's first line, in ticks: busy (all but idle and iowait) and in all. */
export function machineTicks(): { busy: number; total: number } {
  try {
    const f = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

export { cpuMsOf };
