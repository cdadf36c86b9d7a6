// Masks PII in log records before anything stores them: each value found becomes what a human may
// see of it plus its token, `138****8000[pii:ph_3f9a0c1d2e3f4a5b]`. A line without PII comes back as
// the same string object, and a masked line masked again does not change.
import { ConfigError } from "../../../schemas/config/yaml-config.ts";
import type { BuiltinKind, PiiConfig, PiiConfigInput, RecordFieldsConfig } from "./config.ts";
import { normaliserOf, PiiDetector, type PiiDetectorOptions, PiiMatches } from "./detector.ts";
import type { PiiKey } from "./key.ts";
import { displayOf, normaliseBuiltin, PiiTokenizer } from "./token.ts";
import { maskUrl } from "./url.ts";

export class PiiMasker {
  readonly detector: PiiDetector;
  readonly config: PiiConfig;
  /** Values masked so far, by kind (in text and in whole fields). */
  readonly counts: Record<string, number>;
  private readonly tokenizer: PiiTokenizer;
  private readonly matches = new PiiMatches();
  private readonly keepLast: number[];
  private readonly normalisers: ((raw: string) => string)[];

  constructor(config: PiiConfigInput | PiiConfig, key: PiiKey, options: PiiDetectorOptions = {}) {
    this.detector = new PiiDetector(config, options);
    this.config = this.detector.config;
    this.tokenizer = new PiiTokenizer(key);
    this.counts = Object.fromEntries(this.detector.kinds.map((k) => [k, 0]));
    this.keepLast = [0, 0, 0, 0, ...this.config.extra.map((p) => p.keepLast)];
    this.normalisers = this.detector.kinds.map((kind, i) =>
      i < 4
        ? (raw: string) => normaliseBuiltin(kind as BuiltinKind, raw)
        : normaliserOf(this.config.extra[i - 4]?.normalise ?? "none"),
    );
  }

  /** `s` with every PII in it masked; `s` itself (the same object) when there was none. */
  maskText(s: string): string {
    const m = this.matches;
    this.detector.scan(s, m);
    if (m.length === 0) return s;
    let out = "";
    let last = 0;
    for (let k = 0; k < m.length; k++) {
      const kind = m.kinds[k] as number;
      const start = m.starts[k] as number;
      out += s.slice(last, start);
      out += this.replacement(kind, m.values[k] as string);
      last = m.ends[k] as number;
      this.count(kind);
    }
    return out + s.slice(last);
  }

  /**
   * A field masked whole, whatever it holds: its value, normalised as `kind` says, becomes a token.
   * Empty values stay empty, and a value that already is a masked one stays as it is.
   */
  maskValue(kind: string, value: string): string {
    if (value.length === 0 || isMasked(value)) return value;
    const index = this.kindIndexOf(kind);
    const normalised = (this.normalisers[index] as (raw: string) => string)(value);
    this.count(index);
    return this.replacement(index, normalised);
  }

  /** The token (`pii:ph_…`) of a value as anyone may type it: what to search for to find it. */
  token(kind: string, rawValue: string): string {
    const index = this.kindIndexOf(kind);
    return this.tokenizer.token(
      this.detector.codes[index] as string,
      (this.normalisers[index] as (raw: string) => string)(rawValue),
    );
  }

  /** The counts as they are now, and zero from here on. */
  takeCounts(): Record<string, number> {
    const taken = { ...this.counts };
    for (const k of Object.keys(this.counts)) this.counts[k] = 0;
    return taken;
  }

  private replacement(kind: number, normalised: string): string {
    const code = this.detector.codes[kind] as string;
    const name = this.detector.kinds[kind] as string;
    return `${displayOf(name, normalised, this.keepLast[kind])}[${this.tokenizer.token(code, normalised)}]`;
  }

  private count(kind: number): void {
    const name = this.detector.kinds[kind] as string;
    this.counts[name] = (this.counts[name] as number) + 1;
  }

  private kindIndexOf(kind: string): number {
    const index = this.detector.kindIndex(kind);
    if (index < 0) {
      throw new Error(`unknown PII kind "${kind}": one of ${this.detector.kinds.join(", ")}`);
    }
    return index;
  }
}

function isMasked(value: string): boolean {
  return value.charCodeAt(value.length - 1) === 93 && value.lastIndexOf("[pii:") >= 0;
}

// ---- records ---------------------------------------------------------------------------------------

/** The part of an Avro record schema the masker needs (a `schema` of schemas/registry.ts fits). */
export interface RecordSchema {
  name: string;
  fields: readonly { name: string; type: unknown }[];
}

type AnyRecord = Record<string, unknown>;
type FieldOp = (rec: AnyRecord) => void;

/**
 * A function that masks, in place, the configured fields of records of `schema`: the fields to scan
 * and the fields to mask whole (`fields`, by default the masker's configuration for the record's name).
 * Paths are checked against the schema here, once, so a misspelt field fails at start-up.
 */
export function compileMasker<T extends object>(
  schema: RecordSchema,
  masker: PiiMasker,
  fields: (Omit<RecordFieldsConfig, "urls"> & { urls?: readonly string[] }) | undefined = masker.config.fields[
    schema.name
  ],
): (rec: T) => T {
  if (!fields) {
    throw new ConfigError("pii configuration", [
      {
        line: 0,
        column: 0,
        field: `fields.${schema.name}`,
        message: `no fields configured for ${schema.name} records`,
      },
    ]);
  }
  const problems: string[] = [];
  const ops: FieldOp[] = [];
  // Per top-level field: the scan and whole-value rules that apply to it (maps gather all their keys).
  const byField = new Map<string, { scan: string[]; whole: Map<string, string> }>();
  const rule = (top: string) => {
    let r = byField.get(top);
    if (!r) {
      r = { scan: [], whole: new Map() };
      byField.set(top, r);
    }
    return r;
  };
  for (const path of fields.scan) rule(path.split(".")[0] as string).scan.push(path);
  for (const [path, kind] of Object.entries(fields.whole)) {
    if (masker.detector.kindIndex(kind) < 0) problems.push(`${path}: unknown kind "${kind}"`);
    rule(path.split(".")[0] as string).whole.set(path, kind);
  }

  for (const path of fields.urls ?? []) {
    const field = schema.fields.find((f) => f.name === path);
    if (!field || nonNull(field.type) !== "string") {
      problems.push(`urls: ${path}: ${schema.name} has no string field "${path}"`);
      continue;
    }
    if (byField.has(path)) problems.push(`urls: ${path} is also scanned or masked whole; name it once`);
    ops.push((rec) => {
      const v = rec[path];
      if (typeof v === "string") rec[path] = maskUrl(masker, v);
    });
  }

  for (const [top, r] of byField) {
    const field = schema.fields.find((f) => f.name === top);
    if (!field) {
      problems.push(`${[...r.scan, ...r.whole.keys()].join(", ")}: ${schema.name} has no field "${top}"`);
      continue;
    }
    const t = nonNull(field.type);
    if (t === "string") {
      for (const p of [...r.scan, ...r.whole.keys()])
        if (p !== top) problems.push(`${p}: ${top} is a string, not a record or map`);
      const whole = r.whole.get(top);
      ops.push(
        whole !== undefined
          ? (rec) => {
              const v = rec[top];
              if (typeof v === "string") rec[top] = masker.maskValue(whole, v);
            }
          : (rec) => {
              const v = rec[top];
              if (typeof v === "string") rec[top] = masker.maskText(v);
            },
      );
    } else if (isMap(t)) {
      const all = r.scan.includes(`${top}.*`);
      const scanKeys = r.scan.filter((p) => p !== `${top}.*`).map((p) => p.slice(top.length + 1));
      const wholeKeys = new Map([...r.whole].map(([p, kind]) => [p.slice(top.length + 1), kind]));
      for (const p of [...r.scan, ...r.whole.keys()])
        if (p === top) problems.push(`${p}: a map; name a key (${top}.phone) or all of them (${top}.*)`);
      if (wholeKeys.has("*")) problems.push(`${top}.*: masking every value whole is not supported; scan them instead`);
      ops.push(all ? scanMap(top, masker, wholeKeys) : keysOfMap(top, masker, scanKeys, wholeKeys));
    } else if (isRecord(t)) {
      for (const p of [...r.scan, ...r.whole.keys()]) {
        const sub = p.slice(top.length + 1);
        const inner = t.fields.find((f) => f.name === sub);
        if (p === top || !inner || nonNull(inner.type) !== "string") {
          problems.push(`${p}: ${schema.name}.${top} has no string field "${sub}"`);
          continue;
        }
        const whole = r.whole.get(p);
        ops.push((rec) => {
          const o = rec[top] as AnyRecord | null | undefined;
          const v = o?.[sub];
          if (typeof v === "string")
            (o as AnyRecord)[sub] = whole !== undefined ? masker.maskValue(whole, v) : masker.maskText(v);
        });
      }
    } else {
      problems.push(`${top}: ${schema.name}.${top} holds no text to mask`);
    }
  }
  if (problems.length > 0) {
    throw new ConfigError(
      "pii configuration",
      problems.map((message) => ({ line: 0, column: 0, field: `fields.${schema.name}`, message })),
    );
  }
  return (rec: T) => {
    for (let k = 0; k < ops.length; k++) (ops[k] as FieldOp)(rec as AnyRecord);
    return rec;
  };
}

function scanMap(top: string, masker: PiiMasker, whole: Map<string, string>): FieldOp {
  if (whole.size === 0) {
    return (rec) => {
      const m = rec[top] as Record<string, string> | null | undefined;
      if (!m) return;
      for (const k in m) m[k] = masker.maskText(m[k] as string);
    };
  }
  return (rec) => {
    const m = rec[top] as Record<string, string> | null | undefined;
    if (!m) return;
    for (const k in m) {
      const kind = whole.get(k);
      m[k] = kind === undefined ? masker.maskText(m[k] as string) : masker.maskValue(kind, m[k] as string);
    }
  };
}

function keysOfMap(top: string, masker: PiiMasker, scan: string[], whole: Map<string, string>): FieldOp {
  const scanOnly = scan.filter((k) => !whole.has(k));
  return (rec) => {
    const m = rec[top] as Record<string, string> | null | undefined;
    if (!m) return;
    for (const [k, kind] of whole) {
      const v = m[k];
      if (typeof v === "string") m[k] = masker.maskValue(kind, v);
    }
    for (const k of scanOnly) {
      const v = m[k];
      if (typeof v === "string") m[k] = masker.maskText(v);
    }
  };
}

function nonNull(type: unknown): unknown {
  if (Array.isArray(type)) {
    const rest = type.filter((t) => t !== "null");
    return rest.length === 1 ? rest[0] : type;
  }
  return type;
}

function isMap(t: unknown): boolean {
  return (
    typeof t === "object" &&
    t !== null &&
    (t as { type?: unknown }).type === "map" &&
    (t as { values?: unknown }).values === "string"
  );
}

function isRecord(t: unknown): t is RecordSchema {
  return typeof t === "object" && t !== null && (t as { type?: unknown }).type === "record";
}
