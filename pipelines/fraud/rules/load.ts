// Reads a rules folder as one snapshot: every rules file (`*.yaml`), every list (`*.list.yaml` and
// the `.txt` files they name), parsed with the shared YAML loader and validated with zod. The folder
// is written by another team, so everything is bounded before it is parsed: the number of files,
// their sizes, the folder depth, the nesting of YAML flow collections (which the YAML parser reads
// recursively). Problems are collected from every file, not only the first.
import { createHash } from "node:crypto";
import { type Dirent, lstatSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type Scalar } from "yaml";
import type { z } from "zod";
import {
  ConfigError,
  type ConfigProblem,
  parseYamlConfig,
  validateConfig,
} from "../../../schemas/config/yaml-config.ts";
import type { ExpressionOrigin } from "../cel/expanded.ts";

export const LOAD_LIMITS = {
  maxFiles: 2000,
  maxDepth: 8,
  maxRulesFileBytes: 1024 * 1024,
  maxListFileBytes: 16 * 1024 * 1024,
  maxTotalBytes: 128 * 1024 * 1024,
  /** Flow collections (`[`, `{`) open at once in a YAML file. */
  maxFlowNesting: 64,
};

export interface RuleProblem extends ConfigProblem {
  file: string;
}

export interface ParsedYaml<T> {
  file: string;
  /** Path shown in messages: relative to the working directory when inside it. */
  value: T;
  /** Line and column of a field path (its key, or its parent's when missing). */
  locate(path: PropertyKey[]): [number, number];
  /** The origin of an expression (a string scalar) at `path`, mapping offsets in its value to lines. */
  expression(path: PropertyKey[]): ExpressionOrigin;
}

export interface SnapshotFiles {
  root: string;
  rulesFiles: string[];
  listFiles: string[];
  /** Every file read, by path, with its bytes' sha256: the snapshot's identity. */
  hashes: Map<string, string>;
  /** Bytes read so far (bounded by LOAD_LIMITS.maxTotalBytes). */
  bytes: number;
  problems: RuleProblem[];
}

/** The files of a rules folder, walked without recursion, within the limits. */
export function listSnapshotFiles(root: string): SnapshotFiles {
  const out: SnapshotFiles = { root, rulesFiles: [], listFiles: [], hashes: new Map(), bytes: 0, problems: [] };
  const problem = (file: string, message: string) =>
    out.problems.push({ file: display(file), line: 0, column: 0, field: "", message });
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(root);
  } catch {
    problem(root, "no such folder: give the folder of the rules files (default: rules/)");
    return out;
  }
  if (!stat.isDirectory()) {
    problem(root, "not a folder: give the folder of the rules files");
    return out;
  }
  const pending: Array<{ dir: string; depth: number }> = [{ dir: root, depth: 0 }];
  let files = 0;
  while (pending.length > 0) {
    const { dir, depth } = pending.pop() as { dir: string; depth: number };
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      problem(dir, `cannot read the folder: ${(e as Error).message}`);
      continue;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      const path = join(dir, e.name);
      // Symbolic links are not followed: a snapshot is what is in the folder.
      if (e.isDirectory()) {
        if (depth + 1 > LOAD_LIMITS.maxDepth) problem(path, `folders nest more than ${LOAD_LIMITS.maxDepth} deep`);
        else pending.push({ dir: path, depth: depth + 1 });
        continue;
      }
      if (!e.isFile()) continue;
      if (!/\.ya?ml$/.test(e.name)) continue;
      if (++files > LOAD_LIMITS.maxFiles) {
        problem(root, `more than ${LOAD_LIMITS.maxFiles} YAML files`);
        return out;
      }
      if (/\.list\.ya?ml$/.test(e.name)) out.listFiles.push(path);
      else out.rulesFiles.push(path);
    }
  }
  out.rulesFiles.sort();
  out.listFiles.sort();
  return out;
}

/** Reads a file of at most `max` bytes, recording its hash in the snapshot. */
export function readBounded(files: SnapshotFiles, path: string, max: number): string | undefined {
  let size: number;
  try {
    size = lstatSync(path).size;
  } catch (e) {
    files.problems.push({ file: display(path), line: 0, column: 0, field: "", message: (e as Error).message });
    return undefined;
  }
  if (size > max) {
    files.problems.push({
      file: display(path),
      line: 0,
      column: 0,
      field: "",
      message: `the file is ${size} bytes; at most ${max}`,
    });
    return undefined;
  }
  files.bytes += size;
  if (files.bytes > LOAD_LIMITS.maxTotalBytes) {
    files.problems.push({
      file: display(path),
      line: 0,
      column: 0,
      field: "",
      message: `the rules folder passes ${LOAD_LIMITS.maxTotalBytes} bytes`,
    });
    return undefined;
  }
  const bytes = readFileSync(path);
  files.hashes.set(relative(files.root, path), createHash("sha256").update(bytes).digest("hex"));
  const text = bytes.toString("utf8");
  if (text.includes("\uFFFD") && !bytes.includes(Buffer.from("\uFFFD"))) {
    files.problems.push({ file: display(path), line: 0, column: 0, field: "", message: "not valid UTF-8" });
    return undefined;
  }
  return text;
}

/** Parses and validates one YAML file; undefined (with problems added) when it is not valid. */
export function parseYamlFile<S extends z.ZodType>(
  files: SnapshotFiles,
  path: string,
  text: string,
  schema: S,
): ParsedYaml<z.output<S>> | undefined {
  const file = display(path);
  const nesting = flowNesting(text);
  if (nesting) {
    files.problems.push({
      file,
      line: nesting.line,
      column: nesting.column,
      field: "",
      message: `[ and { nest more than ${LOAD_LIMITS.maxFlowNesting} deep`,
    });
    return undefined;
  }
  let value: z.output<S>;
  let locate: (path: PropertyKey[]) => [number, number];
  try {
    const parsed = parseYamlConfig(file, text);
    locate = parsed.locate;
    value = validateConfig(file, schema, parsed.value, parsed.locate);
  } catch (e) {
    if (e instanceof ConfigError) files.problems.push(...e.problems.map((p) => ({ ...p, file })));
    else files.problems.push({ file, line: 0, column: 0, field: "", message: (e as Error).message });
    return undefined;
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  return {
    file,
    value,
    locate,
    expression: (fieldPath) => expressionOrigin(file, text, lineCounter, doc.contents as Node | null, fieldPath),
  };
}

function expressionOrigin(
  file: string,
  text: string,
  lines: LineCounter,
  root: Node | null,
  path: PropertyKey[],
): ExpressionOrigin {
  const node = nodeAt(root, path);
  const field = path
    .map((p) => (typeof p === "number" ? `[${p}]` : String(p)))
    .join(".")
    .replaceAll(".[", "[");
  let map: number[] | undefined;
  return {
    file,
    field,
    position(offset: number): [number, number] {
      if (!node || !isScalar(node) || !node.range) return [0, 0];
      map ??= alignValue(text, node as Scalar);
      const at = map[Math.max(0, Math.min(offset, map.length - 1))] ?? node.range[0];
      const pos = lines.linePos(at);
      return [pos.line, pos.col];
    },
  };
}

function nodeAt(root: Node | null, path: PropertyKey[]): Node | null {
  let node: Node | null = root;
  for (const key of path) {
    if (!node) return null;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
      node = (pair?.value as Node | null) ?? null;
    } else if (isSeq(node) && typeof key === "number") {
      node = (node.items[key] as Node | null) ?? null;
    } else return null;
  }
  return node;
}

/**
 * For each character of a scalar's value, its offset in the file. The value is a subsequence of the
 * source (quotes, escapes, indentation and folded line breaks are what the source has more of), so a
 * greedy walk aligns them; a character the walk cannot place gets the last placed offset.
 */
function alignValue(text: string, node: Scalar): number[] {
  const value = String(node.value);
  const [start, end] = node.range as [number, number, number];
  const out = new Array<number>(value.length + 1);
  let s = start;
  // Skip a block scalar's header line (| or >, with its indicators).
  if (node.type === "BLOCK_LITERAL" || node.type === "BLOCK_FOLDED") {
    const nl = text.indexOf("\n", s);
    if (nl >= 0 && nl < end) s = nl + 1;
  }
  let last = s;
  for (let v = 0; v < value.length; v++) {
    const c = value[v];
    let k = s;
    // look ahead a bounded distance: past quotes, escapes, indentation
    const limit = Math.min(end, s + 256);
    while (k < limit && text[k] !== c) k++;
    if (k < limit) {
      out[v] = k;
      last = k;
      s = k + 1;
    } else out[v] = last;
  }
  out[value.length] = Math.min(end, s);
  return out;
}

/** The first place where flow collections nest deeper than the limit, ignoring quotes and comments. */
export function flowNesting(text: string): { line: number; column: number } | undefined {
  let depth = 0;
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\n") {
      line++;
      lineStart = i + 1;
      continue;
    }
    if (c === "#" && (i === lineStart || text[i - 1] === " " || text[i - 1] === "\t")) {
      while (i < text.length && text[i] !== "\n") i++;
      i--;
      continue;
    }
    if (c === '"' || c === "'") {
      // a quoted scalar (only where one can start: after a space, a colon, a bracket or a comma)
      const before = text[i - 1];
      if (i !== lineStart && before !== " " && before !== "[" && before !== "{" && before !== "," && before !== ":")
        continue;
      let j = i + 1;
      while (j < text.length) {
        if (c === '"' && text[j] === "\\") j += 2;
        else if (text[j] === c) {
          if (c === "'" && text[j + 1] === "'") j += 2;
          else break;
        } else {
          if (text[j] === "\n") {
            line++;
            lineStart = j + 1;
          }
          j++;
        }
      }
      i = j;
      continue;
    }
    if (c === "[" || c === "{") {
      if (++depth > LOAD_LIMITS.maxFlowNesting) return { line, column: i - lineStart + 1 };
    } else if (c === "]" || c === "}") depth = Math.max(0, depth - 1);
  }
  return undefined;
}

export function display(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith("..") || rel === "" ? path : rel;
}
