// `npm run soak -- --minutes 30`: the soak (soak.ts) on the stack WEIR_STACK_DIR names (else this
// checkout's), its report into bench/results/soak-<date>.md and .svg (or --out <file.md>). Exits 1
// when a check failed.
//   --minutes 30  --rate 2000  --seed 1  --sample-seconds 10  --rss-tolerance 0.2
//   --lag-input-seconds 5  --lag-floor 1000  --drain-seconds 300  --keep (the work folder stays)
import { mkdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import { benchFlags } from "../support/flags.ts";
import { soakMarkdown, soakSvg } from "./report.ts";
import { runSoak, SOAK_DEFAULTS, SoakInterrupted } from "./soak.ts";

const { flag, num, argv } = benchFlags();
const share = (name: string, dflt: number) => {
  const v = flag(name);
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number of 0 or more`);
  return n;
};
const minutes = num("minutes", 30);
// Ctrl-C ends the run early but still stops the processes and removes the run's topics, groups and stores.
const controller = new AbortController();
process.once("SIGINT", () => controller.abort());
process.once("SIGTERM", () => controller.abort());
const result = await runSoak({
  ...SOAK_DEFAULTS,
  minutes,
  rate: num("rate", SOAK_DEFAULTS.rate),
  seed: num("seed", SOAK_DEFAULTS.seed),
  sampleSeconds: num("sample-seconds", SOAK_DEFAULTS.sampleSeconds),
  rssTolerance: share("rss-tolerance", SOAK_DEFAULTS.rssTolerance),
  lagInputSeconds: num("lag-input-seconds", SOAK_DEFAULTS.lagInputSeconds),
  lagFloor: num("lag-floor", SOAK_DEFAULTS.lagFloor),
  drainSeconds: num("drain-seconds", SOAK_DEFAULTS.drainSeconds),
  keep: flag("keep") === "true",
  signal: controller.signal,
  log: (line) => console.log(`# ${new Date().toISOString().slice(11, 19)} ${line}`),
}).catch((e: unknown) => {
  if (!(e instanceof SoakInterrupted)) throw e;
  console.error(`soak ${e.message}`);
  process.exit(130);
});
const md = flag("out") ?? join(PROJECT_ROOT, "bench/results", `soak-${result.startedAt.toISOString().slice(0, 10)}.md`);
const svg = `${md.replace(/\.md$/, "")}.svg`;
mkdirSync(dirname(md), { recursive: true });
writeFileSync(svg, soakSvg(result));
writeFileSync(md, soakMarkdown(result, `npm run soak -- ${argv.join(" ")}`.trim(), basename(svg)));
console.log(
  `\n${result.ok ? "passed" : "FAILED"}: report ${md}, plot ${svg}${result.options.keep ? `, files ${result.workDir}` : ""}`,
);
process.exit(result.ok ? 0 : 1);
