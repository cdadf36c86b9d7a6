// weir vs Esper 9 on the same velocity, distinct-count and sequence rules over the same events.
//
//   node --import tsx bench/fraud/peer.ts --sim <dir> [--runs 5] [--out /tmp/weir-fraud-peer]
//   (builds bench/peers/esper with Maven when its jar is missing)
//
// The simulator's behaviour and coin events are written, in event-time order, to one JSON-lines file
// that both sides read before their clocks start. The rules are three of the benchmark's templates
// (bench/fraud/rules.ts) in their five variants, 15 rules: room hops (count of ROOM_ENTER per uid in
// 10 min), accounts per device (distinct uids of LOGIN/REGISTER per device in 1 h) and recharge then
// gift (RECHARGE then a GIFT of >= 90% of it by the same uid within 30 min). Esper runs the EPL this
// file writes for each (rules.tsv beside the events), with weir's cool-down per (rule, entity)
// applied to its output; weir runs the rules through its fraud topology on the stream runtime's test
// driver, as bench/fraud/bench.ts. Both sides' signals (rule, entity, time) are compared.
//
// Each side: one warm-up pass over all the events (not timed), then --runs timed passes, each on a
// fresh engine; CPU time of the whole process (user + system, every thread), as events per
// CPU-second. Esper: `java -Xms1g -Xmx1g`.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readSimulatorEvents } from "../../pipelines/fraud/backtest.ts";
import { STREAMS, type StreamName } from "../../pipelines/fraud/cel/environment.ts";
import { encodeEvent } from "../../pipelines/fraud/engine/envelope.ts";
import type { RuleSetPlan } from "../../pipelines/fraud/rules/plan.ts";
import { benchFlags } from "../support/flags.ts";
import { benchPlan, type EncodedEvent, replay } from "./bench.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PEER_DIR = join(ROOT, "bench/peers/esper");
const PEER_JAR = join(PEER_DIR, "target/esper-peer.jar");

/** The templates both sides run, and each variant's EPL (the parameters are those of bench/fraud/rules.ts). */
const PEER_TEMPLATES: Record<string, (v: number) => string> = {
  // weir's windows hold [t - size, t]; Esper's #time(X) holds (t - X, t]: X = size + 1 ms.
  room_hops: (v) =>
    `select uid as entity, ts from Behavior(type = 'ROOM_ENTER', uid is not null)#time(${10 * 60_000 + 1} msec) group by uid having count(*) >= ${20 + 5 * v}`,
  accounts_per_device: (v) =>
    `select deviceId as entity, ts from Behavior(type in ('LOGIN', 'REGISTER'), deviceId is not null, uid is not null)#time(${3_600_000 + 1} msec) group by deviceId having count(distinct uid) >= ${3 + v}`,
  recharge_then_gift: (v) =>
    `select r.uid as entity, g.ts as ts from pattern [every r=Coin(type = 'RECHARGE', uid is not null, amount >= ${1000 * (v + 1)}) -> (g=Coin(type = 'GIFT', counterpartUid is not null, uid = r.uid, amount * 10 >= r.amount * 9) where timer:within(${30 * 60_000 + 1} msec))]`,
};

interface PeerRun {
  run: number;
  warmup: boolean;
  events: number;
  cpuSeconds: number;
  wallSeconds: number;
  signals: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

function peerPlan(dir: string): { plan: RuleSetPlan; rulesTsv: string } {
  const all = benchPlan(100, dir);
  const rules = all.rules.filter((r) => {
    const t = r.id.split(".")[1] as string;
    return t in PEER_TEMPLATES;
  });
  const tsv = rules.map((r) => {
    const [, template, variant] = r.id.split(".") as [string, string, string];
    const epl = (PEER_TEMPLATES[template] as (v: number) => string)(Number(variant.slice(1)));
    return `${r.id}\t${r.cooldownMs}\t${epl}`;
  });
  return { plan: { ...all, rules }, rulesTsv: `${tsv.join("\n")}\n` };
}

async function main(): Promise<void> {
  const { flag, num } = benchFlags();
  const sim = flag("sim");
  if (!sim) throw new Error("--sim <dir>: the folder of a weir simulate run");
  const runs = num("runs", 5);
  const out = flag("out") ?? join(tmpdir(), "weir-fraud-peer");
  mkdirSync(out, { recursive: true });
  if (!existsSync(PEER_JAR)) execFileSync("mvn", ["-q", "-f", join(PEER_DIR, "pom.xml"), "package", "-DskipTests"]);

  // The events, written once; each side reads the file back before its clock starts.
  const streams = new Set<StreamName>(["behavior", "coin"]);
  const eventsFile = join(out, "events.jsonl");
  const lines = readSimulatorEvents(sim, streams).map((e) => JSON.stringify({ stream: e.stream, event: e.record }));
  writeFileSync(eventsFile, `${lines.join("\n")}\n`);
  const rulesDir = mkdtempSync(join(tmpdir(), "weir-fraud-peer-rules-"));
  const { plan, rulesTsv } = peerPlan(rulesDir);
  rmSync(rulesDir, { recursive: true, force: true });
  const rulesFile = join(out, "rules.tsv");
  writeFileSync(rulesFile, rulesTsv);

  const events: EncodedEvent[] = readFileSync(eventsFile, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const { stream, event } = JSON.parse(l) as { stream: StreamName; event: Record<string, unknown> };
      return {
        topic: STREAMS[stream].topic,
        key: String(event.uid ?? ""),
        ts: event.ts as number,
        bytes: encodeEvent(stream, event),
      };
    });
  console.log(`${events.length.toLocaleString("en")} events, ${plan.rules.length} rules, ${runs} timed runs a side`);

  // weir
  replay(plan, events); // warm-up
  const weirRuns: Array<{ cpuSeconds: number; wallSeconds: number; signals: number }> = [];
  let weirSignals: string[] = [];
  for (let r = 0; r < runs; r++) {
    (globalThis as { gc?: () => void }).gc?.();
    const res = replay(plan, events);
    weirRuns.push({ cpuSeconds: res.cpuSeconds, wallSeconds: res.wallSeconds, signals: res.signals.length });
    weirSignals = res.signals.map((s) => `${s.ruleId}\t${s.entity.id}\t${s.ts}`);
    console.log(
      `weir  run ${r + 1}: ${Math.round(events.length / res.cpuSeconds).toLocaleString("en")} events/CPU-s (${res.cpuSeconds.toFixed(3)} CPU-s), ${res.signals.length} signals`,
    );
  }

  // Esper
  const signalsFile = join(out, "esper-signals.tsv");
  const java = spawnSync(
    "java",
    ["-Xms1g", "-Xmx1g", "-jar", PEER_JAR, eventsFile, rulesFile, String(runs), signalsFile],
    { encoding: "utf8", maxBuffer: 64 * 2 ** 20 },
  );
  if (java.status !== 0) throw new Error(`the Esper peer failed:\n${java.stderr}`);
  const esperRuns = java.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as PeerRun);
  for (const r of esperRuns)
    console.log(
      `esper run ${r.warmup ? "0 (warm-up)" : r.run}: ${Math.round(r.events / r.cpuSeconds).toLocaleString("en")} events/CPU-s (${r.cpuSeconds.toFixed(3)} CPU-s), ${r.signals} signals`,
    );
  const timed = esperRuns.filter((r) => !r.warmup);
  const esperSignals = readFileSync(signalsFile, "utf8")
    .split("\n")
    .filter((l) => l !== "");

  // Same signals?
  const w = new Set(weirSignals);
  const e = new Set(esperSignals);
  const onlyWeir = [...w].filter((x) => !e.has(x));
  const onlyEsper = [...e].filter((x) => !w.has(x));
  const perRule = plan.rules.map((r) => {
    const count = (xs: Iterable<string>) => [...xs].filter((x) => x.startsWith(`${r.id}\t`)).length;
    return `| ${r.id} | ${count(w)} | ${count(e)} | ${count(onlyWeir)} | ${count(onlyEsper)} |`;
  });
  const rate = (xs: Array<{ cpuSeconds: number }>) => xs.map((x) => events.length / x.cpuSeconds);
  const wr = rate(weirRuns);
  const er = rate(timed);
  console.log("\n| rule | weir signals | Esper signals | only weir | only Esper |\n|---|---:|---:|---:|---:|");
  for (const l of perRule) console.log(l);
  console.log(
    `\n| engine | events/CPU-s per run | median | spread (min-max) |\n|---|---|---:|---|\n` +
      `| weir | ${wr.map((x) => Math.round(x).toLocaleString("en")).join(", ")} | ${Math.round(median(wr)).toLocaleString("en")} | ${Math.round(Math.min(...wr)).toLocaleString("en")}-${Math.round(Math.max(...wr)).toLocaleString("en")} |\n` +
      `| Esper 9.0.0 | ${er.map((x) => Math.round(x).toLocaleString("en")).join(", ")} | ${Math.round(median(er)).toLocaleString("en")} | ${Math.round(Math.min(...er)).toLocaleString("en")}-${Math.round(Math.max(...er)).toLocaleString("en")} |\n\n` +
      `weir / Esper (medians): ${(median(wr) / median(er)).toFixed(2)}x; signals equal: ${onlyWeir.length === 0 && onlyEsper.length === 0 ? "yes" : `no (${onlyWeir.length} only weir, ${onlyEsper.length} only Esper; ${out})`}`,
  );
  if (onlyWeir.length + onlyEsper.length > 0) {
    writeFileSync(join(out, "only-weir.tsv"), onlyWeir.join("\n"));
    writeFileSync(join(out, "only-esper.tsv"), onlyEsper.join("\n"));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
