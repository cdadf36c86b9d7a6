// Alerts from the 1 s rows: multi-window, multi-burn-rate rules on the availability and latency
// objectives (Google's SRE workbook), and a sudden-spike rule (one second's requests over N times the
// recent baseline: the hot-event case). Each (node, rule) is a small state machine: it fires once,
// stays quiet while firing, and resolves once its condition has been false for `resolveAfter`.
//
// State lives in the step's keyed store, so it is changelogged and survives a crash:
//   - per node and window length, a ring of slots of [slot start, requests, errors, slow]: a window
//     of any length costs at most ~60 slots (1 s slots up to 1 min, 2 s for 2 min, 1 min for 1 h, ...);
//     only the slot being filled changes each second, so the changelog carries little;
//   - per node, its alert states; and the list of nodes with firing alerts, so that a node gone
//     silent still resolves.

import type { SchemaTypes } from "../../schemas/types.generated.ts";
import type { KeyValueAccess } from "../../stream/operators/process.ts";
import type { HealthMetric } from "./rows.ts";
import {
  type BurnRateRule,
  type HealthNode,
  type Level,
  nodeId,
  nodeName,
  type SloConfig,
  type SpikeRule,
} from "./slo.ts";

export type HealthAlert = SchemaTypes["HealthAlert"];

const SECOND = 1000;
const SEP = "\u0002";
const FIRING_INDEX = "firing";

interface Ring {
  windowMs: number;
  slotMs: number;
  slots: number;
}

/** [slot start, requests, errors, slow, seconds with traffic] */
type Slot = [number, number, number, number, number];

interface Episode {
  id: string;
  startedAt: number;
  observed: number;
  /** When the condition was first seen false since it last held; null while it holds. */
  clearSince: number | null;
}

interface NodeState {
  node: HealthNode;
  /** Start of the node's current stretch of traffic: reset after a silence longer than the spike baseline. */
  firstSeen: number;
  lastSeen: number;
  /** End of the last second evaluated. */
  evaluatedTo: number;
  firing: Record<string, Episode>;
}

interface Sums {
  requests: number;
  errors: number;
  slow: number;
  /** Seconds that had requests: a silence does not dilute a spike's baseline. */
  active: number;
}

export function ringFor(windowMs: number): Ring {
  const slotMs = Math.max(SECOND, Math.ceil(windowMs / SECOND / 60) * SECOND);
  // One slot more than the window spans, so the oldest slot still in the window is never the one being refilled.
  return { windowMs, slotMs, slots: Math.ceil(windowMs / slotMs) + 1 };
}

export class AlertEvaluator {
  private readonly rings: Ring[];
  private readonly ringByWindow = new Map<number, Ring>();
  private readonly rules: BurnRateRule[];
  private readonly spike: SpikeRule | null;
  private readonly levels: Set<Level>;
  /** How long the store must keep a slot: the longest window. */
  readonly retentionMs: number;

  constructor(
    private readonly slo: SloConfig,
    /** Grace of the 1 s windows: a second is complete once the watermark passes its end + grace. */
    private readonly graceMs: number,
  ) {
    const a = slo.file.alerts;
    this.rules = a.rules;
    this.spike = a.spike;
    this.levels = new Set(a.levels);
    const windows = new Set<number>();
    for (const r of this.rules) windows.add(r.long).add(r.short);
    if (this.spike) windows.add(this.spike.baseline);
    this.rings = [...windows].sort((x, y) => x - y).map(ringFor);
    for (const r of this.rings) this.ringByWindow.set(r.windowMs, r);
    this.retentionMs = Math.max(SECOND, ...windows) + SECOND;
  }

  /** Whether rows of this level are evaluated. */
  watches(level: Level): boolean {
    return this.levels.has(level);
  }

  /** A final 1 s row: counts go into the node's rings and its rules are evaluated as of the second's end. */
  onRow(row: HealthMetric, store: KeyValueAccess, emit: (a: HealthAlert) => void): void {
    if (row.windowMs !== SECOND || !this.watches(row.level)) return;
    const node: HealthNode = row;
    const id = nodeId(node);
    const end = row.windowStart + SECOND;
    let state = store.get(`n${SEP}${id}`) as NodeState | undefined;
    if (state === undefined) {
      state = {
        node: { level: row.level, app: row.app, system: row.system, service: row.service, endpoint: row.endpoint },
        firstSeen: row.windowStart,
        lastSeen: row.windowStart,
        evaluatedTo: row.windowStart,
        firing: {},
      };
    }
    if (end <= state.evaluatedTo) return; // a replayed second this node has already counted
    // Back after a long silence: its history starts again (a baseline of nothing is no baseline).
    if (row.windowStart - state.lastSeen > (this.spike?.baseline ?? 300_000)) state.firstSeen = row.windowStart;
    state.lastSeen = row.windowStart;
    for (const ring of this.rings) this.addToRing(store, id, ring, row, end);
    // Seconds without traffic between the last row and this one are evaluated first (so a clearing alert's clock runs).
    this.catchUp(state, id, store, emit, row.windowStart);
    this.evaluate(state, id, store, emit, end, row.requests);
  }

  /** The watermark moved: nodes with a firing alert that have gone silent are evaluated with no traffic. */
  onWatermark(watermark: number, store: KeyValueAccess, emit: (a: HealthAlert) => void): void {
    const complete = Math.floor((watermark + 1 - this.graceMs) / SECOND) * SECOND;
    const firing = (store.get(FIRING_INDEX) as string[] | undefined) ?? [];
    for (const id of firing) {
      const state = store.get(`n${SEP}${id}`) as NodeState | undefined;
      if (state && state.evaluatedTo < complete) this.catchUp(state, id, store, emit, complete);
    }
  }

  private catchUp(state: NodeState, id: string, store: KeyValueAccess, emit: (a: HealthAlert) => void, to: number) {
    // Only firing alerts can change on silence; at most one resolve window's worth of seconds matters.
    while (state.evaluatedTo < to && Object.keys(state.firing).length > 0) {
      this.evaluate(state, id, store, emit, state.evaluatedTo + SECOND, 0);
    }
    if (state.evaluatedTo < to) state.evaluatedTo = to;
  }

  private evaluate(
    state: NodeState,
    id: string,
    store: KeyValueAccess,
    emit: (a: HealthAlert) => void,
    end: number,
    requestsThisSecond: number,
  ): void {
    const wasFiring = Object.keys(state.firing).length > 0;
    const objectives = this.slo.objectives(state.node);
    const minRequests = this.slo.file.alerts.minRequests;
    const minBad = this.slo.file.alerts.minBad;
    const history = end - state.firstSeen;
    for (const rule of this.rules) {
      // A short window not yet full of history is no evidence (a worker's first seconds would page).
      if (history < rule.short && state.firing[rule.name] === undefined) continue;
      const long = this.sum(store, id, rule.long, end);
      const short = this.sum(store, id, rule.short, end);
      const budget = rule.slo === "availability" ? 1 - objectives.availability : 1 - objectives.latencyTarget;
      const badL = rule.slo === "availability" ? long.errors : long.slow;
      const badS = rule.slo === "availability" ? short.errors : short.slow;
      const burnL = long.requests > 0 ? badL / long.requests / budget : 0;
      const burnS = short.requests > 0 ? badS / short.requests / budget : 0;
      const holds = short.requests >= minRequests && badL >= minBad && burnL >= rule.burn && burnS >= rule.burn;
      this.step(state, emit, end, rule.name, holds, burnL, () =>
        this.burnAlert(state.node, rule, objectives, burnL, burnS, long),
      );
    }
    if (this.spike) {
      const sp = this.spike;
      const seen = history - SECOND;
      let holds = false;
      let multiple = 0;
      let baseline = 0;
      if (seen >= sp.minHistory) {
        const base = this.sum(store, id, sp.baseline, end);
        // The mean of the seconds that had traffic, this one excepted.
        const seconds = Math.max(1, base.active - (requestsThisSecond > 0 ? 1 : 0));
        baseline = Math.max(0, base.requests - requestsThisSecond) / seconds;
        multiple = requestsThisSecond / Math.max(baseline, 1e-9);
        holds = requestsThisSecond >= sp.minRequests && multiple > sp.factor;
      }
      this.step(state, emit, end, "spike", holds, multiple, () => ({
        kind: "SPIKE",
        severity: sp.severity === "page" ? "PAGE" : "TICKET",
        threshold: sp.factor,
        objective: null,
        longWindowMs: sp.baseline,
        shortWindowMs: SECOND,
        message: `${nodeName(state.node)}: ${requestsThisSecond} requests in one second, ${multiple.toFixed(1)}x the ${fmtDuration(sp.baseline)} baseline of ${baseline.toFixed(1)}/s (threshold ${sp.factor}x)`,
        runbook: objectives.runbook,
      }));
    }
    state.evaluatedTo = end;
    store.put(`n${SEP}${id}`, state, end);
    const isFiring = Object.keys(state.firing).length > 0;
    // The index is rewritten on every change, and hourly while it holds, so the store's TTL never drops it.
    if (isFiring !== wasFiring || (isFiring && end % 3_600_000 === 0)) {
      const firing = new Set((store.get(FIRING_INDEX) as string[] | undefined) ?? []);
      if (isFiring) firing.add(id);
      else firing.delete(id);
      store.put(FIRING_INDEX, [...firing], end);
    }
  }

  /** One (node, rule) state machine step at the end of a second. */
  private step(
    state: NodeState,
    emit: (a: HealthAlert) => void,
    end: number,
    rule: string,
    holds: boolean,
    observed: number,
    describe: () => Omit<
      HealthAlert,
      | "id"
      | "ts"
      | "rule"
      | "state"
      | "level"
      | "app"
      | "system"
      | "service"
      | "endpoint"
      | "observed"
      | "startedAt"
      | "resolvedAt"
    >,
  ): void {
    const episode = state.firing[rule];
    const n = state.node;
    const base = { level: n.level, app: n.app, system: n.system, service: n.service, endpoint: n.endpoint, rule };
    if (episode === undefined) {
      if (!holds) return;
      const id = `${rule}/${n.level.toLowerCase()}/${nodeName(n)}/${new Date(end).toISOString()}`;
      state.firing[rule] = { id, startedAt: end, observed, clearSince: null };
      emit({ ...describe(), ...base, id, ts: end, state: "FIRING", observed, startedAt: end, resolvedAt: null });
      return;
    }
    if (holds) {
      episode.clearSince = null;
      if (observed > episode.observed) episode.observed = observed;
      return;
    }
    episode.clearSince ??= end;
    if (end - episode.clearSince < this.slo.file.alerts.resolveAfter) return;
    delete state.firing[rule];
    emit({
      ...describe(),
      ...base,
      id: episode.id,
      ts: end,
      state: "RESOLVED",
      observed: episode.observed,
      startedAt: episode.startedAt,
      resolvedAt: episode.clearSince,
    });
  }

  private burnAlert(
    node: HealthNode,
    rule: BurnRateRule,
    o: { availability: number; latencyTarget: number; latencyThresholdUs: number; runbook: string },
    burnL: number,
    burnS: number,
    long: Sums,
  ) {
    const windows = `${fmtDuration(rule.long)}: ${burnL.toFixed(1)}x, ${fmtDuration(rule.short)}: ${burnS.toFixed(1)}x, threshold ${rule.burn}x`;
    const what =
      rule.slo === "availability"
        ? `error budget burning (availability ${pct(1 - long.errors / Math.max(1, long.requests))} over ${fmtDuration(rule.long)} vs objective ${pct(o.availability)})`
        : `latency budget burning (${pct(long.slow / Math.max(1, long.requests))} of requests slower than ${o.latencyThresholdUs / 1000} ms over ${fmtDuration(rule.long)}, objective ${pct(o.latencyTarget)} faster)`;
    return {
      kind: rule.slo === "availability" ? ("BURN_RATE" as const) : ("LATENCY" as const),
      severity: rule.severity === "page" ? ("PAGE" as const) : ("TICKET" as const),
      threshold: rule.burn,
      objective: rule.slo === "availability" ? o.availability : o.latencyTarget,
      longWindowMs: rule.long,
      shortWindowMs: rule.short,
      message: `${nodeName(node)}: ${what}; ${windows}`,
      runbook: o.runbook,
    };
  }

  private addToRing(store: KeyValueAccess, id: string, ring: Ring, row: HealthMetric, end: number): void {
    const k = Math.floor(row.windowStart / ring.slotMs);
    const key = `s${SEP}${id}${SEP}${ring.windowMs}${SEP}${k % ring.slots}`;
    const start = k * ring.slotMs;
    const old = store.get(key) as Slot | undefined;
    const slot: Slot =
      old !== undefined && old[0] === start
        ? [start, old[1] + row.requests, old[2] + row.errors, old[3] + row.slow, (old[4] ?? 0) + 1]
        : [start, row.requests, row.errors, row.slow, 1];
    store.put(key, slot, end);
  }

  /** Counts of the node over [end - windowMs, end), at the ring's slot resolution. */
  private sum(store: KeyValueAccess, id: string, windowMs: number, end: number): Sums {
    const ring = this.ringByWindow.get(windowMs) as Ring;
    const from = end - windowMs;
    const out: Sums = { requests: 0, errors: 0, slow: 0, active: 0 };
    const prefix = `s${SEP}${id}${SEP}${windowMs}${SEP}`;
    for (let i = 0; i < ring.slots; i++) {
      const slot = store.get(prefix + i) as Slot | undefined;
      if (slot === undefined || slot[0] + ring.slotMs <= from || slot[0] >= end) continue;
      out.requests += slot[1];
      out.errors += slot[2];
      out.slow += slot[3];
      out.active += slot[4] ?? 0;
    }
    return out;
  }
}

function pct(x: number): string {
  return `${(x * 100).toFixed(x > 0.999 ? 3 : 2)}%`;
}

export function fmtDuration(msValue: number): string {
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const) {
    if (msValue >= size && msValue % size === 0) return `${msValue / size}${unit}`;
  }
  return `${msValue}ms`;
}
