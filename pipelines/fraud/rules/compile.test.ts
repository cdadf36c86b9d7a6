import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { compileRuleSet, formatRuleProblem } from "./compile.ts";
import { LOAD_LIMITS } from "./load.ts";

const REPO_RULES = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "rules");
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A rules folder made of `files`; the problems of compiling it, as `weir rules check` prints them. */
function check(files: Record<string, string>): { problems: string[]; root: string } {
  const root = mkdtempSync(join(tmpdir(), "weir-rules-"));
  dirs.push(root);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, name)), { recursive: true });
    writeFileSync(join(root, name), text);
  }
  const result = compileRuleSet(root);
  return {
    root,
    problems: result.problems.map((p) => formatRuleProblem({ ...p, file: p.file.slice(root.length + 1) })),
  };
}

const FIXTURES = `
    fixtures:
      - { name: yes, expect: hit, events: [{ stream: behavior, at: 0s, type: REGISTER }] }
      - { name: no, expect: no_hit, events: [{ stream: behavior, at: 0s, type: LIKE }] }`;

function rule(body: string, fixtures = FIXTURES): string {
  return `rules:
  - id: t.rule
    version: 1
    category: test
    owner: tests
    status: active
    severity: LOW
    score: 10
    action: REVIEW
    entity: { type: USER, field: event.uid }
    explanation: "uid {{ event.uid }}"
    falsepositives: [none known]
${body}${fixtures}
`;
}

describe("compileRuleSet", () => {
  it("compiles the repository's rules/ without a problem", () => {
    const result = compileRuleSet(REPO_RULES);
    assert.deepEqual(result.problems.map(formatRuleProblem), []);
    const kinds = new Set(result.plan?.rules.map((r) => r.shape.kind));
    assert.deepEqual([...kinds].sort(), ["absence", "aggregate", "match", "sequence"]);
    assert.ok(result.plan?.enrich.device && result.plan.enrich.registration);
  });

  it("evaluates the repository's single-event rules on their own fixtures as the fixtures expect", () => {
    const plan = compileRuleSet(REPO_RULES).plan;
    assert.ok(plan);
    let checked = 0;
    for (const r of plan.rules) {
      if (r.shape.kind !== "match" || r.enrich.device || r.enrich.registration) continue;
      const when = r.shape.when;
      for (const fx of r.fixtures) {
        const hit = fx.events.some(
          (e) => e.stream === (r.shape as { stream: string }).stream && when.evaluate({ event: e.record }) === true,
        );
        assert.equal(hit, fx.expect === "hit", `${r.id}: ${fx.name}`);
        checked++;
      }
    }
    assert.ok(checked >= 8);
  });

  it("names file, line, column and field of a misspelt event field", () => {
    const { problems } = check({
      "r.yaml": rule(`    stream: behavior\n    when: event.type == "REGISTER" && event.phne != null`),
    });
    assert.deepEqual(problems, ["r.yaml:14:45: rules[0].when: no field phne"]);
  });

  it("points inside a multi-line expression", () => {
    const { problems } = check({
      "r.yaml": rule(`    stream: behavior\n    when: >-\n      event.type == "REGISTER" &&\n      event.uid +* 3`),
    });
    assert.equal(problems.length, 1);
    assert.match(problems[0] as string, /^r\.yaml:16:18: rules\[0\]\.when: /);
  });

  it("refuses an unknown list, naming the lists there are", () => {
    const { problems } = check({
      "r.yaml": rule(`    stream: behavior\n    when: event.ip in @datacenters`),
      "dc.list.yaml": "kind: cidr\nsource: tests\nentries: [47.100.0.0/16]\n",
    });
    assert.deepEqual(problems, [
      "r.yaml:14:23: rules[0].when: no list @datacenters: a list is a <name>.list.yaml file in the rules folder (lists: dc)",
    ]);
  });

  it("refuses a window without a key", () => {
    const { problems } = check({
      "r.yaml": rule(`    stream: coin\n    aggregates:\n      n: { fn: count, within: 1h }\n    condition: n > 3`),
    });
    assert.ok(
      problems.some((p) => /aggregates\.n: a window needs a key: by, e\.g\. by: event\.uid/.test(p)),
      problems.join("\n"),
    );
  });

  it("refuses a sequence without a key, and a key that is not a string or a number", () => {
    const seq = `    sequence:
      maxspan: 10m
      steps:
        - { name: a, stream: behavior, when: event.type == "REGISTER" }
        - { name: b, stream: coin, when: event.type == "GIFT", by: event.type == "GIFT" }`;
    const { problems } = check({ "r.yaml": rule(seq) });
    assert.ok(
      problems.some((p) => /steps\[0\]: a sequence needs a key/.test(p)),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => /steps\[1\]\.by: this must be a key \(a string or a number\); it is a bool/.test(p)),
      problems.join("\n"),
    );
  });

  it("refuses a rule without a positive and a negative fixture", () => {
    const { problems } = check({
      "r.yaml": rule(
        `    stream: behavior\n    when: event.type == "REGISTER"`,
        `
    fixtures:
      - { name: yes, expect: hit, events: [{ stream: behavior, at: 0s, type: REGISTER }] }`,
      ),
    });
    assert.deepEqual(problems, [
      "r.yaml:15:5: rules[0].fixtures: a rule needs fixtures: at least one expecting hit and one expecting no_hit (missing: no_hit)",
    ]);
  });

  it("refuses a fixture event with a field its stream does not have, or a wrong value", () => {
    const { problems } = check({
      "r.yaml": rule(
        `    stream: behavior\n    when: event.type == "REGISTER"`,
        `
    fixtures:
      - { name: yes, expect: hit, events: [{ stream: behavior, at: 0s, type: REGISTER, phonee: "1" }] }
      - { name: no, expect: no_hit, events: [{ stream: behavior, at: 0s, type: NOPE }] }`,
      ),
    });
    assert.equal(problems.length, 2, problems.join("\n"));
    assert.match(problems[0] as string, /fixtures\[0\]\.events\[0\]\.phonee: BehaviorEvent has no field phonee/);
    assert.match(problems[1] as string, /fixtures\[1\]\.events\[0\]: type = "NOPE"/);
  });

  it("refuses macros that use each other in a cycle, once, at the macro", () => {
    const { problems } = check({
      "macros.yaml": "macros:\n  a: b && true\n  b: c\n  c: a\n  fine: event.uid > 0\n",
      "r.yaml": rule(`    stream: behavior\n    when: fine && event.type == "REGISTER"`),
    });
    assert.deepEqual(problems, [
      "macros.yaml:2:6: macros.a: macros use each other in a cycle: a -> b -> c -> a; a macro cannot use itself",
    ]);
  });

  it("reports an error inside a macro at the macro's own line", () => {
    const { problems } = check({
      "macros.yaml": "macros:\n  bad: event.uid.size() > 0\n",
      "r.yaml": rule(`    stream: behavior\n    when: bad && event.type == "REGISTER"`),
    });
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(problems[0] as string, /^macros\.yaml:2:8: macros\.bad: /);
  });

  it("refuses macros that multiply past the expanded size", () => {
    let macros = "macros:\n  m0: event.uid > 100000000\n";
    for (let i = 1; i <= 12; i++) macros += `  m${i}: m${i - 1} || m${i - 1}\n`;
    const { problems } = check({ "macros.yaml": macros, "r.yaml": rule(`    stream: behavior\n    when: m12`) });
    assert.ok(
      problems.some((p) => /with its macros expanded the expression passes/.test(p)),
      problems.join("\n"),
    );
  });

  it("refuses a pattern that is not a literal, or not RE2", () => {
    const { problems } = check({
      "r.yaml": rule(
        `    stream: behavior\n    when: event.ip.matches(event.appVersion) || event.ip.matches("(?<=a)b")`,
      ),
    });
    assert.equal(problems.length, 2, problems.join("\n"));
    assert.match(problems[0] as string, /14:28: rules\[0\]\.when: matches\(\) takes a literal pattern/);
    assert.match(problems[1] as string, /14:66: rules\[0\]\.when: not an RE2 regular expression/);
  });

  it("refuses a condition that is not true or false, and a DEVICE named by a number", () => {
    const { problems } = check({
      "r.yaml": rule(`    stream: behavior\n    when: event.uid + 1`).replace(
        "type: USER, field: event.uid",
        "type: DEVICE, field: event.uid",
      ),
    });
    assert.ok(
      problems.some((p) => /when: this must be true or false; it is a double/.test(p)),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => /entity\.field: a DEVICE is named by a string/.test(p)),
      problems.join("\n"),
    );
  });

  it("reports every wrong rule of a file, not only the first", () => {
    const two = rule(`    stream: behavior\n    when: event.type == "REGISTER"\n    colour: red`).replace(
      "rules:\n",
      `rules:\n  - { id: t.other, version: 0 }\n`,
    );
    const { problems } = check({ "r.yaml": two });
    assert.ok(
      problems.some((p) => /rules\[0\]\.version: /.test(p)),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => /rules\[1\]\.colour: unknown field/.test(p)),
      problems.join("\n"),
    );
  });

  it("refuses duplicate rule ids and list names", () => {
    const one = rule(`    stream: behavior\n    when: event.type == "REGISTER"`);
    const { problems } = check({
      "a.yaml": one,
      "b.yaml": one,
      "x/l.list.yaml": "kind: set\nsource: t\nentries: [a]\n",
      "y/l.list.yaml": "kind: set\nsource: t\nentries: [b]\n",
    });
    assert.ok(
      problems.some((p) => /^b\.yaml:2:5: rules\[0\]\.id: rule t\.rule is also defined at .*a\.yaml:2/.test(p)),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => /list l is also defined/.test(p)),
      problems.join("\n"),
    );
  });

  it("refuses a list entry that is not what its kind holds, and a list without a source", () => {
    const { problems } = check({
      "a.list.yaml": "kind: cidr\nsource: t\nentries: [47.100.3.1/24]\n",
      "b.list.yaml": "kind: set\nentries: [x]\n",
    });
    assert.ok(
      problems.some((p) => /^a\.list\.yaml:3:11: entries\.0: 47\.100\.3\.1\/24 is not an address range/.test(p)),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => /^b\.list\.yaml:1:1: source: /.test(p)),
      problems.join("\n"),
    );
  });
});

describe("compileRuleSet on hostile input", () => {
  it("refuses deeply nested YAML flow collections before the parser recurses", () => {
    const deep = `rules: ${"[".repeat(100_000)}${"]".repeat(100_000)}\n`;
    const { problems } = check({ "r.yaml": deep });
    assert.deepEqual(problems, [
      `r.yaml:1:${8 + LOAD_LIMITS.maxFlowNesting}: [ and { nest more than ${LOAD_LIMITS.maxFlowNesting} deep`,
    ]);
  });

  it("refuses a file over its size limit without reading it", () => {
    const { problems } = check({ "r.yaml": `# ${"x".repeat(LOAD_LIMITS.maxRulesFileBytes)}\n` });
    assert.match(problems[0] as string, /^r\.yaml: the file is \d+ bytes; at most/);
  });

  it("refuses an alias bomb", () => {
    let bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (let i = 1; i < 9; i++)
      bomb += `a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(", ")}]\n`;
    const { problems } = check({ "r.yaml": bomb });
    assert.equal(problems.length, 1);
    assert.match(problems[0] as string, /^r\.yaml/);
  });

  it("refuses an expression that would overflow the CEL parser", () => {
    const { problems } = check({ "r.yaml": rule(`    stream: behavior\n    when: "${"!".repeat(3000)}true"`) });
    assert.match(problems[0] as string, /! or - in a row/);
  });

  it("reports a YAML syntax error with its place", () => {
    const { problems } = check({ "r.yaml": "rules:\n  - id: [unclosed\n" });
    assert.match(problems[0] as string, /^r\.yaml:\d+:\d+: /);
  });
});

describe("compileRuleSet on keys", () => {
  it("refuses steps of one stream keyed differently", () => {
    const seq = `    sequence:
      maxspan: 10m
      steps:
        - { name: a, stream: coin, when: event.type == "RECHARGE", by: event.uid }
        - { name: b, stream: coin, when: event.type == "GIFT", by: event.counterpartUid }`;
    const { problems } = check({ "r.yaml": rule(seq) });
    assert.ok(
      problems.some((p) => /steps\[1\]\.by: steps reading the coin stream must share their key/.test(p)),
      problems.join("\n"),
    );
  });
});
