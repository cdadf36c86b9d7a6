// A rules folder as one deployable snapshot: its files (rules, lists, the lists' text files), gzipped
// into one record of the rules.snapshots topic, and back into a folder a worker compiles exactly as
// `weir rules check` compiled the original (the snapshot's version is a hash of the files' contents,
// not of where they are, so both sides agree on it).
//
// A bundle comes from Kafka, which another team writes to: unpacking it is bounded (its size once
// inflated, the number of files, their paths: relative, no `..`, at most LOAD_LIMITS.maxDepth deep).
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { LOAD_LIMITS } from "../rules/load.ts";

export interface BundleFile {
  /** Relative to the folder, with `/`. */
  path: string;
  bytes: Buffer;
}

/** A gzipped bundle is at most this big (one Kafka record; the topic allows 10 MiB). */
export const MAX_BUNDLE_BYTES = 8 * 1024 * 1024;

export class BundleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BundleError";
  }
}

/** The files a snapshot of `root` holds: every YAML and text file, hidden ones and symbolic links left out, as the compiler reads them. */
export function folderFiles(root: string): BundleFile[] {
  const out: BundleFile[] = [];
  let total = 0;
  const pending: Array<{ dir: string; depth: number }> = [{ dir: root, depth: 0 }];
  while (pending.length > 0) {
    const { dir, depth } = pending.pop() as { dir: string; depth: number };
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (depth + 1 <= LOAD_LIMITS.maxDepth) pending.push({ dir: path, depth: depth + 1 });
        continue;
      }
      if (!e.isFile() || !/\.(ya?ml|txt)$/.test(e.name)) continue;
      total += lstatSync(path).size;
      if (out.length >= LOAD_LIMITS.maxFiles * 2 || total > LOAD_LIMITS.maxTotalBytes)
        throw new BundleError(`${root} holds more than a rules folder may (weir rules check says what)`);
      out.push({ path: relative(root, path).split(sep).join("/"), bytes: readFileSync(path) });
    }
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** [u16 path length][path][u32 size][bytes] per file, gzipped. */
export function packBundle(files: readonly BundleFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const path = Buffer.from(f.path, "utf8");
    const head = Buffer.allocUnsafe(2 + path.length + 4);
    head.writeUInt16BE(path.length, 0);
    path.copy(head, 2);
    head.writeUInt32BE(f.bytes.length, 2 + path.length);
    parts.push(head, f.bytes);
  }
  const packed = gzipSync(Buffer.concat(parts), { level: 9 });
  if (packed.length > MAX_BUNDLE_BYTES)
    throw new BundleError(
      `the rules folder is ${packed.length} bytes gzipped; a snapshot is at most ${MAX_BUNDLE_BYTES} (move big lists out of it)`,
    );
  return packed;
}

export function unpackBundle(packed: Buffer): BundleFile[] {
  let raw: Buffer;
  try {
    raw = gunzipSync(packed, { maxOutputLength: LOAD_LIMITS.maxTotalBytes + 1024 * 1024 });
  } catch (e) {
    throw new BundleError(`the snapshot's bundle does not inflate: ${(e as Error).message}`);
  }
  const out: BundleFile[] = [];
  let o = 0;
  while (o < raw.length) {
    if (out.length >= LOAD_LIMITS.maxFiles * 2) throw new BundleError("the snapshot holds too many files");
    if (o + 2 > raw.length) throw new BundleError("the snapshot's bundle is truncated");
    const n = raw.readUInt16BE(o);
    const path = raw.toString("utf8", o + 2, o + 2 + n);
    o += 2 + n;
    if (o + 4 > raw.length) throw new BundleError("the snapshot's bundle is truncated");
    const size = raw.readUInt32BE(o);
    o += 4;
    if (o + size > raw.length) throw new BundleError("the snapshot's bundle is truncated");
    checkPath(path);
    out.push({ path, bytes: raw.subarray(o, o + size) });
    o += size;
  }
  return out;
}

function checkPath(path: string): void {
  const parts = path.split("/");
  if (
    path === "" ||
    path.startsWith("/") ||
    path.includes("\\") ||
    path.includes("\u0000") ||
    parts.some((p) => p === "" || p === "." || p === "..") ||
    parts.length > LOAD_LIMITS.maxDepth + 1
  )
    throw new BundleError(
      `the snapshot names a file ${JSON.stringify(path.slice(0, 100))}: not a path inside a rules folder`,
    );
}

/** Writes the files into `dir` (emptied first). */
export function materialize(files: readonly BundleFile[], dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const f of files) {
    checkPath(f.path);
    const path = join(dir, ...f.path.split("/"));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, f.bytes);
  }
}
