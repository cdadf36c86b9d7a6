// HeavyKeeper against an exact counter and against Space-Saving, in one process, on Zipf streams:
// top-k precision and recall, ARE of the reported counts, memory, updates per second on one core.
//   node --expose-gc --import tsx bench/hotkeys/sketches.ts [--skews 0.8,1.0,1.2] [--distinct 1000000,10000000]
//     [--length 10000000] [--k 100] [--memory-kib 64,128,256] [--runs 3] [--strings] [--out file.md]
//
// Precision and ARE do not depend on the machine's load; updates/s does (each figure is the median of
// --runs passes over the same stream, the first of which warms the JIT up and is not counted).
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { fmix32 } from "../../stream/sketches/hash.ts";
import { HeavyKeeper } from "../../stream/sketches/heavy-keeper.ts";
import { benchFlags } from "../support/flags.ts";
import { SpaceSaving } from "./space-saving.ts";

const { argv, flag, num } = benchFlags();
const list = (name: string, dflt: string) => (flag(name) ?? dflt).split(",").map(Number);
const SKEWS = list("skews", "0.8,1.0,1.2");
const DISTINCT = list("distinct", "1000000,10000000");
const LENGTH = num("length", 10_000_000);
const K = num("k", 100);
const MEMORY_KIB = list("memory-kib", "64,128,256");
const RUNS = num("runs", 3);
const STRINGS = flag("strings") === "true";
const OUT = flag("out");
const SEED = num("seed", 2026);
const COMMAND = `node --expose-gc --import tsx bench/hotkeys/sketches.ts ${argv.join(" ")}`.trim();

/** Zipf(s) over ranks 0..n-1: inverse of the CDF by binary search over a table of its values. */
function zipfRanks(n: number, s: number, length: number, seed: number): Uint32Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += (i + 1) ** -s;
    cdf[i] = sum;
  }
  let x = seed >>> 0 || 1;
  const out = new Uint32Array(length);
  for (let j = 0; j < length; j++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const u = ((x + 0.5) / 2 ** 32) * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    out[j] = lo;
  }
  return out;
}

/** The key of a rank: fmix32 is a bijection on 32 bits, so keys are distinct and their order random. */
const keyOf = (rank: number) => fmix32(rank ^ 0x5f3759df);

interface Row {
  skew: number;
  distinct: number;
  algo: string;
  kib: number;
  precision: number;
  recall: number;
  are: number;
  aae: number;
  updatesPerSec: number;
  /** Updates per second of each timed pass (the warm-up pass not among them). */
  runs: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

interface Algo {
  name: string;
  make: (bytes: number) => { add(key: number | string): void; top(): Array<{ key: number | string; count: number }> };
}

const ALGOS: Algo[] = [
  {
    name: "HeavyKeeper",
    make: (bytes) => {
      const hk = new HeavyKeeper<number | string>({
        k: K,
        width: HeavyKeeper.widthFor(bytes, K),
        seeds: { s1: 1, s2: 2 },
        randomSeed: 3,
      });
      return { add: (key) => hk.add(key), top: () => hk.top() };
    },
  },
  {
    name: "Space-Saving",
    make: (bytes) => {
      const ss = new SpaceSaving<number | string>(SpaceSaving.countersFor(bytes));
      return { add: (key) => ss.add(key), top: () => ss.top(K) };
    },
  },
];

function measure(
  algo: Algo,
  bytes: number,
  stream: ArrayLike<number | string>,
  exact: (key: number | string) => number,
  truth: Set<number | string>,
): Omit<Row, "skew" | "distinct"> {
  const speeds: number[] = [];
  let top: Array<{ key: number | string; count: number }> = [];
  for (let run = 0; run <= RUNS; run++) {
    let s: ReturnType<Algo["make"]> | null = algo.make(bytes);
    const n = stream.length;
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) s.add(stream[i] as number | string);
    const ns = Number(process.hrtime.bigint() - started);
    if (run > 0) speeds.push(n / (ns / 1e9));
    top = s.top();
    s = null;
  }
  let hits = 0;
  let are = 0;
  let aae = 0;
  for (const { key, count } of top) {
    const n = exact(key);
    if (truth.has(key)) hits++;
    aae += Math.abs(count - n);
    are += Math.abs(count - n) / Math.max(1, n);
  }
  return {
    algo: algo.name,
    kib: bytes / 1024,
    precision: hits / K,
    recall: hits / truth.size,
    are: are / Math.max(1, top.length),
    aae: aae / Math.max(1, top.length),
    updatesPerSec: median(speeds),
    runs: speeds,
  };
}

const rows: Row[] = [];
const log = (s: string) => process.stdout.write(`${s}\n`);
const started = new Date();
log(
  `${COMMAND}\nload average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")} on ${cpus().length} cores`,
);
for (const distinct of DISTINCT) {
  for (const skew of SKEWS) {
    const ranks = zipfRanks(distinct, skew, LENGTH, SEED);
    const counts = new Uint32Array(distinct);
    for (const r of ranks) counts[r] = (counts[r] as number) + 1;
    const byCount = Array.from({ length: distinct }, (_, i) => i)
      .filter((r) => (counts[r] as number) > 0)
      .sort((a, b) => (counts[b] as number) - (counts[a] as number));
    const top = byCount.slice(0, K);
    const kthCount = counts[top[top.length - 1] as number] as number;
    let stream: ArrayLike<number | string>;
    let exact: (key: number | string) => number;
    let truth: Set<number | string>;
    if (STRINGS) {
      const names = new Map<string, number>();
      const table: string[] = [];
      stream = Array.from(ranks, (r) => {
        let name = table[r];
        if (name === undefined) {
          name = `room-${keyOf(r)}`;
          table[r] = name;
          names.set(name, r);
        }
        return name;
      });
      exact = (key) => counts[names.get(key as string) ?? -1] ?? 0;
      truth = new Set(top.map((r) => table[r] as string));
    } else {
      const keys = new Uint32Array(ranks.length);
      for (let i = 0; i < ranks.length; i++) keys[i] = keyOf(ranks[i] as number);
      stream = keys;
      const rankOf = new Map<number, number>();
      for (const r of byCount.slice(0, 20 * K)) rankOf.set(keyOf(r), r);
      exact = (key) => {
        const r = rankOf.get(key as number);
        if (r !== undefined) return counts[r] as number;
        // Keys beyond the 20 k heaviest: found by a scan (only for reported keys outside them, rare).
        for (let i = 0; i < distinct; i++) if (keyOf(i) === key) return counts[i] as number;
        return 0;
      };
      truth = new Set(top.map(keyOf));
    }
    log(
      `\nZipf ${skew}, ${distinct.toLocaleString("en")} keys, ${LENGTH.toLocaleString("en")} updates (${byCount.length.toLocaleString("en")} seen), ${STRINGS ? "string" : "numeric"} keys; the ${K}th heaviest counts ${kthCount}`,
    );
    for (const kib of MEMORY_KIB) {
      for (const algo of ALGOS) {
        const r = measure(algo, kib * 1024, stream, exact, truth);
        rows.push({ skew, distinct, ...r });
        log(
          `  ${r.algo.padEnd(12)} ${String(kib).padStart(4)} KiB  precision ${r.precision.toFixed(3)}  recall ${r.recall.toFixed(3)}  ARE ${r.are.toExponential(2)}  AAE ${r.aae.toFixed(1)}  ${(r.updatesPerSec / 1e6).toFixed(2)} M updates/s`,
        );
      }
    }
  }
}

if (OUT) {
  const lines = [
    `Command: \`${COMMAND}\``,
    `Started ${started.toISOString()}; ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), load average at the end ${loadavg()
      .map((l) => l.toFixed(2))
      .join(
        " ",
      )}; Node ${process.version}. Top-${K}, ${LENGTH.toLocaleString("en")} updates, ${STRINGS ? "string" : "numeric"} keys.`,
    "",
    "| skew | distinct keys | algorithm | memory (KiB) | precision | recall | ARE | AAE | M updates/s (median of runs) | every run (M/s) |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.skew} | ${r.distinct.toLocaleString("en")} | ${r.algo} | ${r.kib} | ${r.precision.toFixed(3)} | ${r.recall.toFixed(3)} | ${r.are.toExponential(2)} | ${r.aae.toFixed(1)} | ${(r.updatesPerSec / 1e6).toFixed(2)} | ${r.runs.map((x) => (x / 1e6).toFixed(2)).join(", ")} |`,
    ),
    "",
  ];
  writeFileSync(OUT, lines.join("\n"));
  log(`\nwrote ${OUT}`);
}
