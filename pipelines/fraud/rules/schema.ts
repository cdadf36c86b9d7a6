// The shape of the risk team's files, validated with zod through the shared YAML loader (every error
// names the file, line, column and field). Expressions are strings here; the compiler parses and
// type-checks them (rules/compile.ts). Every count, size and duration is bounded: these files are
// written by another team and may be wrong in any way.
import { z } from "zod";
import { durationMs } from "../../../schemas/catalog.ts";
import { STREAM_NAMES } from "../cel/environment.ts";

export const MAX_RULES_PER_FILE = 200;
export const MAX_FIXTURES_PER_RULE = 50;
export const MAX_EVENTS_PER_FIXTURE = 500;
/**
 * One aggregate per rule, as in Sigma's correlation rules: a rule over several aggregates is written
 * as several rules (a sequence or a shared key). The syntax is a map so that it can grow.
 */
export const MAX_AGGREGATES_PER_RULE = 1;
export const MAX_SEQUENCE_STEPS = 8;
export const MAX_MACROS_PER_FILE = 500;
/** The longest window, span or cool-down a rule may hold state for. */
export const MAX_WINDOW_MS = 30 * 24 * 3600_000;

const Name = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,62}$/, "use lower case letters, digits and _, starting with a letter (at most 63)");
const RuleId = z
  .string()
  .regex(
    /^[a-z][a-z0-9_.-]{2,99}$/,
    "use 3 to 100 lower case letters, digits, '.', '_' and '-', starting with a letter",
  );
const Expression = z.string().min(1, "an expression").max(4096, "at most 4096 characters (split it with macros)");
const Text = (max: number) => z.string().min(1).max(max, `at most ${max} characters`);

/** `90s`, `15m`, `24h`, `7d`, or milliseconds. */
export const Duration = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  let ms: number;
  try {
    ms = typeof v === "number" ? v : durationMs(v);
  } catch {
    ctx.addIssue({ code: "custom", message: "a duration such as 90s, 15m, 24h or 7d" });
    return z.NEVER;
  }
  if (!(ms >= 1000 && ms <= MAX_WINDOW_MS)) {
    ctx.addIssue({ code: "custom", message: "between 1s and 30d" });
    return z.NEVER;
  }
  return ms;
});

const upper = <T extends readonly [string, ...string[]]>(values: T) =>
  z.preprocess((v) => (typeof v === "string" ? v.toUpperCase() : v), z.enum(values));

export const SEVERITIES = ["LOW", "MEDIUM", "HIGH", "CRITICAL"] as const;
export const ACTIONS = ["ALLOW", "REVIEW", "CHALLENGE", "LIMIT", "BLOCK"] as const;
export const ENTITY_TYPES = ["USER", "DEVICE", "IP", "PHONE", "CARD", "ROOM", "STREAMER"] as const;
export const STATUSES = ["active", "shadow", "disabled"] as const;

const Stream = z.enum(STREAM_NAMES as [string, ...string[]]);

const Aggregate = z.strictObject({
  fn: z.enum(["count", "sum", "distinct_count"]),
  of: Expression.optional(),
  by: Expression.optional(),
  within: Duration,
  where: Expression.optional(),
  /** distinct_count: values kept per key before the count saturates (counted as a drop). */
  max_distinct: z.number().int().min(1).max(3000).optional(),
});

const Step = z.strictObject({
  name: Name,
  stream: Stream,
  when: Expression,
  by: Expression.optional(),
});

const FixtureEvent = z
  .looseObject({
    stream: Stream,
    /** Offset from the fixture's start (`0s`, `90s`, `2h`) or milliseconds. */
    at: z.union([z.number().int().nonnegative(), z.string()]),
  })
  .refine((e) => Object.keys(e).length <= 64, "at most 64 fields");

const Fixture = z.strictObject({
  name: Text(200),
  expect: z.enum(["hit", "no_hit"]),
  /** The entity id the signal must name (hit only). */
  entity: z.union([z.string(), z.number()]).optional(),
  /** How many signals (hit only; default: at least one). */
  signals: z.number().int().min(1).max(1000).optional(),
  events: z.array(FixtureEvent).min(1).max(MAX_EVENTS_PER_FIXTURE),
});

export const RuleSpec = z
  .strictObject({
    id: RuleId,
    version: z
      .number()
      .int()
      .min(1)
      .max(2 ** 31 - 1),
    category: z
      .string()
      .regex(/^[a-z][a-z0-9_]{1,39}$/, "lower case letters, digits and _ (e.g. fake_phone, coin_brushing)"),
    owner: Text(100),
    status: z.enum(STATUSES),
    severity: upper(SEVERITIES),
    score: z.number().min(0).max(100),
    action: upper(ACTIONS),
    description: Text(2000).optional(),
    entity: z.strictObject({ type: upper(ENTITY_TYPES), field: Expression }),
    explanation: Text(1000),
    falsepositives: z.array(Text(500)).min(1, "say what may match wrongly (or 'none known')").max(20),
    /** A new signal for the same entity only after this long (default: the rule's window, else 1h). */
    cooldown: Duration.optional(),
    /** Replaces this rule's predecessor, whose hits shadow mode compares with. */
    replaces: RuleId.optional(),

    // What the rule matches: one event (stream + when), aggregates over a window, a sequence, or an absence.
    stream: Stream.optional(),
    when: Expression.optional(),
    aggregates: z
      .record(Name, Aggregate)
      .refine(
        (a) => Object.keys(a).length >= 1 && Object.keys(a).length <= MAX_AGGREGATES_PER_RULE,
        "one aggregate per rule: split a rule over two aggregates into two rules",
      )
      .optional(),
    condition: Expression.optional(),
    sequence: z
      .strictObject({
        by: Expression.optional(),
        maxspan: Duration,
        steps: z.array(Step).min(2, "a sequence has at least two steps").max(MAX_SEQUENCE_STEPS),
        /** Partial matches kept per key; older ones are dropped (counted). */
        max_pending: z.number().int().min(1).max(1000).optional(),
      })
      .optional(),
    absence: z
      .strictObject({
        by: Expression.optional(),
        within: Duration,
        after: Step.omit({ name: true }),
        missing: Step.omit({ name: true }),
      })
      .optional(),
    fixtures: z.array(Fixture).max(MAX_FIXTURES_PER_RULE).default([]),
  })
  .superRefine((r, ctx) => {
    const shapes = [r.aggregates ? "aggregates" : "", r.sequence ? "sequence" : "", r.absence ? "absence" : ""].filter(
      Boolean,
    );
    if (shapes.length > 1)
      ctx.addIssue({
        code: "custom",
        path: [shapes[1] as string],
        message: `a rule has one of ${shapes.join(" or ")}`,
      });
    if ((r.sequence || r.absence) && (r.stream || r.when))
      ctx.addIssue({
        code: "custom",
        path: [r.stream ? "stream" : "when"],
        message: "a sequence or absence rule names its streams in its steps",
      });
    if (!r.sequence && !r.absence && !r.stream)
      ctx.addIssue({
        code: "custom",
        path: ["stream"],
        message: `name the stream the rule reads: ${STREAM_NAMES.join(", ")}`,
      });
    if (!r.sequence && !r.absence && !r.when && !r.aggregates)
      ctx.addIssue({ code: "custom", path: ["when"], message: "a rule needs a condition (when)" });
    if (r.aggregates && !r.condition)
      ctx.addIssue({
        code: "custom",
        path: ["condition"],
        message: "say when the aggregates fire, e.g. cards_24h >= 3",
      });
    if (!r.aggregates && r.condition)
      ctx.addIssue({
        code: "custom",
        path: ["condition"],
        message: "condition is for aggregates; put an event's test in when",
      });
    for (const [name, a] of Object.entries(r.aggregates ?? {})) {
      if (a.fn === "count" && a.of)
        ctx.addIssue({ code: "custom", path: ["aggregates", name, "of"], message: "count counts events: remove of" });
      if (a.fn !== "count" && !a.of)
        ctx.addIssue({
          code: "custom",
          path: ["aggregates", name, "of"],
          message: `${a.fn} needs of: the value to ${a.fn === "sum" ? "add up" : "count distinct"}`,
        });
      if (a.fn !== "distinct_count" && a.max_distinct !== undefined)
        ctx.addIssue({
          code: "custom",
          path: ["aggregates", name, "max_distinct"],
          message: "only for distinct_count",
        });
    }
    if (r.sequence) {
      const seen = new Set<string>();
      r.sequence.steps.forEach((s, i) => {
        if (seen.has(s.name))
          ctx.addIssue({ code: "custom", path: ["sequence", "steps", i, "name"], message: `a second step ${s.name}` });
        seen.add(s.name);
      });
    }
  });
export type RuleSpec = z.output<typeof RuleSpec>;

const MacroSpec = z.union([Expression, z.strictObject({ condition: Expression, description: Text(500).optional() })]);

/** A rules file: rules, and macros (shared conditions) usable by every rule of the set. */
export const RulesFile = z.strictObject({
  macros: z
    .record(Name, MacroSpec)
    .refine((m) => Object.keys(m).length <= MAX_MACROS_PER_FILE, `at most ${MAX_MACROS_PER_FILE}`)
    .optional(),
  /** Validated one by one (RuleSpec), so that one wrong rule does not hide the problems of the others. */
  rules: z.array(z.unknown()).max(MAX_RULES_PER_FILE, `at most ${MAX_RULES_PER_FILE} rules in a file`).optional(),
});
export type RulesFile = z.output<typeof RulesFile>;

export const MAX_LIST_ENTRIES = 200_000;
export const MAX_LIST_ENTRY_LENGTH = 256;

const ListEntry = z.union([
  Text(MAX_LIST_ENTRY_LENGTH),
  z.number().transform(String),
  z.strictObject({ value: z.union([Text(MAX_LIST_ENTRY_LENGTH), z.number().transform(String)]), label: Text(200) }),
]);

/** A named list (`<name>.list.yaml`): its kind, where its entries come from, the entries. */
export const ListFile = z
  .strictObject({
    name: Name.optional(),
    kind: z.enum(["set", "prefix", "cidr", "words"]),
    description: Text(1000).optional(),
    source: Text(1000).describe("where the entries come from"),
    entries: z.array(ListEntry).max(MAX_LIST_ENTRIES).optional(),
    /** A text file beside this one: one entry a line, `value<TAB>label`, `#` comments. */
    file: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+\.txt$/, "a .txt file name in the same folder (no path)")
      .optional(),
  })
  .refine((l) => l.entries !== undefined || l.file !== undefined, { message: "give entries, or a file of entries" });
export type ListFile = z.output<typeof ListFile>;
