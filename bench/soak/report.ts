// The soak's report: a Markdown page (what ran, the rules, a table per process and per group, every
// check) and its SVG plot of RSS and lag over time.
import type { SoakResult } from "./soak.ts";
import { type Panel, plotSvg } from "./svg.ts";

const MiB = 1048576;
const mib = (b: number) => (b / MiB).toFixed(0);
const int = (n: number) => Math.round(n).toLocaleString("en");

export function soakSvg(r: SoakResult): string {
  const names = r.processes.map((p) => p.name);
  const marks = [
    { t: r.warmupS, label: "warm-up ends" },
    { t: r.loadEndS, label: "simulator stops" },
  ];
  const panels: Panel[] = [
    {
      title: "resident memory per process",
      unit: "MiB",
      scale: MiB,
      marks,
      series: names.map((name) => ({
        name,
        points: r.samples.filter((s) => s.rss[name] !== undefined).map((s) => ({ t: s.t, v: s.rss[name] as number })),
      })),
    },
    {
      title: "lag per consumer group, and the shipper's channel",
      unit: "records",
      scale: 1,
      marks,
      series: r.groups.map((g) => ({
        name: g.name === "ship" ? "ship (channel)" : g.name,
        points: r.samples
          .filter((s) => s.lag[g.name] !== undefined)
          .map((s) => ({ t: s.t, v: s.lag[g.name] as number })),
      })),
    },
  ];
  const end = r.samples.at(-1)?.t ?? r.loadEndS;
  return plotSvg(
    `weir soak ${r.startedAt.toISOString().slice(0, 16)}Z: ${r.options.minutes} min at ${r.options.rate} records/s`,
    panels,
    end,
  );
}

export function soakMarkdown(r: SoakResult, command: string, svgName: string): string {
  const o = r.options;
  const pct = (x: number) => `${(Math.abs(x) < 0.0005 ? 0 : x * 100).toFixed(1)}%`;
  const failed = r.checks.filter((c) => !c.ok);
  const lines: string[] = [
    `# Soak: ${o.minutes} minutes of the main job at the simulator's default rate`,
    "",
    `Command: \`${command}\`  `,
    `Date: ${r.startedAt.toISOString().slice(0, 16).replace("T", " ")} UTC; machine: ${r.machine}; the shared local stack (Kafka, Elasticsearch, ClickHouse, Redis on the same machine, other engineers' tests running beside it).`,
    "",
    `Result: **${r.ok ? "passed" : `failed (${failed.length} of ${r.checks.length} checks)`}**.`,
    "",
    "## What ran",
    "",
    `\`weir simulate --realtime --no-diurnal --rate ${o.rate} --seed ${o.seed}\` (the default scenario: incidents, a hot room, fraud campaigns; the default rate held flat instead of following the day) wrote ${int(r.records)} records as service log files over ${(r.loadEndS / 60).toFixed(1)} minutes (${Object.entries(
      r.byKind,
    )
      .map(([k, n]) => `${k} ${int(n)}`)
      .join(
        ", ",
      )}). \`weir ship\` tailed them into Kafka; \`weir run health\`, \`logs\`, \`fraud\` and \`hotkeys\` and \`weir console\` (the alert board, risk and hot-key pages) ran as separate processes, all on topics, groups, a database, an index prefix and Redis keys of this run (\`${r.id}\`). Every ${o.sampleSeconds} s the soak read each process's VmRSS and CPU time from /proc and each group's lag (committed offsets against the end offsets of its inputs and repartition topics; the shipper: the records in its channel not yet acknowledged by Kafka). Then the simulator stopped and everything drained${r.drainedS === null ? " (**not** within the drain limit)" : ` (${(r.drainedS - r.loadEndS).toFixed(0)} s after the simulator stopped)`}.`,
    "",
    "Rules, over the samples between the end of the warm-up and the simulator's stop:",
    "",
    `- warm-up: the first fifth of the run, at most 5 minutes (here ${r.warmupS.toFixed(0)} s);`,
    `- **RSS bounded**: the steady samples in thirds; the last third's peak at most ${pct(o.rssTolerance)} above the first third's (peaks, since a collected heap saws up and down: only a rising ceiling is a leak). Judged for weir's processes; the simulator is the load and only shown;`,
    `- **lag not growing**: the least-squares line through the steady lag samples rises over their span by less than ${o.lagInputSeconds} s of the group's input rate, and never less than ${int(o.lagFloor)} records (a worker commits every second or few, so its lag saws by a commit's worth).`,
    "",
    `![RSS and lag over time](${svgName})`,
    "",
    "## Memory and CPU",
    "",
    `Over the steady load the machine's ${r.machine.split(" ")[0]} cores were busy ${r.machineCores.toFixed(2)} on average, ${r.soakCores.toFixed(2)} of them the soak's processes (the rest: Kafka, Elasticsearch, ClickHouse, Redis serving them, and whatever else ran on the machine).`,
    "",
    "| process | judged | peak RSS (MiB) | first third's peak | last third's peak | growth | CPU in all (s) | cores, steady | verdict |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const p of r.processes) {
    lines.push(
      `| ${p.name} | ${p.judged ? "yes" : "no"} | ${mib(p.peakRss)} | ${p.rss ? mib(p.rss.firstMax) : "-"} | ${p.rss ? mib(p.rss.lastMax) : "-"} | ${p.rss ? pct(p.rss.growth) : "-"} | ${p.cpuSeconds.toFixed(0)} | ${p.steadyCores.toFixed(2)} | ${p.judged ? (p.rss?.ok ? "bounded" : "**not bounded**") : "-"} |`,
    );
  }
  lines.push(
    "",
    "## Lag",
    "",
    "| group | input (records/s) | max lag | lag after the drain | slope (records/s) | rise over the steady span | limit | verdict |",
    "|---|---|---|---|---|---|---|---|",
  );
  for (const g of r.groups) {
    lines.push(
      `| ${g.name === "ship" ? "ship (channel)" : g.name} | ${int(g.inputRate)} | ${int(g.maxLag)} | ${int(g.finalLag)} | ${g.verdict.slope.toFixed(2)} | ${int(g.verdict.rise)} | ${int(g.verdict.limit)} | ${g.verdict.ok ? "not growing" : "**growing**"} |`,
    );
  }
  lines.push("", "## Checks", "", "| check | result | detail |", "|---|---|---|");
  for (const c of r.checks) {
    lines.push(
      `| ${c.name} | ${c.ok ? "ok" : "**FAIL**"} | ${c.detail.split("\n")[0]?.replaceAll("|", "\\|") ?? ""} |`,
    );
  }
  lines.push("");
  return lines.join("\n");
}
