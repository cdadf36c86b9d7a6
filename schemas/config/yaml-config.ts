// YAML configuration validated by a zod schema. Every problem names the file, the line and column
// of the offending node, and the dotted field path, so a user can go straight to the mistake.
import { readFileSync } from "node:fs";
import { isMap, isPair, isScalar, LineCounter, type Node, parseDocument } from "yaml";
import type { z } from "zod";

export interface ConfigProblem {
  /** 1-based; 0 when the problem has no place in the file (a value from the environment, an empty file). */
  line: number;
  column: number;
  /** Dotted path of the field, e.g. `kafka.port`; empty for the whole document. */
  field: string;
  message: string;
}

/**
 * What a config text may be. The YAML parser reads nested collections recursively, so a text nested
 * a few thousand levels deep overflowed the stack ("Maximum call stack size exceeded" as the error)
 * and 100,000 unclosed brackets could exhaust the heap; no configuration nests anywhere near 64.
 * A text with many mistakes (a mangled file) lists the first ones, not thousands of lines.
 */
export const YAML_LIMITS = { maxNesting: 64, maxProblems: 20 };

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(
    readonly file: string,
    problems: ConfigProblem[],
  ) {
    const shown =
      problems.length > YAML_LIMITS.maxProblems
        ? [
            ...problems.slice(0, YAML_LIMITS.maxProblems),
            {
              line: 0,
              column: 0,
              field: "",
              message: `and ${problems.length - YAML_LIMITS.maxProblems} more problems`,
            },
          ]
        : problems;
    super(shown.map((p) => formatProblem(file, p)).join("\n"));
    this.problems = shown;
    this.name = "ConfigError";
  }
}

export function formatProblem(file: string, p: ConfigProblem): string {
  const where = p.line > 0 ? `${file}:${p.line}:${p.column}` : file;
  return p.field ? `${where}: ${p.field}: ${p.message}` : `${where}: ${p.message}`;
}

/** Parses YAML text; an empty document is an empty object. Syntax errors become ConfigErrors. */
export function parseYamlConfig(
  file: string,
  text: string,
): { value: unknown; locate: (path: PropertyKey[]) => [number, number] } {
  const deep = yamlNesting(text, YAML_LIMITS.maxNesting);
  if (deep) {
    throw new ConfigError(file, [
      {
        line: deep.line,
        column: deep.column,
        field: "",
        message: `collections nest more than ${YAML_LIMITS.maxNesting} levels deep here`,
      },
    ]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return { line: pos.line, column: pos.col, field: "", message: firstLine(e.message) };
      }),
    );
  }
  const locate = (path: PropertyKey[]): [number, number] => {
    const offset = offsetOf(doc.contents as Node | null, path);
    if (offset === undefined) return [0, 0];
    const pos = lineCounter.linePos(offset);
    return [pos.line, pos.col];
  };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    // An alias bomb (aliases of aliases that expand a small text a billion times) or an alias of
    // itself: yaml refuses it with a plain Error.
    throw new ConfigError(file, [
      { line: 0, column: 0, field: "", message: `aliases (*name) cannot be expanded: ${(e as Error).message}` },
    ]);
  }
  return { value, locate };
}

/**
 * Validates `value` against `schema`. `locate` maps a field path to a file position; `origin` may name
 * where a field came from when it was not the file (an environment variable), which is then reported.
 */
export function validateConfig<S extends z.ZodType>(
  file: string,
  schema: S,
  value: unknown,
  locate: (path: PropertyKey[]) => [number, number] = () => [0, 0],
  origin: (path: PropertyKey[]) => string | undefined = () => undefined,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.flatMap((issue): ConfigProblem[] => {
    const path = issue.path;
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => {
        const [line, column] = locate([...path, key]);
        return { line, column, field: joinPath([...path, key]), message: "unknown field" };
      });
    }
    const from = origin(path);
    const [line, column] = from ? [0, 0] : locate(path);
    const message = from ? `${issue.message} (from ${from})` : issue.message;
    return [{ line, column, field: joinPath(path), message }];
  });
  throw new ConfigError(file, problems);
}

/** Reads, parses and validates a YAML file in one step. */
export function loadYamlConfig<S extends z.ZodType>(file: string, schema: S): z.output<S> {
  const { value, locate } = parseYamlConfig(file, readFileSync(file, "utf8"));
  return validateConfig(file, schema, value, locate);
}

function joinPath(path: PropertyKey[]): string {
  return path
    .map((p) => (typeof p === "number" ? `[${p}]` : String(p)))
    .join(".")
    .replaceAll(".[", "[");
}

function firstLine(s: string): string {
  return s.split("\n", 1)[0] ?? s;
}

// The offset of the deepest node on `path` that exists: a missing field is reported at its parent.
// For a key that exists, the key itself is the position (that is where a reader looks).
function offsetOf(root: Node | null, path: PropertyKey[]): number | undefined {
  let node: Node | null = root;
  let offset = root?.range?.[0];
  for (const key of path) {
    if (!node || !("items" in node)) break;
    const items = (node as { items: unknown[] }).items;
    let next: Node | null = null;
    if (isMap(node)) {
      const pair = items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(key));
      if (!isPair(pair)) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      next = (pair.value as Node | null) ?? null;
    } else if (typeof key === "number") {
      next = (items[key] as Node | undefined) ?? null;
      offset = next?.range?.[0] ?? offset;
    } else break;
    node = next;
  }
  return offset;
}

/** An object a YAML mapping parsed into (not null, not an array). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Sets `path` in `target`, making the mappings on the way (an environment override of one setting). */
export function setIn(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (!isPlainObject(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

/**
 * The first place where collections nest deeper than `max`, found without parsing: flow collections
 * by their brackets (outside quotes and comments), block collections by the indentation levels open
 * (a compact `- - x` counts one level a dash). Block scalars' lines (after `|` or `>`) are text.
 */
export function yamlNesting(text: string, max: number): { line: number; column: number } | undefined {
  let flow = 0;
  const indents: number[] = [];
  let scalarIndent = -1; // inside a block scalar: the indentation of its header's line
  let line = 0;
  for (let start = 0; start <= text.length; line++) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    let i = start;
    while (i < end && text[i] === " ") i++;
    const indent = i - start;
    const blank = i === end || text[i] === "#" || text[i] === "\r";
    if (scalarIndent >= 0 && (blank || indent > scalarIndent)) {
      start = end + 1;
      continue;
    }
    scalarIndent = -1;
    if (!blank && flow === 0) {
      while (indents.length > 0 && (indents[indents.length - 1] as number) >= indent) indents.pop();
      indents.push(indent);
      let depth = indents.length;
      while ((text[i] === "-" || text[i] === "?") && (text[i + 1] === " " || i + 1 === end)) {
        if (++depth > max) return { line: line + 1, column: i - start + 1 };
        i += 2;
        while (i < end && text[i] === " ") i++;
      }
      if (depth > max) return { line: line + 1, column: indent + 1 };
    }
    for (; i < end; i++) {
      const c = text[i];
      if (c === "#" && (i === start || text[i - 1] === " " || text[i - 1] === "\t")) break;
      if (c === '"' || c === "'") {
        const before = text[i - 1];
        if (i !== start && before !== " " && before !== "[" && before !== "{" && before !== "," && before !== ":")
          continue;
        // A quoted scalar may span lines: skip to its closing quote.
        let j = i + 1;
        while (j < text.length) {
          if (c === '"' && text[j] === "\\") j += 2;
          else if (text[j] === c) {
            if (c === "'" && text[j + 1] === "'") j += 2;
            else break;
          } else j++;
        }
        if (j > end) {
          line += countNewlines(text, end, j);
          end = text.indexOf("\n", j);
          if (end < 0) end = text.length;
        }
        i = j;
        continue;
      }
      if (c === "[" || c === "{") {
        if (++flow + indents.length > max) return { line: line + 1, column: i - start + 1 };
      } else if (c === "]" || c === "}") flow = Math.max(0, flow - 1);
      else if ((c === "|" || c === ">") && flow === 0 && /^[|>][-+0-9]*\s*(#.*)?\r?$/.test(text.slice(i, end)))
        scalarIndent = indent;
    }
    start = end + 1;
  }
  return undefined;
}

function countNewlines(text: string, from: number, to: number): number {
  let n = 0;
  for (let k = text.indexOf("\n", from); k >= 0 && k < to; k = text.indexOf("\n", k + 1)) n++;
  return n;
}
