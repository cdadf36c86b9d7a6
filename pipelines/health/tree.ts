// The availability hierarchy as a tree over a period: app > system > service > endpoint, each node with
// its requests, availability, the level it reaches (90% weak ... 99.9999% strong), its target, the
// error budget left over the period and the burn rate, and its alert episodes firing at the period's
// end. What the console's Health page draws. Counts are summed in ClickHouse (FINAL, so a replay counts
// once); no percentile here: the series (queries.ts' show) merge sketches for p99.
import { raw, sql } from "../../sinks/clickhouse/sql.ts";
import {
  compareText,
  HealthReader,
  isoSeconds,
  NODE_COLUMNS,
  type NodeColumns,
  nodeOf,
  readAlertEpisodes,
} from "./health-reader.ts";
import { burnRate, parseSince, periodOfData, type QueryOptions, resolutionFor } from "./queries.ts";
import { availabilityOf, budgetFigures } from "./report.ts";
import { classifyAvailability, type HealthNode, type Level, nodeName, SloConfig } from "./slo.ts";

export interface TreeNode extends HealthNode {
  name: string;
  requests: number;
  errors: number;
  slow: number;
  qps: number;
  availability: number | null;
  /** The highest availability level reached, null below 90% or without requests. */
  levelReached: string | null;
  target: number;
  targetLevel: string | null;
  /** 1 - errors / (errors the target allows over the period); negative once overspent; null without requests. */
  budgetLeft: number | null;
  burnRate: number | null;
  /** Alert episodes of this node firing at the end of the period. */
  alertsFiring: number;
  runbook: string;
  children: TreeNode[];
}

export interface HealthTree {
  from: string;
  to: string;
  periodMs: number;
  resolutionMs: number;
  /** The apps (roots); a tree limited to services has no app or system figures and lists services as roots. */
  roots: TreeNode[];
}

export interface TreeOptions extends QueryOptions {
  since: string | number;
  /** Only these services (a scoped token): their service and endpoint nodes, no app or system nodes. */
  services?: readonly string[];
}

interface TreeRow extends NodeColumns {
  requests: string;
  errors: string;
  slow: string;
}

const ORDER: Record<Level, number> = { APP: 0, SYSTEM: 1, SERVICE: 2, ENDPOINT: 3 };

export async function healthTree(options: TreeOptions): Promise<HealthTree> {
  const periodMs = typeof options.since === "number" ? options.since : parseSince(options.since);
  const resolutionMs = resolutionFor(periodMs);
  const slo = options.slo ?? SloConfig.load();
  const now = options.now === undefined ? Date.now() : typeof options.now === "number" ? options.now : +options.now;
  const reader = new HealthReader(options);
  try {
    const { from, to } = await periodOfData(reader, now, periodMs, resolutionMs);
    // An empty list of services reads nothing (a token scoped to services that have no rows).
    const scope =
      options.services === undefined
        ? "1"
        : options.services.length === 0
          ? "0"
          : sql`level IN ('SERVICE', 'ENDPOINT') AND has(${options.services}, service)`;
    const rows = await reader.select<TreeRow>(
      sql`SELECT ${raw(NODE_COLUMNS)}, sum(requests) AS requests, sum(errors) AS errors, sum(slow) AS slow
          FROM ${reader.metrics} FINAL
          WHERE window_ms = ${resolutionMs} AND window_start >= ${new Date(from)} AND window_start < ${new Date(to)}
            AND (${raw(scope)})
          GROUP BY ${raw(NODE_COLUMNS)}`,
    );
    const episodes =
      rows.length > 0
        ? await readAlertEpisodes(
            reader,
            from,
            to,
            options.services === undefined ? "1" : sql`has(${options.services}, service)`,
          )
        : [];
    const firing = new Map<string, number>();
    for (const e of episodes) {
      if (Date.parse(e.start) >= to || (e.end !== null && Date.parse(e.end) < to)) continue;
      firing.set(e.target, (firing.get(e.target) ?? 0) + 1);
    }
    const seconds = (to - from) / 1000;
    const nodes = rows.map((r): TreeNode => {
      const node = nodeOf(r);
      const requests = Number(r.requests);
      const errors = Number(r.errors);
      const o = slo.objectives(node);
      const availability = availabilityOf(requests, errors);
      const name = nodeName(node);
      return {
        ...node,
        name,
        requests,
        errors,
        slow: Number(r.slow),
        qps: requests / seconds,
        availability,
        levelReached: availability === null ? null : (classifyAvailability(availability)?.name ?? null),
        target: o.availability,
        targetLevel: classifyAvailability(o.availability)?.name ?? null,
        budgetLeft: budgetFigures(o.availability, requests, errors).left,
        burnRate: burnRate(requests, errors, o.availability),
        alertsFiring: firing.get(name) ?? 0,
        runbook: o.runbook,
        children: [],
      };
    });
    return {
      from: isoSeconds(from),
      to: isoSeconds(to),
      periodMs: to - from,
      resolutionMs,
      roots: assemble(nodes),
    };
  } finally {
    await reader.close();
  }
}

/** Nodes into a tree: each under its parent when the parent is there, else a root; children by name. */
export function assemble(nodes: TreeNode[]): TreeNode[] {
  const byKey = new Map<string, TreeNode>();
  const key = (level: Level, n: HealthNode) =>
    [level, n.app, level === "APP" ? "" : n.system, level === "SERVICE" || level === "ENDPOINT" ? n.service : ""]
      .join("\u0001")
      .concat(level === "ENDPOINT" ? `\u0001${n.endpoint}` : "");
  for (const n of nodes) byKey.set(key(n.level, n), n);
  const roots: TreeNode[] = [];
  for (const n of [...nodes].sort((a, b) => ORDER[a.level] - ORDER[b.level])) {
    const parentLevel: Level | null =
      n.level === "ENDPOINT" ? "SERVICE" : n.level === "SERVICE" ? "SYSTEM" : n.level === "SYSTEM" ? "APP" : null;
    const parent = parentLevel === null ? undefined : byKey.get(key(parentLevel, n));
    if (parent) parent.children.push(n);
    else roots.push(n);
  }
  const sort = (list: TreeNode[]) => {
    list.sort((a, b) => compareText(a.name, b.name));
    for (const n of list) sort(n.children);
  };
  sort(roots);
  return roots;
}
