// The layer check (`npm run check`): the rules of dependency between weir's rooms, written in
// docs/architecture.md, checked on the import graph the TypeScript compiler itself resolves
// (`tsc --explainFiles`), so type-only imports, `export ... from` and literal dynamic imports count
// exactly as the compiler sees them, and no hand-written parser can miss a form of import.
//   node --import tsx infra/checks/layers.ts            exit 1 and one line per violation
//   node --import tsx infra/checks/layers.ts --graph    also print the graph's size
import { spawnSync } from "node:child_process";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export interface LayerRule {
  /** Says what is wrong in a way that tells the reader what to do. */
  readonly name: string;
  readonly forbids: (from: string, to: string) => boolean;
}

const room = (file: string): string => file.slice(0, file.indexOf("/") + 1 || undefined);
const under = (file: string, prefix: string): boolean => file.startsWith(prefix);

/** The rules, in docs/architecture.md's words. Paths are relative to the project root, with `/`. */
export const LAYER_RULES: readonly LayerRule[] = [
  {
    name: "stream/, sinks/ and schemas/ know nothing of pipelines: move what both need down, or invert the call",
    forbids: (from, to) =>
      (under(from, "stream/") || under(from, "sinks/") || under(from, "schemas/")) && under(to, "pipelines/"),
  },
  {
    name: "schemas/ imports no other room: it is what everyone shares",
    forbids: (from, to) => under(from, "schemas/") && !under(to, "schemas/"),
  },
  {
    name: "kafka/ and telemetry/ import no other room: every process builds on them",
    forbids: (from, to) => (under(from, "kafka/") || under(from, "telemetry/")) && !under(to, room(from)),
  },
  {
    name: "sinks/ take only the Sink contract and the record types from stream/ (stream/sink.ts, stream/types.ts)",
    forbids: (from, to) =>
      under(from, "sinks/") && under(to, "stream/") && to !== "stream/sink.ts" && to !== "stream/types.ts",
  },
  {
    name: "stream's windows/, joins/ and operators/ build on the operator contract only (runtime/processor.ts, state/, time/, sketches/, types.ts): an operator is one file the task does not know",
    forbids: (from, to) => {
      const sub = /^stream\/(windows|joins|operators)\//.exec(from)?.[0];
      if (!sub || from.endsWith(".test.ts") || !under(to, "stream/") || under(to, sub)) return false;
      return !(
        to === "stream/runtime/processor.ts" ||
        to === "stream/types.ts" ||
        under(to, "stream/state/") ||
        under(to, "stream/time/") ||
        under(to, "stream/sketches/")
      );
    },
  },
  {
    name: "shipper/ never reaches into stream/: what both need lives in kafka/ and telemetry/",
    forbids: (from, to) => under(from, "shipper/") && under(to, "stream/"),
  },
  {
    name: "pipelines/ never import the development stack (infra/stack/): a pipeline runs against any cluster",
    forbids: (from, to) => under(from, "pipelines/") && under(to, "infra/stack/"),
  },
  {
    name: "web/app/ runs in the browser: it imports nothing outside web/app/ (it declares the API's shapes it reads)",
    forbids: (from, to) => under(from, "web/app/") && !under(to, "web/app/"),
  },
  {
    name: "only cli/, test/ and bench/ import web/: the console is an outer layer like the command line",
    forbids: (from, to) =>
      under(to, "web/") &&
      !under(from, "web/") &&
      !under(from, "cli/") &&
      !under(from, "test/") &&
      !under(from, "bench/"),
  },
  {
    name: "nothing imports cli/: the command line is the outermost layer",
    forbids: (from, to) => !under(from, "cli/") && under(to, "cli/"),
  },
];

export interface ImportGraph {
  /** Project files (relative paths) -> the project files they import. */
  readonly edges: ReadonlyMap<string, ReadonlySet<string>>;
}

/**
 * Reads `tsc --explainFiles` output: a file's path at the start of a line, then, indented, why it is
 * in the program, one line per importer: `Imported via "<specifier>" from file '<importer>'`.
 */
export function parseExplainFiles(text: string): ImportGraph {
  const edges = new Map<string, Set<string>>();
  let current: string | null = null;
  const importedVia = /^\s+Imported via .* from file '([^']+)'/;
  for (const line of text.split("\n")) {
    if (line.length === 0) continue;
    if (line[0] !== " ") {
      current = isProjectFile(line.trim()) ? line.trim() : null;
      continue;
    }
    if (current === null) continue;
    const m = importedVia.exec(line);
    if (!m?.[1] || !isProjectFile(m[1])) continue;
    const targets = edges.get(m[1]);
    if (targets) targets.add(current);
    else edges.set(m[1], new Set([current]));
  }
  return { edges };
}

function isProjectFile(path: string): boolean {
  return !path.startsWith("node_modules/") && !path.startsWith("/") && !path.includes("/node_modules/");
}

export interface Violation {
  from: string;
  to: string;
  rule: string;
}

export function ruleViolations(graph: ImportGraph, rules: readonly LayerRule[] = LAYER_RULES): Violation[] {
  const out: Violation[] = [];
  for (const [from, targets] of graph.edges) {
    for (const to of targets) {
      for (const rule of rules) if (rule.forbids(from, to)) out.push({ from, to, rule: rule.name });
    }
  }
  return out.sort((a, b) => a.from.localeCompare(b.from) || a.to.localeCompare(b.to));
}

/**
 * The import cycles: each strongly connected component of more than one file (or a file importing
 * itself), with one cycle through it to show. Tarjan's algorithm with an explicit stack, so a deep
 * chain of imports cannot overflow the call stack.
 */
export function importCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  const targetsOf = (n: string): string[] => [...(graph.edges.get(n) ?? [])];
  const nodes = new Set<string>([...graph.edges.keys()]);
  for (const targets of graph.edges.values()) for (const t of targets) nodes.add(t);

  for (const root of [...nodes].sort()) {
    if (index.has(root)) continue;
    const work: Array<{ node: string; targets: string[]; i: number }> = [];
    const open = (node: string) => {
      index.set(node, next);
      low.set(node, next);
      next++;
      stack.push(node);
      onStack.add(node);
      work.push({ node, targets: targetsOf(node), i: 0 });
    };
    open(root);
    while (work.length > 0) {
      const frame = work[work.length - 1] as (typeof work)[number];
      if (frame.i < frame.targets.length) {
        const t = frame.targets[frame.i++] as string;
        if (!index.has(t)) open(t);
        else if (onStack.has(t)) low.set(frame.node, Math.min(low.get(frame.node) ?? 0, index.get(t) ?? 0));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node) ?? 0, low.get(frame.node) ?? 0));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        for (;;) {
          const n = stack.pop() as string;
          onStack.delete(n);
          component.push(n);
          if (n === frame.node) break;
        }
        const selfImport = component.length === 1 && graph.edges.get(frame.node)?.has(frame.node);
        if (component.length > 1 || selfImport) components.push(cycleThrough(graph, component.sort()));
      }
    }
  }
  return components;
}

/** One concrete cycle inside a strongly connected component, starting at its first file: a->b->...->a. */
function cycleThrough(graph: ImportGraph, component: string[]): string[] {
  const members = new Set(component);
  const start = component[0] as string;
  // Breadth-first from start's targets back to start, inside the component: the shortest cycle.
  const previous = new Map<string, string>();
  const queue: string[] = [];
  for (const t of graph.edges.get(start) ?? []) {
    if (!members.has(t) || previous.has(t)) continue;
    previous.set(t, start);
    queue.push(t);
  }
  for (let head = 0; head < queue.length; head++) {
    const n = queue[head] as string;
    if (n === start) break;
    for (const t of graph.edges.get(n) ?? []) {
      if (!members.has(t) || previous.has(t)) continue;
      previous.set(t, n);
      queue.push(t);
    }
  }
  const path = [start];
  for (let n = previous.get(start); n !== undefined && n !== start; n = previous.get(n)) path.push(n);
  path.push(start);
  return path.reverse();
}

/** The projects the check reads: the Node code, and the console's browser code (its own tsconfig: DOM, JSX). */
export const PROJECTS = [".", "web"];

export function explainFiles(projectRoot: string, project = "."): string {
  const tsc = join(projectRoot, "node_modules", ".bin", "tsc");
  const r = spawnSync(tsc, ["--noEmit", "-p", join(projectRoot, project), "--explainFiles"], {
    cwd: projectRoot,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  // tsc exits non-zero on type errors but still explains every file; `npm run check` reports those.
  return r.stdout;
}

function main(): void {
  const projectRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const graph = parseExplainFiles(PROJECTS.map((p) => explainFiles(projectRoot, p)).join("\n"));
  if (graph.edges.size === 0) {
    console.error("layer check: tsc --explainFiles listed no imports between project files; is tsc installed?");
    process.exit(2);
  }
  const violations = ruleViolations(graph);
  const cycles = importCycles(graph);
  for (const v of violations) console.error(`${v.from} -> ${v.to}: ${v.rule}`);
  for (const c of cycles) console.error(`import cycle: ${c.join(" -> ")}`);
  if (process.argv.includes("--graph")) {
    let n = 0;
    for (const t of graph.edges.values()) n += t.size;
    const rooms = new Set([...graph.edges.keys()].map(room));
    console.log(`layer check: ${graph.edges.size} importing files, ${n} imports, rooms ${[...rooms].sort().join(" ")}`);
  }
  if (violations.length + cycles.length > 0) {
    console.error(
      `layer check: ${violations.length} forbidden import(s), ${cycles.length} import cycle(s); the rules are in docs/architecture.md`,
    );
    process.exit(1);
  }
  console.log(`layer check: ${relative(process.cwd(), projectRoot) || "."} keeps its layers, no import cycles`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
