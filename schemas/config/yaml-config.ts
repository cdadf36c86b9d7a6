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

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(problems.map((p) => formatProblem(file, p)).join("\n"));
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
  return { value: doc.toJS() ?? {}, locate };
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
