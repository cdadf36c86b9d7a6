// Sink metrics in a prom-client registry that several sinks of one kind share: a worker serves one
// /metrics, and the health pipeline alone has two ClickHouse sinks. prom-client refuses a second
// metric of one name, so the first sink of a kind creates each metric and later ones join it: the
// metric's collect() reads every member, each under its own labels.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

type Labels = Record<string, string>;
type Member = { labels: Labels; read: () => number };
type Multi = { labels: Labels; read: () => Iterable<[Labels, number]> };

const members = new WeakMap<Registry, Map<string, Array<Member | Multi>>>();

function join(registry: Registry, name: string, member: Member | Multi): Array<Member | Multi> | null {
  let byName = members.get(registry);
  if (!byName) {
    byName = new Map();
    members.set(registry, byName);
  }
  const list = byName.get(name);
  if (list) {
    list.push(member);
    return null;
  }
  const created = [member];
  byName.set(name, created);
  return created;
}

/** A counter of one value per sink, read when scraped. */
export function sinkCounter(registry: Registry, name: string, help: string, labels: Labels, read: () => number): void {
  const list = join(registry, name, { labels, read });
  if (!list) return;
  new Counter({
    name,
    help,
    labelNames: Object.keys(labels),
    registers: [registry],
    collect() {
      this.reset();
      for (const m of list) this.inc(m.labels, (m as Member).read());
    },
  });
}

/**
 * A counter with an extra label whose values the sink knows only when scraped (an error type):
 * `read` gives the extra labels and the count of each.
 */
export function sinkCounterBy(
  registry: Registry,
  name: string,
  help: string,
  labels: Labels,
  extraLabels: readonly string[],
  read: () => Iterable<[Labels, number]>,
): void {
  const list = join(registry, name, { labels, read });
  if (!list) return;
  new Counter({
    name,
    help,
    labelNames: [...Object.keys(labels), ...extraLabels],
    registers: [registry],
    collect() {
      this.reset();
      for (const m of list) for (const [extra, n] of (m as Multi).read()) this.inc({ ...m.labels, ...extra }, n);
    },
  });
}

/** A gauge of one value per sink, read when scraped. */
export function sinkGauge(registry: Registry, name: string, help: string, labels: Labels, read: () => number): void {
  const list = join(registry, name, { labels, read });
  if (!list) return;
  new Gauge({
    name,
    help,
    labelNames: Object.keys(labels),
    registers: [registry],
    collect() {
      for (const m of list) this.set(m.labels, (m as Member).read());
    },
  });
}

/** Buckets (seconds) for a store's request latency: 5 ms to 10 s. */
export const REQUEST_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The sink's own child of a histogram the sinks of its kind share. */
export function sinkHistogram(
  registry: Registry,
  name: string,
  help: string,
  labels: Labels,
  buckets: number[],
): ReturnType<Histogram["labels"]> {
  const existing = registry.getSingleMetric(name) as Histogram | undefined;
  const histogram =
    existing ?? new Histogram({ name, help, labelNames: Object.keys(labels), buckets, registers: [registry] });
  return histogram.labels(labels);
}
