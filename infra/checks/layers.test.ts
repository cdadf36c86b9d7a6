import assert from "node:assert/strict";
import { test } from "node:test";
import { importCycles, parseExplainFiles, ruleViolations } from "./layers.ts";

// The shape tsc --explainFiles prints: a file, then why it is in the program.
const EXPLAINED = `node_modules/@types/node/index.d.ts
   Entry point of type library 'node' specified in compilerOptions
stream/types.ts
   Matched by include pattern 'stream' in 'tsconfig.json'
   Imported via "../../stream/types.ts" from file 'pipelines/health/rows.ts'
   Imported via "../stream/types.ts" from file 'sinks/sink.ts'
   File is ECMAScript module because 'package.json' has field "type" with value "module"
pipelines/health/rows.ts
   Imported via "../../pipelines/health/rows.ts" from file 'stream/bad.ts'
   Imported via "./rows.ts" from file 'pipelines/health/topology.ts'
infra/stack/prerequisites.ts
   Imported via "../../infra/stack/prerequisites.ts" from file 'pipelines/logs/pipeline.ts'
cli/weir.ts
   Imported via "../cli/weir.ts" from file 'bench/x.ts'
kafkajs/types.d.ts
   Imported via "kafkajs" from file 'node_modules/other/index.d.ts'
`;

test("the explained program becomes project-file edges; node_modules stay out", () => {
  const g = parseExplainFiles(EXPLAINED);
  assert.deepEqual([...(g.edges.get("pipelines/health/rows.ts") ?? [])], ["stream/types.ts"]);
  assert.deepEqual([...(g.edges.get("stream/bad.ts") ?? [])], ["pipelines/health/rows.ts"]);
  assert.equal(g.edges.has("node_modules/other/index.d.ts"), false);
});

test("each rule names the importing file, the imported one and what is wrong", () => {
  const v = ruleViolations(parseExplainFiles(EXPLAINED));
  assert.deepEqual(
    v.map((x) => `${x.from} -> ${x.to}`),
    [
      "bench/x.ts -> cli/weir.ts",
      "pipelines/logs/pipeline.ts -> infra/stack/prerequisites.ts",
      "stream/bad.ts -> pipelines/health/rows.ts",
    ],
  );
  assert.match(v[0]?.rule ?? "", /nothing imports cli/);
  assert.match(v[2]?.rule ?? "", /know nothing of pipelines/);
});

test("schemas/ may import only schemas/", () => {
  const g = parseExplainFiles(
    "stream/types.ts\n   Imported via \"../stream/types.ts\" from file 'schemas/codec.ts'\nschemas/a.ts\n   Imported via \"./a.ts\" from file 'schemas/b.ts'\n",
  );
  assert.deepEqual(
    ruleViolations(g).map((x) => `${x.from} -> ${x.to}`),
    ["schemas/codec.ts -> stream/types.ts"],
  );
});

function graphOf(pairs: Array<[string, string]>) {
  const edges = new Map<string, Set<string>>();
  for (const [a, b] of pairs) {
    if (!edges.has(a)) edges.set(a, new Set());
    edges.get(a)?.add(b);
  }
  return { edges };
}

test("cycles: one per strongly connected component, shown as a path that closes", () => {
  const cycles = importCycles(
    graphOf([
      ["a.ts", "b.ts"],
      ["b.ts", "c.ts"],
      ["c.ts", "a.ts"],
      ["c.ts", "d.ts"],
      ["d.ts", "e.ts"],
      ["e.ts", "d.ts"],
      ["f.ts", "f.ts"],
      ["g.ts", "a.ts"],
    ]),
  );
  const shown = cycles.map((c) => c.join(" -> ")).sort();
  assert.deepEqual(shown, ["a.ts -> b.ts -> c.ts -> a.ts", "d.ts -> e.ts -> d.ts", "f.ts -> f.ts"]);
});

test("an acyclic graph has no cycles, and a 100,000-file chain does not overflow the stack", () => {
  assert.deepEqual(
    importCycles(
      graphOf([
        ["a", "b"],
        ["b", "c"],
        ["a", "c"],
      ]),
    ),
    [],
  );
  const chain: Array<[string, string]> = [];
  for (let i = 0; i < 100_000; i++) chain.push([`f${i}`, `f${i + 1}`]);
  assert.deepEqual(importCycles(graphOf(chain)), []);
  chain.push(["f100000", "f0"]);
  const cycles = importCycles(graphOf(chain));
  assert.equal(cycles.length, 1);
  assert.equal(cycles[0]?.length, 100_002);
});

test("kafka/, telemetry/, sinks/ and shipper/ keep to what they may import", () => {
  const g = graphOf([
    ["kafka/client.ts", "kafka/codecs.ts"],
    ["kafka/client.ts", "stream/types.ts"],
    ["telemetry/metrics-server.ts", "schemas/errors.ts"],
    ["sinks/clickhouse/sink.ts", "stream/sink.ts"],
    ["sinks/clickhouse/sink.ts", "stream/types.ts"],
    ["sinks/clickhouse/sink.ts", "stream/runtime/task.ts"],
    ["shipper/agent.ts", "telemetry/metrics-server.ts"],
    ["shipper/agent.ts", "stream/runtime/observability.ts"],
  ]);
  assert.deepEqual(
    ruleViolations(g).map((x) => `${x.from} -> ${x.to}`),
    [
      "kafka/client.ts -> stream/types.ts",
      "shipper/agent.ts -> stream/runtime/observability.ts",
      "sinks/clickhouse/sink.ts -> stream/runtime/task.ts",
      "telemetry/metrics-server.ts -> schemas/errors.ts",
    ],
  );
});

test("an operator imports the contract, state, time, sketches and types, never the task or the DSL", () => {
  const g = graphOf([
    ["stream/windows/sliding.ts", "stream/runtime/processor.ts"],
    ["stream/windows/top-k.ts", "stream/sketches/sliding-top-k.ts"],
    ["stream/windows/sliding.ts", "stream/state/store.ts"],
    ["stream/windows/sliding.ts", "stream/windows/spec.ts"],
    ["stream/joins/stream-join.ts", "stream/time/timers.ts"],
    ["stream/operators/process.ts", "stream/runtime/task.ts"],
    ["stream/joins/table-join.ts", "stream/dsl/app.ts"],
    ["stream/windows/windows.test.ts", "stream/testing/test-driver.ts"],
  ]);
  assert.deepEqual(
    ruleViolations(g).map((x) => `${x.from} -> ${x.to}`),
    ["stream/joins/table-join.ts -> stream/dsl/app.ts", "stream/operators/process.ts -> stream/runtime/task.ts"],
  );
});
