// The fraud pipeline's cost per event as rules grow: the simulator's business events (behavior, coin,
// device) through `weir run fraud`'s topology with 10 / 100 / 1,000 rules of the benchmark's mix
// (bench/fraud/rules.ts), in one process on one core.
//
//   node --expose-gc --import tsx bench/fraud/bench.ts [--sim <dir> | --minutes 5 --seed 1] [--rules 10,100,1000] [--runs 3]
//        [--checkpoint-every <events>]
//
// Each rule count: one warm-up replay (not timed), then --runs timed replays, each on a fresh topology.
//
// The events are encoded as they are in their topics (Avro single-object encoding) before the clock
// starts, and piped through the stream runtime's task code (the TopologyTestDriver: the same Task the
// worker runs, its repartitions encoded and decoded as on Kafka, its state and watermarks). With
// --checkpoint-every n the driver checkpoints every n events inside the timed span, as the worker does
// every commit interval (the changed state encoded for the changelogs; at 10,000 events/s and the
// default 1 s interval, one every 10,000 events); without it none is taken. Kafka's client (fetching, producing, transactions) is not in the measure:
// this is the engine's cost per core, what Esper's is too (bench/peers/esper). Events per CPU-second
// count the process's user + system time over the replay.
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { SIMULATE_DEFAULTS, simulate } from "../../infra/simulator/simulate.ts";
import { readSimulatorEvents } from "../../pipelines/fraud/backtest.ts";
import { STREAMS, type StreamName } from "../../pipelines/fraud/cel/environment.ts";
import { encodeEvent } from "../../pipelines/fraud/engine/envelope.ts";
import { compileRuleSet, formatRuleProblem } from "../../pipelines/fraud/rules/compile.ts";
import type { RuleSetPlan } from "../../pipelines/fraud/rules/plan.ts";
import { FIXTURE_HASH_KEY } from "../../pipelines/fraud/rules/test-runner.ts";
import { fraudTopology } from "../../pipelines/fraud/topology.ts";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { CollectingSink, TopologyTestDriver } from "../../stream/testing/test-driver.ts";
import { benchFlags } from "../support/flags.ts";
import { writeBenchRules } from "./rules.ts";

export interface EncodedEvent {
  topic: string;
  key: string;
  ts: number;
  bytes: Buffer;
}

/** The business events of a simulator run, in event-time order, encoded as their topics hold them. */
export function encodedEvents(simDir: string): EncodedEvent[] {
  const events = readSimulatorEvents(simDir, new Set<StreamName>(["behavior", "coin", "device"]));
  return events.map((e) => ({
    topic: STREAMS[e.stream].topic,
    key: e.stream === "device" ? String(e.record.deviceId) : String(e.record.uid),
    ts: e.ts,
    bytes: encodeEvent(e.stream, e.record),
  }));
}

export interface ReplayResult {
  events: number;
  cpuSeconds: number;
  wallSeconds: number;
  signals: RiskSignal[];
  heapMiB: number;
}

/** The events through the fraud topology running `plan`, timed. */
export function replay(plan: RuleSetPlan, events: readonly EncodedEvent[], checkpointEvery = 0): ReplayResult {
  const sink = new CollectingSink<RiskSignal>();
  const { app } = fraudTopology(plan, { hashKey: FIXTURE_HASH_KEY, signalsTopic: null, signalSinks: [sink] });
  const driver = new TopologyTestDriver(app, { retain: false, announceEvery: 500 });
  // With --expose-gc: the garbage of what ran before (the last replay's topology, a few hundred MiB)
  // is collected here, not inside this replay's timed span (runs differed by 1.7x without it).
  (globalThis as { gc?: () => void }).gc?.();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let n = 0;
  for (const e of events) {
    driver.pipeRaw(e.topic, e.bytes, { key: e.key, ts: e.ts });
    if (checkpointEvery > 0 && ++n % checkpointEvery === 0) driver.checkpoint();
  }
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  driver.close();
  return {
    events: events.length,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    wallSeconds,
    signals: sink.records.map((r) => r.value),
    heapMiB: process.memoryUsage().heapUsed / 2 ** 20,
  };
}

export function benchPlan(rules: number, dir: string): RuleSetPlan {
  writeBenchRules(dir, rules);
  const r = compileRuleSet(dir);
  if (!r.plan) throw new Error(`bench rules do not compile:\n${r.problems.map(formatRuleProblem).join("\n")}`);
  return r.plan;
}

export async function simulatorRun(minutes: number, seed: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "weir-fraud-bench-sim-"));
  await simulate({
    ...SIMULATE_DEFAULTS,
    seed,
    durationMs: minutes * 60_000,
    out: dir,
  });
  return dir;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const { flag, num } = benchFlags();
  const counts = (flag("rules") ?? "10,100,1000").split(",").map(Number);
  const runs = num("runs", 3);
  const checkpointEvery = flag("checkpoint-every") === undefined ? 0 : num("checkpoint-every", 1);
  const given = flag("sim");
  const simDir = given ?? (await simulatorRun(num("minutes", 5), num("seed", 1)));
  const events = encodedEvents(simDir);
  const byStream = new Map<string, number>();
  for (const e of events) byStream.set(e.topic, (byStream.get(e.topic) ?? 0) + 1);
  console.log(
    `${events.length.toLocaleString("en")} events (${[...byStream].map(([t, n]) => `${t} ${n}`).join(", ")}) from ${simDir}`,
  );
  const rulesDir = mkdtempSync(join(tmpdir(), "weir-fraud-bench-rules-"));
  const rows: string[] = [];
  try {
    for (const n of counts) {
      const plan = benchPlan(n, join(rulesDir, String(n)));
      // Warm-up outside the timed runs: the JIT compiles the engine's and the rules' paths.
      const warm = replay(plan, events, checkpointEvery);
      console.log(
        `${n} rules, warm-up: ${Math.round(warm.events / warm.cpuSeconds).toLocaleString("en")} events/CPU-s`,
      );
      const results: ReplayResult[] = [];
      for (let r = 0; r < runs; r++) {
        const res = replay(plan, events, checkpointEvery);
        results.push(res);
        console.log(
          `${n} rules, run ${r + 1}: ${Math.round(res.events / res.cpuSeconds).toLocaleString("en")} events/CPU-s, ${((res.cpuSeconds * 1e6) / res.events).toFixed(2)} µs/event, ${res.signals.length} signals, heap ${res.heapMiB.toFixed(0)} MiB`,
        );
      }
      const cpu = median(results.map((x) => x.cpuSeconds));
      const signals = new Set(results.map((x) => x.signals.length));
      const rates = results.map((x) => Math.round(x.events / x.cpuSeconds).toLocaleString("en"));
      const cpus = results.map((x) => x.cpuSeconds);
      rows.push(
        `| ${n} | ${rates.join(", ")} | ${Math.round(events.length / cpu).toLocaleString("en")} | ${Math.round(events.length / Math.max(...cpus)).toLocaleString("en")}-${Math.round(events.length / Math.min(...cpus)).toLocaleString("en")} | ${((cpu * 1e6) / events.length).toFixed(2)} | ${[...signals].join(" / ")} |`,
      );
    }
  } finally {
    rmSync(rulesDir, { recursive: true, force: true });
    if (!given) rmSync(simDir, { recursive: true, force: true });
  }
  console.log(
    `\nload average at the end: ${loadavg()
      .map((x) => x.toFixed(1))
      .join(
        " ",
      )} (${cpus().length} cores); ${checkpointEvery > 0 ? `a checkpoint every ${checkpointEvery.toLocaleString("en")} events` : "no checkpoint"}`,
  );
  console.log(
    "\n| rules | events/CPU-s per run | median | spread (min-max) | µs per event (median) | signals |\n|---:|---|---:|---|---:|---:|",
  );
  for (const r of rows) console.log(r);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
