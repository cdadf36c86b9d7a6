// Runs weir's tests with Node's built-in runner (through tsx). Node 20's `--test` cannot glob
// TypeScript files, so the files are found here: unit tests sit beside their code (`*.test.ts`),
// integration tests under test/ talk to the real local stack.
//   node --import tsx test/run.ts [--unit | --integration] [extra node --test flags]
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { PROJECT_ROOT } from "../infra/stack/config.ts";

const SKIP = new Set(["node_modules", ".stack", ".git", "results"]);

function findTests(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) findTests(path, out);
    else if (entry.name.endsWith(".test.ts")) out.push(relative(PROJECT_ROOT, path));
  }
  return out;
}

const args = process.argv.slice(2);
// --chaos: the chaos and fuzz suite (test/chaos/) alone; `npm test` runs it too, with its CI bounds.
const only = args.includes("--unit")
  ? "unit"
  : args.includes("--integration")
    ? "integration"
    : args.includes("--chaos")
      ? "chaos"
      : "all";
const passThrough = args.filter((a) => a !== "--unit" && a !== "--integration" && a !== "--chaos");
const isIntegration = (f: string) => f.startsWith(`test${"/"}`);
const isChaos = (f: string) => f.startsWith(`test${"/"}chaos${"/"}`);
const files = findTests(PROJECT_ROOT)
  .filter((f) =>
    only === "all" ? true : only === "chaos" ? isChaos(f) : (only === "integration") === isIntegration(f),
  )
  .sort();
if (files.length === 0) {
  console.error(`no ${only} test files found`);
  process.exit(1);
}

const child = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    "--test-reporter=spec",
    // A test that leaks a socket must not hold the run open (kafkajs keeps idle connections for minutes).
    "--test-force-exit",
    "--test-timeout=600000",
    ...passThrough,
    ...files,
  ],
  { cwd: PROJECT_ROOT, stdio: "inherit" },
);
child.on("close", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
