// Compiles a rules folder into one rule-set plan (rules/plan.ts), or says everything that is wrong
// with it, each problem as `file:line:col: field: what to do`. Lists first (rules name them), then
// macros (rules use them), then each rule: its expressions parsed and type-checked against the
// streams it reads, its state bounded, its fixtures validated.
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import type { Environment } from "@marcbachmann/cel-js";
import { ConfigError, formatProblem, validateConfig } from "../../../schemas/config/yaml-config.ts";
import type { ClosureContext } from "../cel/closure.ts";
import {
  eventTypeName,
  listIdentifier,
  recordConstructors,
  type StreamName,
  snapshotEnvironment,
} from "../cel/environment.ts";
import type { ExpandedText, ExpressionOrigin } from "../cel/expanded.ts";
import { type CompiledExpression, compileExpression } from "../cel/expression.ts";
import { PatternTable } from "../cel/regex.ts";
import { prepareSource } from "../cel/source.ts";
import { CidrSet, type NamedList, PrefixTable, parseCidr, StringSet, WordList } from "../lists/matchers.ts";
import { FixtureEventError, fixtureRecord } from "./fixtures.ts";
import {
  display,
  LOAD_LIMITS,
  listSnapshotFiles,
  type ParsedYaml,
  parseYamlFile,
  type RuleProblem,
  readBounded,
  type SnapshotFiles,
} from "./load.ts";
import { type MacroDef, MacroSet } from "./macros.ts";
import {
  type AggregatePlan,
  type ExplanationPart,
  type FixturePlan,
  type ListInfo,
  PII_FIELDS,
  type RulePlan,
  type RuleSetPlan,
  type RuleShape,
  STATE_LIMITS,
  type StepPlan,
} from "./plan.ts";
import { ListFile, MAX_LIST_ENTRIES, RuleSpec, RulesFile } from "./schema.ts";

export const MAX_RULES = 5000;
export const MAX_LISTS = 500;
export const MAX_EXPLANATION_PLACEHOLDERS = 16;
/** Names a rule's expressions see besides its own aggregates and steps. */
const RESERVED = new Set(["event", "device", "registration", "after", "true", "false", "null", "in"]);

export interface CompileResult {
  plan?: RuleSetPlan;
  problems: RuleProblem[];
  /** The rules that compiled, also when others did not (for `weir rules list`). */
  rules: RulePlan[];
  /** Rules and list files read. */
  files: number;
}

export function formatRuleProblem(p: RuleProblem): string {
  return formatProblem(p.file, p);
}

/** Compiles the rules folder `root`; `plan` is set only when there is no problem at all. */
export function compileRuleSet(root: string): CompileResult {
  const files = listSnapshotFiles(root);
  const problems = files.problems;
  const lists = loadLists(files);
  const parsed: Array<ParsedYaml<RulesFile>> = [];
  for (const path of files.rulesFiles) {
    const text = readBounded(files, path, LOAD_LIMITS.maxRulesFileBytes);
    if (text === undefined) continue;
    const p = parseYamlFile(files, path, text, RulesFile);
    if (p) parsed.push(p);
  }

  // Macros, from every file.
  const macroDefs = new Map<string, MacroDef>();
  for (const f of parsed) {
    for (const [name, spec] of Object.entries(f.value.macros ?? {})) {
      const [line, column] = f.locate(["macros", name]);
      const other = macroDefs.get(name);
      if (other) {
        problems.push({
          file: f.file,
          line,
          column,
          field: `macros.${name}`,
          message: `macro ${name} is also defined at ${other.nameOrigin.file}:${other.nameOrigin.line}: give one of them another name`,
        });
        continue;
      }
      if (RESERVED.has(name) || lists.has(name)) {
        problems.push({ file: f.file, line, column, field: `macros.${name}`, message: `${name} is reserved` });
        continue;
      }
      const isText = typeof spec === "string";
      macroDefs.set(name, {
        name,
        text: isText ? spec : spec.condition,
        origin: f.expression(isText ? ["macros", name] : ["macros", name, "condition"]),
        nameOrigin: { file: f.file, line, column, field: `macros.${name}` },
        description: isText ? undefined : spec.description,
      });
    }
  }
  const macros = new MacroSet(macroDefs);
  for (const p of macros.problems) problems.push(atOrigin(p.origin, p.offset, p.message));

  const patterns = new PatternTable();
  const env = snapshotEnvironment(
    [...lists.values()].map((l) => l.list),
    patterns,
  );
  const closures: ClosureContext = {
    constants: new Map([...lists.values()].map((l) => [listIdentifier(l.list.name), l.list])),
    constructors: recordConstructors(),
    patterns,
  };
  const compiler = new RuleCompiler(env, patterns, macros, lists, problems, closures);
  const rules: RulePlan[] = [];
  const ids = new Map<string, string>();
  for (const f of parsed) {
    (f.value.rules ?? []).forEach((raw, i) => {
      const spec = validateRule(f, i, raw, problems);
      if (!spec) return;
      const [line, column] = f.locate(["rules", i, "id"]);
      const where = ids.get(spec.id);
      if (where) {
        problems.push({
          file: f.file,
          line,
          column,
          field: `rules[${i}].id`,
          message: `rule ${spec.id} is also defined at ${where}: ids are unique in a rule set`,
        });
        return;
      }
      ids.set(spec.id, `${f.file}:${line}`);
      if (ids.size > MAX_RULES) {
        if (ids.size === MAX_RULES + 1)
          problems.push({ file: f.file, line, column, field: "rules", message: `more than ${MAX_RULES} rules` });
        return;
      }
      const plan = compiler.rule(f, i, spec);
      if (plan) rules.push(plan);
    });
  }
  for (const r of rules) {
    if (r.replaces && !ids.has(r.replaces))
      problems.push({
        file: r.source.file,
        line: r.source.line,
        column: 1,
        field: "replaces",
        message: `no rule ${r.replaces} in this set`,
      });
  }

  const version = createHash("sha256")
    .update(JSON.stringify([...files.hashes].sort(([a], [b]) => a.localeCompare(b))))
    .digest("hex")
    .slice(0, 12);
  const files_ = files.rulesFiles.length + files.listFiles.length;
  if (problems.length > 0) return { problems: sortProblems(problems), rules, files: files_ };
  const enabled = rules.filter((r) => r.status !== "disabled");
  return {
    problems: [],
    rules,
    files: files_,
    plan: {
      version,
      rules,
      lists: [...lists.values()].map((l) => l.info),
      macros: [...macroDefs.keys()].sort(),
      streams: [...new Set(enabled.flatMap((r) => r.streams))].sort(),
      enrich: {
        device: enabled.some((r) => r.enrich.device),
        registration: enabled.some((r) => r.enrich.registration),
      },
      patterns: patterns.size,
    },
  };
}

function validateRule(
  f: ParsedYaml<RulesFile>,
  index: number,
  raw: unknown,
  problems: RuleProblem[],
): RuleSpec | undefined {
  try {
    return validateConfig(f.file, RuleSpec, raw, (path) => f.locate(["rules", index, ...path]));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const p of e.problems)
      problems.push({ ...p, file: f.file, field: p.field ? `rules[${index}].${p.field}` : `rules[${index}]` });
    return undefined;
  }
}

function sortProblems(problems: RuleProblem[]): RuleProblem[] {
  return [...problems].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
}

function atOrigin(origin: ExpressionOrigin, offset: number, message: string): RuleProblem {
  const [line, column] = origin.position(offset);
  return { file: origin.file, line, column, field: origin.field, message };
}

// Lists --------------------------------------------------------------------------------------------

interface LoadedList {
  list: NamedList;
  info: ListInfo;
}

function loadLists(files: SnapshotFiles): Map<string, LoadedList> {
  const out = new Map<string, LoadedList>();
  for (const path of files.listFiles) {
    if (out.size >= MAX_LISTS) {
      files.problems.push({
        file: display(path),
        line: 0,
        column: 0,
        field: "",
        message: `more than ${MAX_LISTS} lists`,
      });
      break;
    }
    const text = readBounded(files, path, LOAD_LIMITS.maxRulesFileBytes);
    if (text === undefined) continue;
    const parsed = parseYamlFile(files, path, text, ListFile);
    if (!parsed) continue;
    const spec = parsed.value;
    const problem = (field: string, message: string, at: PropertyKey[] = [field]) => {
      const [line, column] = parsed.locate(at);
      files.problems.push({ file: parsed.file, line, column, field, message });
    };
    const name = spec.name ?? basename(path).replace(/\.list\.ya?ml$/, "");
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) {
      problem("name", `list name ${name}: lower case letters, digits and _ (rename the file or set name)`);
      continue;
    }
    const other = out.get(name);
    if (other) {
      problem("name", `list ${name} is also defined in ${other.info.file}`);
      continue;
    }
    const entries: Array<[string, string, PropertyKey[]]> = (spec.entries ?? []).map((e, i) =>
      typeof e === "string" ? [e, e, ["entries", i]] : [e.value, e.label, ["entries", i]],
    );
    const hash = createHash("sha256").update(text);
    if (spec.file) {
      const txtPath = join(dirname(path), spec.file);
      const txt = readBounded(files, txtPath, LOAD_LIMITS.maxListFileBytes);
      if (txt === undefined) continue;
      hash.update(txt);
      let lineNo = 0;
      for (const raw of txt.split("\n")) {
        lineNo++;
        const line = raw.replace(/\r$/, "");
        if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
        const [value, label] = line.split("\t", 2) as [string, string | undefined];
        if (value.length > 256) {
          files.problems.push({
            file: display(txtPath),
            line: lineNo,
            column: 1,
            field: "",
            message: "an entry is at most 256 characters",
          });
          continue;
        }
        entries.push([value.trim(), (label ?? value).trim(), ["file"]]);
        if (entries.length > MAX_LIST_ENTRIES) break;
      }
    }
    if (entries.length > MAX_LIST_ENTRIES) {
      problem("entries", `more than ${MAX_LIST_ENTRIES} entries`);
      continue;
    }
    let bad = false;
    for (const [value, , at] of entries) {
      if (spec.kind === "cidr" && !parseCidr(value)) {
        problem(
          at.join("."),
          `${value} is not an address range such as 47.100.0.0/16 or 2408:8207::/32 (host bits zero)`,
          at,
        );
        bad = true;
      }
      if (value === "") {
        problem(at.join("."), "an empty entry", at);
        bad = true;
      }
    }
    if (bad) continue;
    let list: NamedList;
    switch (spec.kind) {
      case "set":
        list = new StringSet(
          name,
          entries.map(([v]) => v),
        );
        break;
      case "prefix":
        list = new PrefixTable(
          name,
          entries.map(([v, l]) => [v, l] as const),
        );
        break;
      case "cidr":
        list = new CidrSet(
          name,
          entries.map(([v, l]) => [v, l] as const),
        );
        break;
      case "words":
        list = new WordList(
          name,
          entries.map(([v]) => v),
        );
        break;
    }
    out.set(name, {
      list,
      info: {
        name,
        kind: spec.kind,
        size: list.size,
        source: spec.source,
        file: parsed.file,
        sha256: hash.digest("hex"),
      },
    });
  }
  return out;
}

// Rules --------------------------------------------------------------------------------------------

type Expect = "bool" | "key" | "number" | "value" | "any";

interface Scope {
  /** The stream of `event`, if any. */
  event?: StreamName;
  /** Named events (sequence steps, an absence's `after`) and their streams. */
  named: Array<[string, StreamName]>;
  /** Aggregate values, by name. */
  numbers: string[];
  enrich: boolean;
}

class RuleCompiler {
  private readonly envs = new Map<string, Environment>();

  constructor(
    private readonly base: Environment,
    private readonly patterns: PatternTable,
    private readonly macros: MacroSet,
    private readonly lists: Map<string, LoadedList>,
    private readonly problems: RuleProblem[],
    private readonly closures: ClosureContext,
  ) {}

  private env(scope: Scope): { env: Environment; roots: Set<string> } {
    const vars: Array<[string, string]> = [];
    if (scope.event) vars.push(["event", eventTypeName(scope.event)]);
    if (scope.enrich && scope.event) {
      if (scope.event !== "device") vars.push(["device", "DeviceReport"]);
      // Registrations are joined where events are partitioned by uid: behavior and coin events.
      if (scope.event === "behavior" || scope.event === "coin") vars.push(["registration", "Registration"]);
    }
    for (const [name, stream] of scope.named) vars.push([name, eventTypeName(stream)]);
    for (const n of scope.numbers) vars.push([n, "double"]);
    const key = vars.map(([n, t]) => `${n}:${t}`).join(",");
    let env = this.envs.get(key);
    if (!env) {
      env = this.base.clone();
      for (const [n, t] of vars) env.registerVariable(n, t);
      this.envs.set(key, env);
    }
    return { env, roots: new Set(vars.map(([n]) => n)) };
  }

  /** Compiles one expression of a rule in `scope`; undefined (problems added) when it does not compile. */
  private expression(
    origin: ExpressionOrigin,
    text: string,
    scope: Scope,
    expect: Expect,
    used: { macros: Set<string>; lists: Set<string> },
  ): CompiledExpression | undefined {
    const prepared = prepareSource(text);
    if (prepared.problems.length > 0) {
      for (const p of prepared.problems) this.problems.push(atOrigin(origin, p.offset, p.message));
      return undefined;
    }
    let ok = true;
    for (const ref of prepared.lists) {
      if (!this.lists.has(ref.name)) {
        const known = [...this.lists.keys()].sort();
        this.problems.push(
          atOrigin(
            origin,
            ref.start,
            `no list @${ref.name}: a list is a <name>.list.yaml file in the rules folder${known.length > 0 ? ` (lists: ${known.slice(0, 10).join(", ")}${known.length > 10 ? ", ..." : ""})` : ""}`,
          ),
        );
        ok = false;
      } else used.lists.add(ref.name);
    }
    if (!ok) return undefined;
    for (const m of this.macros.closure(this.macros.usedBy(prepared))) used.macros.add(m);
    const expansionProblems: Array<{ origin: ExpressionOrigin; offset: number; message: string }> = [];
    const expanded: ExpandedText | undefined = this.macros.expand(prepared, origin, expansionProblems);
    if (!expanded) {
      for (const p of expansionProblems) this.problems.push(atOrigin(p.origin, p.offset, p.message));
      return undefined;
    }
    // the macros' lists count as the rule's
    for (const m of used.macros) {
      const def = this.macros.defs.get(m);
      if (def) for (const ref of prepareSource(def.text).lists) used.lists.add(ref.name);
    }
    const { env, roots } = this.env(scope);
    const result = compileExpression(env, expanded.value, this.patterns, roots, this.closures);
    if (!result.ok) {
      for (const p of result.problems) {
        const at = expanded.locate(p.offset) ?? { origin, offset: 0 };
        this.problems.push(atOrigin(at.origin, at.offset, this.explainUnknown(p.message, roots)));
      }
      return undefined;
    }
    const t = result.compiled.type;
    const fits: Record<Expect, (t: string) => boolean> = {
      bool: (t) => t === "bool" || t === "dyn",
      key: (t) => t === "string" || t === "double" || t === "int" || t === "dyn",
      number: (t) => t === "double" || t === "int" || t === "uint" || t === "dyn",
      value: (t) => ["string", "double", "int", "uint", "bool", "dyn"].includes(t),
      any: () => true,
    };
    if (!fits[expect](t)) {
      const want = {
        bool: "true or false",
        key: "a key (a string or a number)",
        number: "a number",
        value: "a single value (a string, a number or a bool)",
        any: "",
      }[expect];
      this.problems.push(atOrigin(origin, 0, `this must be ${want}; it is a ${t}`));
      return undefined;
    }
    return result.compiled;
  }

  private explainUnknown(message: string, roots: Set<string>): string {
    const m = /^Unknown variable: (\w+)/.exec(message);
    if (!m) return message;
    return `unknown name ${m[1]}: not a variable here (${[...roots].join(", ")}), nor a macro`;
  }

  rule(f: ParsedYaml<RulesFile>, index: number, spec: RuleSpec): RulePlan | undefined {
    const before = this.problems.length;
    const at = (...path: PropertyKey[]) => f.expression(["rules", index, ...path]);
    const problem = (path: PropertyKey[], message: string) => {
      const [line, column] = f.locate(["rules", index, ...path]);
      this.problems.push({
        file: f.file,
        line,
        column,
        field: ["rules", index, ...path]
          .map((p) => (typeof p === "number" ? `[${p}]` : String(p)))
          .join(".")
          .replaceAll(".[", "["),
        message,
      });
    };
    const used = { macros: new Set<string>(), lists: new Set<string>() };
    const all: CompiledExpression[] = [];
    const c = (path: PropertyKey[], text: string, scope: Scope, expect: Expect) => {
      const e = this.expression(at(...path), text, scope, expect, used);
      if (e) all.push(e);
      return e;
    };

    let shape: RuleShape | undefined;
    let finalScope: Scope;
    let windowMs = 0;
    const streams = new Set<StreamName>();
    const stateParts: unknown[] = [];

    if (spec.sequence) {
      const seq = spec.sequence;
      windowMs = seq.maxspan;
      const steps: StepPlan[] = [];
      const named: Array<[string, StreamName]> = [];
      const keyOfStream = new Map<string, string>();
      seq.steps.forEach((s, i) => {
        // An event is keyed once, by its stream: steps reading one stream share their key.
        const sharedKey = (s.by ?? seq.by ?? "").replace(/\s+/g, "");
        const other = keyOfStream.get(s.stream);
        if (other !== undefined && other !== sharedKey)
          problem(
            ["sequence", "steps", i, "by"],
            `steps reading the ${s.stream} stream must share their key (by); this one differs from an earlier step's`,
          );
        keyOfStream.set(s.stream, sharedKey);
        const stream = s.stream as StreamName;
        streams.add(stream);
        if (RESERVED.has(s.name) || this.macros.has(s.name))
          problem(["sequence", "steps", i, "name"], `${s.name} is reserved (a variable or a macro)`);
        const scope: Scope = { event: stream, named: [...named], numbers: [], enrich: true };
        const when = c(["sequence", "steps", i, "when"], s.when, scope, "bool");
        const byText = s.by ?? seq.by;
        if (!byText) {
          problem(
            ["sequence", "steps", i],
            "a sequence needs a key: by (on the sequence, or on every step), e.g. by: event.uid",
          );
          return;
        }
        const by = c(
          s.by ? ["sequence", "steps", i, "by"] : ["sequence", "by"],
          byText,
          { event: stream, named: [], numbers: [], enrich: false },
          "key",
        );
        if (when && by) steps.push({ name: s.name, stream, when, by, captures: [] });
        named.push([s.name, stream]);
        stateParts.push([s.name, stream, s.when, byText]);
      });
      const last = seq.steps[seq.steps.length - 1];
      finalScope = {
        event: last?.stream as StreamName,
        named: named.slice(0, -1),
        numbers: [],
        enrich: true,
      };
      const maxPending = seq.max_pending ?? STATE_LIMITS.defaultMaxPending;
      shape = {
        kind: "sequence",
        maxspanMs: windowMs,
        steps,
        maxPending,
        ttlMs: windowMs,
        maxKeys: STATE_LIMITS.maxKeys,
      };
      stateParts.push(windowMs, maxPending);
    } else if (spec.absence) {
      const a = spec.absence;
      windowMs = a.within;
      const afterStream = a.after.stream as StreamName;
      const missingStream = a.missing.stream as StreamName;
      streams.add(afterStream);
      streams.add(missingStream);
      const afterBy = a.after.by ?? a.by;
      const missingBy = a.missing.by ?? a.by;
      if (!afterBy || !missingBy) {
        problem(
          ["absence"],
          "an absence needs a key: by (on the absence, or on after and missing), e.g. by: event.uid",
        );
      }
      const afterWhen = c(
        ["absence", "after", "when"],
        a.after.when,
        { event: afterStream, named: [], numbers: [], enrich: true },
        "bool",
      );
      const missingWhen = c(
        ["absence", "missing", "when"],
        a.missing.when,
        { event: missingStream, named: [["after", afterStream]], numbers: [], enrich: true },
        "bool",
      );
      const keyScope = (s: StreamName): Scope => ({ event: s, named: [], numbers: [], enrich: false });
      const aBy = afterBy
        ? c(a.after.by ? ["absence", "after", "by"] : ["absence", "by"], afterBy, keyScope(afterStream), "key")
        : undefined;
      const mBy = missingBy
        ? c(a.missing.by ? ["absence", "missing", "by"] : ["absence", "by"], missingBy, keyScope(missingStream), "key")
        : undefined;
      finalScope = { event: afterStream, named: [], numbers: [], enrich: true };
      if (afterWhen && missingWhen && aBy && mBy)
        shape = {
          kind: "absence",
          withinMs: windowMs,
          after: { name: "after", stream: afterStream, when: afterWhen, by: aBy, captures: [] },
          missing: { name: "missing", stream: missingStream, when: missingWhen, by: mBy, captures: [] },
          ttlMs: windowMs,
          maxKeys: STATE_LIMITS.maxKeys,
        };
      stateParts.push(a.after, a.missing, afterBy, missingBy, windowMs);
    } else {
      const stream = spec.stream as StreamName;
      streams.add(stream);
      const eventScope: Scope = { event: stream, named: [], numbers: [], enrich: true };
      const when = spec.when ? c(["when"], spec.when, eventScope, "bool") : undefined;
      stateParts.push(stream, spec.when ?? "");
      if (spec.aggregates) {
        const aggregates: AggregatePlan[] = [];
        const names: string[] = [];
        for (const [name, a] of Object.entries(spec.aggregates)) {
          if (RESERVED.has(name) || this.macros.has(name)) {
            problem(["aggregates", name], `${name} is reserved (a variable or a macro): choose another name`);
            continue;
          }
          names.push(name);
          windowMs = Math.max(windowMs, a.within);
          const keyScope: Scope = { event: stream, named: [], numbers: [], enrich: true };
          if (!a.by) {
            problem(["aggregates", name], "a window needs a key: by, e.g. by: event.uid");
            continue;
          }
          const by = c(["aggregates", name, "by"], a.by, keyScope, "key");
          const of = a.of
            ? c(["aggregates", name, "of"], a.of, keyScope, a.fn === "sum" ? "number" : "value")
            : undefined;
          const where = a.where ? c(["aggregates", name, "where"], a.where, keyScope, "bool") : undefined;
          if (by && (of || a.fn === "count") && (where || !a.where))
            aggregates.push({
              name,
              fn: a.fn,
              of,
              by,
              where,
              withinMs: a.within,
              maxDistinct: a.max_distinct ?? STATE_LIMITS.defaultMaxDistinct,
              ttlMs: a.within,
              maxKeys: STATE_LIMITS.maxKeys,
            });
          stateParts.push([name, a]);
        }
        finalScope = { event: stream, named: [], numbers: names, enrich: true };
        const condition = spec.condition ? c(["condition"], spec.condition, finalScope, "bool") : undefined;
        if (condition && (when || !spec.when)) shape = { kind: "aggregate", stream, when, aggregates, condition };
      } else {
        finalScope = eventScope;
        if (when) shape = { kind: "match", stream, when };
      }
    }

    // Entity and explanation: in the scope of the event that fires the rule.
    const entity = c(["entity", "field"], spec.entity.field, finalScope, "key");
    if (
      entity &&
      ["DEVICE", "IP", "PHONE", "CARD"].includes(spec.entity.type) &&
      !["string", "dyn"].includes(entity.type)
    )
      problem(["entity", "field"], `a ${spec.entity.type} is named by a string; this is a ${entity.type}`);
    if (
      entity &&
      ["USER", "STREAMER", "ROOM"].includes(spec.entity.type) &&
      !["double", "int", "dyn"].includes(entity.type)
    )
      problem(
        ["entity", "field"],
        `a ${spec.entity.type} is named by its number (a uid or room id); this is a ${entity.type}`,
      );
    const explanation = this.explanation(f, index, spec.explanation, finalScope, used, all);

    // Sequence captures: the fields of each step that later expressions read.
    if (shape?.kind === "sequence") {
      for (const step of shape.steps) {
        const prefix = `${step.name}.`;
        step.captures = [
          ...new Set(
            all.flatMap((e) => e.fields.filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length))),
          ),
        ].sort();
      }
    }

    const fixtures = this.fixtures(f, index, spec, problem);
    if (this.problems.length > before || !shape || !entity || !explanation) return undefined;

    const variables = new Set(all.flatMap((e) => e.variables));
    const evidence = [...new Set(all.flatMap((e) => e.fields))]
      .filter((p) => p.includes("."))
      .sort()
      .map((path) => ({ path, pii: PII_FIELDS.has(path) || /\.(phone|text|ip|clientIp)$/.test(path) }));
    const lists = [...used.lists].sort();
    const macroNames = [...used.macros].sort();
    const listHashes = lists.map((l) => this.lists.get(l)?.info.sha256);
    const macroTexts = macroNames.map((m) => this.macros.defs.get(m)?.text);
    const stateFingerprint = sha(JSON.stringify([stateParts, listHashes, macroTexts, spec.entity]));
    // The status is how the rule runs, not what it is: promoting a shadow rule keeps its fingerprint.
    const { fixtures: _fixtures, status: _status, ...definition } = spec;
    const [line] = f.locate(["rules", index]);
    return {
      id: spec.id,
      version: spec.version,
      category: spec.category,
      owner: spec.owner,
      status: spec.status,
      severity: spec.severity,
      score: spec.score,
      action: spec.action,
      description: spec.description,
      falsepositives: spec.falsepositives,
      replaces: spec.replaces,
      source: { file: f.file, line },
      entity: { type: spec.entity.type, expression: entity, hashed: ["PHONE", "CARD"].includes(spec.entity.type) },
      explanation,
      cooldownMs: spec.cooldown ?? (windowMs > 0 ? windowMs : 3600_000),
      shape,
      streams: [...streams].sort(),
      enrich: { device: variables.has("device"), registration: variables.has("registration") },
      evidence,
      macros: macroNames,
      lists,
      stateFingerprint,
      fingerprint: sha(JSON.stringify([definition, listHashes, macroTexts])),
      fixtures,
    };
  }

  private explanation(
    f: ParsedYaml<RulesFile>,
    index: number,
    text: string,
    scope: Scope,
    used: { macros: Set<string>; lists: Set<string> },
    all: CompiledExpression[],
  ): ExplanationPart[] | undefined {
    const origin = f.expression(["rules", index, "explanation"]);
    const parts: ExplanationPart[] = [];
    let i = 0;
    let ok = true;
    let placeholders = 0;
    while (i < text.length) {
      const open = text.indexOf("{{", i);
      if (open < 0) {
        parts.push({ text: text.slice(i) });
        break;
      }
      if (open > i) parts.push({ text: text.slice(i, open) });
      const close = text.indexOf("}}", open + 2);
      if (close < 0) {
        this.problems.push(atOrigin(origin, open, "{{ is never closed: write {{ expression }}"));
        return undefined;
      }
      if (++placeholders > MAX_EXPLANATION_PLACEHOLDERS) {
        this.problems.push(atOrigin(origin, open, `at most ${MAX_EXPLANATION_PLACEHOLDERS} {{ }} in an explanation`));
        return undefined;
      }
      const inner = text.slice(open + 2, close);
      const innerOrigin: ExpressionOrigin = {
        file: origin.file,
        field: origin.field,
        position: (o) => origin.position(open + 2 + o),
      };
      const e = this.expression(innerOrigin, inner, scope, "any", used);
      if (e) {
        parts.push({ expression: e });
        all.push(e);
      } else ok = false;
      i = close + 2;
    }
    return ok ? parts : undefined;
  }

  private fixtures(
    f: ParsedYaml<RulesFile>,
    index: number,
    spec: RuleSpec,
    problem: (path: PropertyKey[], message: string) => void,
  ): FixturePlan[] {
    const out: FixturePlan[] = [];
    spec.fixtures.forEach((fx, i) => {
      const events = fx.events.flatMap((ev, k) => {
        try {
          const { ts, record } = fixtureRecord(
            ev.stream as StreamName,
            ev as Record<string, unknown>,
            `fx-${spec.id}-${i}-${k}`,
          );
          const [line] = f.locate(["rules", index, "fixtures", i, "events", k]);
          return [{ stream: ev.stream as StreamName, ts, record, line }];
        } catch (e) {
          if (!(e instanceof FixtureEventError)) throw e;
          const field = e.field?.split(".")[0];
          problem(["fixtures", i, "events", k, ...(field ? [field] : [])], e.message);
          return [];
        }
      });
      if (fx.expect === "no_hit" && (fx.entity !== undefined || fx.signals !== undefined))
        problem(["fixtures", i, "expect"], "entity and signals are for fixtures expecting hit");
      const [line] = f.locate(["rules", index, "fixtures", i]);
      out.push({
        name: fx.name,
        expect: fx.expect,
        entity: fx.entity === undefined ? undefined : String(fx.entity),
        signals: fx.signals,
        events,
        line,
      });
    });
    const hits = spec.fixtures.some((x) => x.expect === "hit");
    const misses = spec.fixtures.some((x) => x.expect === "no_hit");
    if (!hits || !misses)
      problem(
        spec.fixtures.length > 0 ? ["fixtures"] : ["id"],
        `a rule needs fixtures: at least one expecting hit and one expecting no_hit (missing: ${[!hits ? "hit" : "", !misses ? "no_hit" : ""].filter(Boolean).join(" and ")})`,
      );
    return out;
  }
}

function sha(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 16);
}
