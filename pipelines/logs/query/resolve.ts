// From what was typed to what is searched: field names resolved through the field table, values
// checked and converted for their field (levels uppercased, `5xx` and durations turned into ranges),
// and PII typed in a query replaced by its token, since the stores only hold tokens. Both compilers
// start from the result, so a query means the same in Elasticsearch and in ClickHouse.

import type { BuiltinKind } from "../pii/config.ts";
import { PiiDetector } from "../pii/detector.ts";
import type { PiiMasker } from "../pii/masker.ts";
import { normaliseBuiltin } from "../pii/token.ts";
import { type FieldRef, QueryError, type QueryNode, type Span, type Value } from "./ast.ts";
import {
  ATTRIBUTE_KEY,
  ATTRIBUTE_PREFIXES,
  checkSchema,
  editDistance,
  LEVELS,
  LOG_SCHEMA,
  type LogField,
  type LogSchema,
  PII_FIELDS,
} from "./fields.ts";
import { DEFAULT_QUERY_LIMITS, QueryLimitError, type QueryLimits, wholeQuery } from "./limits.ts";

/** What a condition looks at: a field of the table, or one attribute. */
export type Target = { field: LogField; attribute?: undefined } | { field?: undefined; attribute: string };

/** Where a PII token is looked for: everywhere masked values are kept, one text field, or one attribute. */
export type TokenScope = { everywhere: true } | { field: LogField } | { attribute: string };

export type SearchNode =
  | { type: "all" }
  | { type: "and"; children: SearchNode[] }
  | { type: "or"; children: SearchNode[] }
  | { type: "not"; child: SearchNode }
  /**
   * Full text on a text field (message): the words in this order. `bare`: typed without a field, so it
   * also matches the keyword fields bare words search (the logger) and whole attribute values.
   */
  | { type: "phrase"; target: Target; text: string; bare?: true }
  /** One of these exact values (levels uppercased; integers and ids as digit strings). */
  | { type: "equals"; target: Target; values: string[] }
  /** `parts` joined by "any characters"; `bare` as for a phrase. */
  | { type: "wildcard"; target: Target; parts: string[]; span: Span; bare?: true }
  | { type: "exists"; target: Target }
  /** Bounds in the field's unit: whole numbers, or nanoseconds for durations. */
  | { type: "range"; target: Target; gte?: number; gt?: number; lte?: number; lt?: number }
  | { type: "token"; token: string; scope: TokenScope };

export interface ResolveOptions {
  schema?: LogSchema;
  /**
   * The masker the logs pipeline masks with (same key, same configuration): turns a phone number, ID,
   * email or card typed in a query into the token the stores hold. Without it such a query is refused.
   */
  pii?: PiiMasker;
  /** Default DEFAULT_QUERY_LIMITS. */
  limits?: QueryLimits;
}

const LEVEL_ALIASES: Record<string, (typeof LEVELS)[number]> = {
  warning: "WARN",
  err: "ERROR",
  "10": "TRACE",
  "20": "DEBUG",
  "30": "INFO",
  "40": "WARN",
  "50": "ERROR",
  "60": "FATAL",
};

const DURATION_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
/** 1,000,000 hours: far above any latency, far below 2^63 ns. */
const MAX_DURATION_NS = 3600e9 * 1e6;
const TOKEN_BODY = /^[a-z][a-z0-9]{1,15}_[0-9a-f]{16}$/;
const DEFAULT_DETECTOR = new PiiDetector();

type Lookup = { target: Target } | { pii: (typeof PII_FIELDS)[string] };

export function resolveQuery(ast: QueryNode, query: string, options: ResolveOptions = {}): SearchNode {
  const schema = options.schema ?? LOG_SCHEMA;
  checkSchema(schema);
  const search = simplify(new Resolver(query, schema, options.pii).node(ast));
  checkLimits(search, query, options.limits ?? DEFAULT_QUERY_LIMITS);
  return search;
}

/** Terms and wildcards counted on the query as it will be searched (after simplify: a repeated term counts once). */
function checkLimits(root: SearchNode, query: string, limits: QueryLimits): void {
  let terms = 0;
  let wildcards = 0;
  // An explicit stack: the tree is already depth-bounded, but nothing here needs recursion.
  const pending: SearchNode[] = [root];
  for (let n = pending.pop(); n !== undefined; n = pending.pop()) {
    switch (n.type) {
      case "all":
        break;
      case "and":
      case "or":
        pending.push(...n.children);
        break;
      case "not":
        pending.push(n.child);
        break;
      case "equals":
        terms += n.values.length;
        break;
      case "wildcard": {
        terms++;
        const stars = n.parts.length - 1;
        if (stars > limits.maxWildcardStars) {
          throw new QueryLimitError(
            "maxWildcardStars",
            stars,
            limits.maxWildcardStars,
            `this value has ${stars} wildcards (*), over the limit of ${limits.maxWildcardStars} per value (maxWildcardStars)`,
            query,
            n.span,
            "keep the parts you are sure of: gift-svc-* rather than g*t*-*v*-*",
          );
        }
        if (!limits.leadingWildcards && n.parts[0] === "") {
          throw new QueryLimitError(
            "leadingWildcards",
            1,
            0,
            "a value starting with * is refused (leadingWildcards): it makes the store read every value of the field",
            query,
            n.span,
            "start with the characters you know (timeout*, gift-svc-*), or search for the whole word",
          );
        }
        if (++wildcards > limits.maxWildcards) {
          throw new QueryLimitError(
            "maxWildcards",
            countWildcards(root),
            limits.maxWildcards,
            `the query has ${countWildcards(root)} values with wildcards, over the limit of ${limits.maxWildcards} (maxWildcards)`,
            query,
            n.span,
            "list the values instead: host:(a OR b) is cheaper than host:a* OR host:b*",
          );
        }
        break;
      }
      default:
        terms++;
    }
  }
  if (terms > limits.maxTerms) {
    throw new QueryLimitError(
      "maxTerms",
      terms,
      limits.maxTerms,
      `the query has ${terms} terms, over the limit of ${limits.maxTerms} (maxTerms)`,
      query,
      wholeQuery(query),
      "every word, phrase, field:value and value of a list counts; search in several queries, or by a shared value (trace:…, service:…)",
    );
  }
}

function countWildcards(root: SearchNode): number {
  let n = 0;
  const pending: SearchNode[] = [root];
  for (let x = pending.pop(); x !== undefined; x = pending.pop()) {
    if (x.type === "wildcard") n++;
    else if (x.type === "and" || x.type === "or") pending.push(...x.children);
    else if (x.type === "not") pending.push(x.child);
  }
  return n;
}

class Resolver {
  private readonly detector: PiiDetector;
  private readonly message: LogField;

  constructor(
    private readonly query: string,
    private readonly schema: LogSchema,
    private readonly pii: PiiMasker | undefined,
  ) {
    this.detector = pii?.detector ?? DEFAULT_DETECTOR;
    const message = schema.fields.find((f) => f.kind === "text");
    if (!message) throw new Error("log schema: no text field for bare words to search");
    this.message = message;
  }

  node(n: QueryNode): SearchNode {
    switch (n.type) {
      case "all":
        return n;
      case "and":
      case "or":
        return { type: n.type, children: n.children.map((c) => this.node(c)) };
      case "not":
        return { type: "not", child: this.node(n.child) };
      case "match":
        return n.field === null ? this.text({ field: this.message }, n.value, true) : this.match(n.field, n.value);
      case "exists":
        return this.exists(n.field);
      case "range":
        return this.range(n.field, n.lower?.value, n.lower?.inclusive, n.upper?.value, n.upper?.inclusive);
    }
  }

  // ---- fields -------------------------------------------------------------------------------------

  private lookup(ref: FieldRef): Lookup {
    const lower = ref.name.toLowerCase();
    for (const prefix of ATTRIBUTE_PREFIXES) {
      if (lower.startsWith(prefix)) {
        const key = ref.name.slice(prefix.length);
        if (!ATTRIBUTE_KEY.test(key)) {
          throw this.error(
            `"${key}" is no attribute name`,
            ref.span,
            "attribute names are letters, digits and _ . @ -, e.g. attr.reqId",
          );
        }
        return { target: { attribute: key } };
      }
    }
    const pii = PII_FIELDS[lower];
    if (pii) return { pii };
    const field = this.schema.fields.find(
      (f) => f.name.toLowerCase() === lower || f.aliases.some((a) => a.toLowerCase() === lower),
    );
    if (field) return { target: { field } };
    throw this.unknownField(ref);
  }

  private unknownField(ref: FieldRef): QueryError {
    if (/^[-!]./.test(ref.name)) {
      const rest = ref.name.slice(1);
      return this.error(
        `unknown field "${ref.name}"`,
        ref.span,
        `to exclude, write NOT ${rest}:… (not ${ref.name[0]}${rest}:…)`,
      );
    }
    const names = [...this.schema.fields.map((f) => f.name), ...Object.keys(PII_FIELDS)];
    const candidates = [...names, ...this.schema.fields.flatMap((f) => f.aliases)];
    const lower = ref.name.toLowerCase();
    let best: string | undefined;
    let bestDistance = Number.POSITIVE_INFINITY;
    for (const c of candidates) {
      const d = editDistance(lower, c.toLowerCase());
      if (d < bestDistance) {
        bestDistance = d;
        best = c;
      }
    }
    const close = best !== undefined && bestDistance <= (lower.length <= 4 ? 1 : 2);
    const suggestion = close
      ? `: did you mean ${this.schema.fields.find((f) => f.aliases.includes(best as string))?.name ?? best}?`
      : "";
    const attribute =
      !close && ATTRIBUTE_KEY.test(ref.name) ? `an attribute? attr.${ref.name}; ` : "attributes: attr.<name>; ";
    return this.error(
      `unknown field "${ref.name}"${suggestion}`,
      ref.span,
      `fields: ${names.join(", ")}; ${attribute}to search for text with a colon, quote it`,
    );
  }

  // ---- field:value ------------------------------------------------------------------------------------

  private match(ref: FieldRef, value: Value): SearchNode {
    const found = this.lookup(ref);
    if ("pii" in found) return this.piiField(ref, found.pii, value);
    const target = found.target;
    if (target.attribute !== undefined) return this.text(target, value, false);
    const field = target.field;
    switch (field.kind) {
      case "text":
        return this.text(target, value, false);
      case "keyword":
        if (value.kind === "wildcard") return this.wildcard(target, value);
        return { type: "equals", target, values: [value.text] };
      case "level":
        return { type: "equals", target, values: this.levels(field, value) };
      case "integer":
        return this.integerMatch(target, field, value);
      case "id":
        return { type: "equals", target, values: [this.wholeNumber(field, value)] };
      case "duration":
        throw this.error(
          `${field.name} is compared, not matched`,
          value.span,
          `e.g. ${field.name} > 1s or ${field.name}:[100ms TO 1s]`,
        );
    }
  }

  /** Text fields and attributes: phrases and values, with PII replaced by tokens. */
  private text(target: Target, value: Value, bare: boolean): SearchNode {
    const masked = target.attribute !== undefined || target.field.masked;
    if (value.kind === "wildcard") {
      if (masked) {
        for (const part of value.parts) {
          if (this.detector.find(part).length > 0) {
            throw this.error(
              "a wildcard cannot search for part of a masked value",
              value.span,
              "the stores hold only a token of it: type the whole value, without *",
            );
          }
        }
      }
      const w = this.wildcard(target, value);
      return bare && w.type === "wildcard" ? { ...w, bare: true } : w;
    }
    if (masked) {
      const rewritten = this.rewritePii(target, value, bare);
      if (rewritten) return rewritten;
    }
    if (target.attribute !== undefined) return { type: "equals", target, values: [value.text] };
    return bare
      ? { type: "phrase", target, text: value.text, bare: true }
      : { type: "phrase", target, text: value.text };
  }

  private rewritePii(target: Target, value: Value, bare: boolean): SearchNode | undefined {
    const found = this.detector.find(value.text);
    if (found.length === 0) return undefined;
    const masker = this.requireMasker(found[0]?.kind as string, value.span);
    const whole = this.detector.classify(value.text);
    if (whole) {
      const token = masker.token(whole.kind, value.text.slice(whole.start, whole.end));
      const scope: TokenScope =
        target.attribute !== undefined
          ? { attribute: target.attribute }
          : bare
            ? { everywhere: true }
            : { field: target.field };
      return { type: "token", token, scope };
    }
    // PII among other words: the stores hold the line masked, so search for it masked.
    const text = masker.maskText(value.text);
    if (target.attribute !== undefined) return { type: "equals", target, values: [text] };
    return bare ? { type: "phrase", target, text, bare: true } : { type: "phrase", target, text };
  }

  private piiField(ref: FieldRef, kind: (typeof PII_FIELDS)[string], value: Value): SearchNode {
    if (value.kind === "wildcard") {
      throw this.error(
        `${ref.name} searches one whole value`,
        value.span,
        "PII is stored as a token: type the whole value, without *",
      );
    }
    const text = value.text.trim();
    if (kind === "any") {
      if (TOKEN_BODY.test(text)) return { type: "token", token: `pii:${text}`, scope: { everywhere: true } };
      if (text.startsWith("pii:") && TOKEN_BODY.test(text.slice(4)))
        return { type: "token", token: text, scope: { everywhere: true } };
      const whole = this.detector.classify(text);
      if (!whole) {
        throw this.error(
          `"${value.text}" is neither a PII token nor a phone, ID, email or card number`,
          value.span,
          "a token reads pii:ph_3f9a0c1d2e3f4a5b (the code, an underscore, 16 hex digits), as shown in masked lines",
        );
      }
      return {
        type: "token",
        token: this.requireMasker(whole.kind, value.span).token(whole.kind, text),
        scope: { everywhere: true },
      };
    }
    if (!plausible(kind, text)) {
      throw this.error(`"${value.text}" is not ${KIND_NAMES[kind]}`, value.span, KIND_EXAMPLES[kind]);
    }
    return {
      type: "token",
      token: this.requireMasker(kind, value.span).token(kind, text),
      scope: { everywhere: true },
    };
  }

  private requireMasker(kind: string, span: Span): PiiMasker {
    if (this.pii) return this.pii;
    throw this.error(
      `this looks like ${KIND_NAMES[kind as BuiltinKind] ?? `a ${kind}`}, which the logs hold only as a token: searching for it needs the PII key`,
      span,
      "set WEIR_PII_KEY_FILE (or WEIR_PII_KEY) to the logs pipeline's key, or search for the token itself: pii:ph_…",
    );
  }

  private wildcard(target: Target, value: Extract<Value, { kind: "wildcard" }>): SearchNode {
    if (value.parts.every((p) => p === "")) return { type: "exists", target };
    return { type: "wildcard", target, parts: value.parts, span: value.span };
  }

  private exists(ref: FieldRef): SearchNode {
    const found = this.lookup(ref);
    if ("pii" in found) throw this.error(`${ref.name} searches one value; it cannot be tested for existence`, ref.span);
    return { type: "exists", target: found.target };
  }

  // ---- levels and numbers --------------------------------------------------------------------------------

  private levels(field: LogField, value: Value): string[] {
    if (value.kind === "wildcard") {
      const re = new RegExp(`^${value.parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`, "i");
      const levels = LEVELS.filter((l) => re.test(l));
      if (levels.length === 0)
        throw this.error(`no level matches ${value.text}`, value.span, `levels: ${LEVELS.join(", ")}`);
      return levels;
    }
    return [this.level(field, value)];
  }

  private level(field: LogField, value: Value): string {
    const upper = value.text.trim().toUpperCase();
    if ((LEVELS as readonly string[]).includes(upper)) return upper;
    const alias = LEVEL_ALIASES[value.text.trim().toLowerCase()];
    if (alias) return alias;
    const near = LEVELS.find((l) => editDistance(l, upper) <= 1);
    throw this.error(
      `unknown ${field.name} "${value.text}"${near ? `: did you mean ${near}?` : ""}`,
      value.span,
      `levels: ${LEVELS.join(", ")} (any case)`,
    );
  }

  private integerMatch(target: Target, field: LogField, value: Value): SearchNode {
    const text = value.text.trim();
    const hundreds = /^([1-5])xx$/i.exec(text);
    if (hundreds && value.kind !== "wildcard") {
      const base = Number(hundreds[1]) * 100;
      return { type: "range", target, gte: base, lte: base + 99 };
    }
    return { type: "equals", target, values: [this.wholeNumber(field, value)] };
  }

  private wholeNumber(field: LogField, value: Value): string {
    const text = value.text.trim();
    if (value.kind === "wildcard" || !/^\d{1,15}$/.test(text)) {
      throw this.error(
        `${field.name} is a number: "${value.text}" is not one`,
        value.span,
        field.kind === "integer"
          ? `e.g. ${field.name}:503, ${field.name}:5xx or ${field.name} >= 500`
          : `e.g. ${field.name}:100043296`,
      );
    }
    return String(Number(text));
  }

  private range(ref: FieldRef, lower?: Value, lowerIncl?: boolean, upper?: Value, upperIncl?: boolean): SearchNode {
    const found = this.lookup(ref);
    if ("pii" in found) throw this.error(`${ref.name} searches one value; it has no order`, ref.span);
    const target = found.target;
    const field = target.field;
    // Ids are keywords in Elasticsearch (user.id), where a range would compare them as text.
    if (!field || field.kind === "text" || field.kind === "keyword" || field.kind === "id") {
      throw this.error(
        `${field?.name ?? `attr.${target.attribute}`} has no order: ranges work on ${this.ordered()}`,
        ref.span,
        field?.kind === "text" ? undefined : `match values instead: ${ref.name}:value or ${ref.name}:(a OR b)`,
      );
    }
    if (field.kind === "level") {
      const from = lower
        ? LEVELS.indexOf(this.level(field, lower) as (typeof LEVELS)[number]) + (lowerIncl ? 0 : 1)
        : 0;
      const to = upper
        ? LEVELS.indexOf(this.level(field, upper) as (typeof LEVELS)[number]) - (upperIncl ? 0 : 1)
        : LEVELS.length - 1;
      const values = LEVELS.slice(from, to + 1);
      if (values.length === 0) throw this.error("no level is in this range", ref.span);
      return { type: "equals", target, values: [...values] };
    }
    const bound = (v: Value) =>
      field.kind === "duration" ? this.duration(field, v) : Number(this.wholeNumber(field, v));
    const node: Extract<SearchNode, { type: "range" }> = { type: "range", target };
    if (lower) node[lowerIncl ? "gte" : "gt"] = bound(lower);
    if (upper) node[upperIncl ? "lte" : "lt"] = bound(upper);
    return node;
  }

  private duration(field: LogField, value: Value): number {
    const m = /^(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)$/.exec(value.text.trim());
    if (!m || value.kind === "wildcard") {
      const unitless = /^\d+(\.\d+)?$/.test(value.text.trim());
      throw this.error(
        unitless ? `${field.name} needs a unit` : `"${value.text}" is not a duration`,
        value.span,
        `e.g. ${field.name} > 250ms, ${field.name} > 1.5s, ${field.name} < 800us (units: ns, us, ms, s, m, h)`,
      );
    }
    const ns = Math.round(Number(m[1]) * (DURATION_NS[m[2] as string] as number));
    // Both stores keep durations as 64-bit integers (9.2e18 ns): past that a bound is not a number to them.
    if (!Number.isFinite(ns) || ns > MAX_DURATION_NS) {
      throw this.error(
        `${field.name} ${value.text} is longer than the stores can hold (at most 1000000h)`,
        value.span,
        `e.g. ${field.name} > 1h`,
      );
    }
    return ns;
  }

  private ordered(): string {
    return this.schema.fields
      .filter((f) => f.kind === "integer" || f.kind === "duration" || f.kind === "level")
      .map((f) => f.name)
      .join(", ");
  }

  private error(problem: string, span: Span, hint?: string): QueryError {
    return new QueryError(problem, this.query, span, hint);
  }
}

const KIND_NAMES: Record<BuiltinKind, string> = {
  phone: "a phone number",
  idCard: "an ID card number",
  email: "an email address",
  card: "a bank card number",
};

const KIND_EXAMPLES: Record<BuiltinKind, string> = {
  phone: "a mainland mobile number: 13800138000, +86 138 0013 8000",
  idCard: "18 characters: 17 digits and a digit or X",
  email: "name@example.com",
  card: "13 to 19 digits: 6222 0212 3456 7890 128",
};

function plausible(kind: BuiltinKind, text: string): boolean {
  const v = normaliseBuiltin(kind, text);
  switch (kind) {
    case "phone":
      return /^1[3-9]\d{9}$/.test(v);
    case "idCard":
      return /^\d{17}[\dX]$/.test(v);
    case "email":
      return /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v);
    case "card":
      return /^\d{13,19}$/.test(v);
  }
}

/**
 * Redundant structure taken out before either compiler sees it: NOT NOT x is x; nested ANDs and ORs
 * flattened (a AND (b AND c) is a AND b AND c); a condition repeated under one AND or OR kept once;
 * `all` dropped from an AND and absorbing an OR; ORs of exact values of one field merged into one list.
 * Recursive over a tree the parser has bounded in depth (limits.ts).
 */
export function simplify(n: SearchNode): SearchNode {
  if (n.type === "not") {
    const child = simplify(n.child);
    return child.type === "not" ? child.child : { type: "not", child };
  }
  if (n.type !== "and" && n.type !== "or") return n;
  const children: SearchNode[] = [];
  const seen = new Set<string>();
  for (const c of n.children.map(simplify)) {
    for (const x of c.type === n.type ? c.children : [c]) {
      if (x.type === "all") {
        if (n.type === "or") return x;
        continue;
      }
      const key = nodeKey(x);
      if (seen.has(key)) continue;
      seen.add(key);
      children.push(x);
    }
  }
  if (children.length === 0) return { type: "all" };
  if (n.type === "or") {
    for (let i = 0; i < children.length; i++) {
      const a = children[i] as SearchNode;
      if (a.type !== "equals") continue;
      for (let j = i + 1; j < children.length; j++) {
        const b = children[j] as SearchNode;
        if (b.type === "equals" && sameTarget(a.target, b.target)) {
          children[i] = { ...a, values: [...new Set([...(children[i] as typeof a).values, ...b.values])] };
          children.splice(j--, 1);
        }
      }
    }
  }
  return children.length === 1 ? (children[0] as SearchNode) : { type: n.type, children };
}

/**
 * What a node searches, as a string: equal for conditions that match the same lines (spans aside, and
 * the order of an AND's or an OR's conditions).
 */
function nodeKey(n: SearchNode): string {
  if (n.type === "and" || n.type === "or") return `${n.type}(${n.children.map(nodeKey).sort().join(",")})`;
  if (n.type === "not") return `not(${nodeKey(n.child)})`;
  return JSON.stringify(n, (k, v) => {
    if (k === "span") return undefined;
    if (k === "field" && v && typeof v === "object" && "name" in v) return (v as LogField).name;
    return v;
  });
}

function sameTarget(a: Target, b: Target): boolean {
  return a.field !== undefined ? a.field === b.field : a.attribute === b.attribute;
}
