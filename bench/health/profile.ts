// Self time per function of a V8 CPU profile (`node --cpu-prof`), optionally within a time span.
//
//   node --import tsx bench/health/profile.ts <file.cpuprofile> [--top 10] [--from-ms A --to-ms B]
//
// A sample's time is the gap to the next sample (V8's timeDeltas); a function's self time is the sum
// over the samples taken in it, whatever called it. --from-ms/--to-ms keep the samples taken that
// many ms after the profile started (bench/health/bench.ts passes the span it measured).
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";

interface ProfileNode {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  where: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  /** Sampled time in the span, idle excluded (ms). */
  busyMs: number;
  /** Idle time in the span (ms): waiting on I/O. */
  idleMs: number;
  /** Self time per function, most first. */
  functions: SelfTime[];
  /** Self time per file (a package's files as one entry). */
  modules: SelfTime[];
  /** Total time per function: samples with the function anywhere on the stack (each sample once). */
  functionsTotal: SelfTime[];
  /** Total time per file: samples with code of the file anywhere on the stack (each sample once). */
  modulesTotal: SelfTime[];
}

/** Where a frame's code lives, relative to the project; a package's files count as the package. */
function placeOf(url: string): string {
  if (url === "") return "(V8: builtins, GC, generated code)";
  let path = url;
  if (url.startsWith("file://")) {
    try {
      path = fileURLToPath(url);
    } catch {
      path = url;
    }
  }
  const nm = path.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = path.slice(nm + "node_modules/".length).split("/");
    const pkg = rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] as string);
    return `${pkg} (package)`;
  }
  return path.startsWith("/") ? relative(PROJECT_ROOT, path) : path;
}

/** A package file's path inside its package (to tell `resolveOffset` of runner.js from another). */
function packageFile(url: string): string {
  const nm = url.lastIndexOf("node_modules/");
  if (nm < 0) return "";
  const rest = url.slice(nm + "node_modules/".length).split("/");
  return rest.slice(rest[0]?.startsWith("@") ? 2 : 1).join("/");
}

interface Frame {
  key: string;
  name: string;
  where: string;
  module: string;
}

export function summarizeProfile(file: string, fromMs = 0, toMs = Number.POSITIVE_INFINITY): ProfileSummary {
  const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const frames = new Map<number, Frame>();
  for (const n of p.nodes) {
    const f = n.callFrame;
    const module = placeOf(f.url);
    const name = f.functionName || "(anonymous)";
    // tsx transpiles the project's TypeScript without keeping its lines, so only a package's or
    // Node's own line numbers mean something.
    const inPackage = packageFile(f.url);
    const where = module.endsWith(".ts")
      ? module
      : f.url
        ? `${inPackage ? `${module.replace(" (package)", "")}/${inPackage}` : module}:${f.lineNumber + 1}`
        : module;
    frames.set(n.id, { key: `${name}@${where}`, name, where, module });
  }
  const self = new Map<string, SelfTime>();
  const selfModules = new Map<string, SelfTime>();
  const total = new Map<string, SelfTime>();
  const totalModules = new Map<string, SelfTime>();
  const add = (m: Map<string, SelfTime>, key: string, name: string, where: string, us: number) => {
    const x = m.get(key) ?? { name, where, ms: 0, share: 0 };
    x.ms += us / 1000;
    m.set(key, x);
  };
  let t = 0; // µs since startTime
  let idle = 0;
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const dur = p.timeDeltas[i + 1] ?? 0;
    if (t / 1000 < fromMs || t / 1000 > toMs) continue;
    const id = p.samples[i] as number;
    const leaf = frames.get(id) as Frame;
    if (leaf.name === "(idle)") {
      idle += dur;
      continue;
    }
    busy += dur;
    add(self, leaf.key, leaf.name, leaf.where, dur);
    add(selfModules, leaf.module, leaf.module, leaf.module, dur);
    const seenFns = new Set<string>();
    const seenModules = new Set<string>();
    for (let n: number | undefined = id; n !== undefined && byId.has(n); n = parent.get(n)) {
      const f = frames.get(n) as Frame;
      if (f.name === "(root)") break;
      if (!seenFns.has(f.key)) {
        seenFns.add(f.key);
        add(total, f.key, f.name, f.where, dur);
      }
      if (!seenModules.has(f.module)) {
        seenModules.add(f.module);
        add(totalModules, f.module, f.module, f.module, dur);
      }
    }
  }
  const sorted = (m: Map<string, SelfTime>) =>
    [...m.values()].map((x) => ({ ...x, share: x.ms / (busy / 1000) })).sort((a, b) => b.ms - a.ms);
  return {
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    functions: sorted(self),
    modules: sorted(selfModules),
    functionsTotal: sorted(total),
    modulesTotal: sorted(totalModules),
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const ms = (x: number) => Math.round(x).toLocaleString("en");

/** The top functions and files by self time, as two Markdown tables. */
export function profileTables(s: ProfileSummary, top = 10): string {
  const fn = s.functions
    .slice(0, top)
    .map((f, i) => `| ${i + 1} | \`${f.name}\` | ${f.where} | ${ms(f.ms)} | ${pct(f.share)} |`);
  const mod = s.modules.slice(0, top).map((m, i) => `| ${i + 1} | ${m.name} | ${ms(m.ms)} | ${pct(m.share)} |`);
  return [
    "| # | function (self time) | where | ms | share of busy |",
    "|---|---|---|---|---|",
    ...fn,
    "",
    "| # | file or package (self time) | ms | share of busy |",
    "|---|---|---|---|",
    ...mod,
  ].join("\n");
}

/** Total (inclusive) time of the functions and files whose key matches, as a Markdown table. */
export function totalsTable(
  s: ProfileSummary,
  picks: Array<{ label: string; match: (x: SelfTime) => boolean }>,
): string {
  const rows = picks.map(({ label, match }) => {
    const hit = [...s.functionsTotal, ...s.modulesTotal].find(match);
    return `| ${label} | ${hit ? ms(hit.ms) : "–"} | ${hit ? pct(hit.share) : "–"} |`;
  });
  return ["| part (total time: it and what it calls) | ms | share of busy |", "|---|---|---|", ...rows].join("\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  const file = args.find((a) => !a.startsWith("--") && !/^\d/.test(a));
  if (!file) throw new Error("usage: bench/health/profile.ts <file.cpuprofile> [--top 10] [--from-ms A --to-ms B]");
  const s = summarizeProfile(file, opt("from-ms") ?? 0, opt("to-ms") ?? Number.POSITIVE_INFINITY);
  console.log(`busy ${Math.round(s.busyMs)} ms, idle ${Math.round(s.idleMs)} ms\n`);
  console.log(profileTables(s, opt("top") ?? 10));
  console.log("\n| function (total time) | where | ms | share of busy |\n|---|---|---|---|");
  for (const f of s.functionsTotal.slice(0, 40))
    console.log(`| \`${f.name}\` | ${f.where} | ${ms(f.ms)} | ${pct(f.share)} |`);
  console.log("\n| file or package (total time) | ms | share of busy |\n|---|---|---|");
  for (const m of s.modulesTotal.slice(0, 25)) console.log(`| ${m.name} | ${ms(m.ms)} | ${pct(m.share)} |`);
}
