// How long the console's first page takes to be interactive on the local stack: `weir console` as
// `npm start` runs it, Debian's chromium through playwright-core, a fresh profile each round (nothing
// cached). For each page (Logs, Health, Alerts) and round: from navigation start to the shell rendered
// (main[data-ready]: the bundle loaded, parsed and run, the query bar usable), and to the page's first
// data drawn (the hits of the last 15 min, the health tree, the alert board). Median and worst of the
// rounds; the target is under 1 s to interactive.
//   node --import tsx bench/console/first-page.ts [--rounds 7] [--database weir] [--since 1h]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pino from "pino";
import { chromium } from "playwright-core";
import { hashToken, newToken, TokenStore } from "../../pipelines/logs/api/tokens.ts";
import { startConsole } from "../../web/server/start.ts";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "7" },
    database: { type: "string", default: "weir" },
    since: { type: "string", default: "1h" },
  },
});
const rounds = Number(values.rounds);
const token = newToken();
const running = await startConsole(
  { port: "0", host: "127.0.0.1", database: values.database, notify: false },
  new TokenStore([{ name: "bench", sha256: hashToken(token), services: "*" }]),
  pino({ level: "silent" }),
  { ...process.env, WEIR_ENV: process.env.WEIR_ENV ?? "development" },
);
const pages = [
  { name: "Logs", path: `/logs?q=&since=${values.since}`, data: '[data-testid="summary"]:not(:empty)' },
  { name: "Health", path: `/health?since=${values.since}`, data: '[data-testid="tree-node"]' },
  { name: "Alerts", path: "/alerts", data: '[data-testid="scene"]' },
];
const results: Array<{ page: string; interactive: number[]; data: number[] }> = pages.map((p) => ({
  page: p.name,
  interactive: [],
  data: [],
}));
try {
  for (let r = 0; r < rounds; r++) {
    for (const [i, p] of pages.entries()) {
      const profile = mkdtempSync(join(tmpdir(), "weir-bench-chromium-"));
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: process.env.WEIR_CHROMIUM ?? "/usr/bin/chromium",
        args: CHROMIUM_ARGS,
        viewport: { width: 1400, height: 900 },
      });
      try {
        const page = await context.newPage();
        await page.goto(`${running.console.url}${p.path}#token=${token}`, { waitUntil: "commit" });
        await page.waitForSelector("main[data-ready]");
        const interactive = await page.evaluate("performance.now()");
        await page.waitForSelector(p.data, { timeout: 30_000 });
        const data = await page.evaluate("performance.now()");
        results[i]?.interactive.push(Number(interactive));
        results[i]?.data.push(Number(data));
      } finally {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      }
    }
  }
} finally {
  await running.stop();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const ms = (x: number) => `${Math.round(x)} ms`;
const s = running.bundleSize;
console.log(
  `bundle: script ${(s.js / 1024).toFixed(1)} KiB (${(s.jsGzip / 1024).toFixed(1)} KiB gzipped), stylesheet ${(s.css / 1024).toFixed(1)} KiB (${(s.cssGzip / 1024).toFixed(1)} KiB gzipped); ${rounds} rounds, a fresh profile each`,
);
console.log("| page | interactive, median | interactive, worst | first data, median | first data, worst |");
console.log("|---|---:|---:|---:|---:|");
for (const r of results) {
  console.log(
    `| ${r.page} | ${ms(median(r.interactive))} | ${ms(Math.max(...r.interactive))} | ${ms(median(r.data))} | ${ms(Math.max(...r.data))} |`,
  );
}
