// Expands the source's globs into the regular files they match now. Node 20 has no fs.glob, so the
// tree under each glob's fixed prefix is walked and every path tested with picomatch; a pattern
// without `**` or braces is only walked as deep as it has segments. Symlinks to files are followed
// (the file they point at is what gets read); symlinks to directories are not, so a link cycle cannot
// trap the walk.
import type { Dirent, Stats } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import picomatch from "picomatch";

interface WalkRoot {
  base: string;
  depth: number;
}

export class GlobScanner {
  private readonly roots: WalkRoot[] = [];
  private readonly literals: string[] = [];
  private readonly includes: picomatch.Matcher;
  private readonly excludes: ((path: string) => boolean) | null;

  /**
   * `warn` hears about directories and files that exist but cannot be read (permissions), once per
   * scan each; a path that vanished during the walk is silently skipped.
   */
  constructor(
    patterns: string[],
    exclude: string[],
    private readonly warn: (path: string, err: NodeJS.ErrnoException) => void,
    cwd: string = process.cwd(),
  ) {
    const absolute = patterns.map((p) => resolve(cwd, p));
    for (const pattern of absolute) {
      const parts = picomatch.scan(pattern);
      if (!parts.isGlob) {
        this.literals.push(pattern);
        continue;
      }
      const base = parts.base || "/";
      const unbounded = parts.glob.includes("**") || parts.glob.includes("{");
      const depth = unbounded ? Number.POSITIVE_INFINITY : parts.glob.split("/").length;
      if (!this.roots.some((r) => r.base === base && r.depth === depth)) this.roots.push({ base, depth });
    }
    this.includes = picomatch(absolute);
    // A pattern without a slash names files wherever they are (`*.gz`); one with a slash is a path.
    // (picomatch's `basename` option would do both, but then fails every pattern with a slash.)
    const byName = exclude.filter((p) => !p.includes("/"));
    const byPath = exclude.filter((p) => p.includes("/")).map((p) => (isAbsolute(p) ? p : resolve(cwd, p)));
    const nameMatcher = byName.length > 0 ? picomatch(byName) : null;
    const pathMatcher = byPath.length > 0 ? picomatch(byPath) : null;
    this.excludes =
      nameMatcher || pathMatcher
        ? (path: string) => (nameMatcher?.(basename(path)) ?? false) || (pathMatcher?.(path) ?? false)
        : null;
  }

  /** The directories the patterns start from (those that exist are worth watching for new files). */
  directories(): string[] {
    return [...new Set([...this.roots.map((r) => r.base), ...this.literals.map((p) => dirname(p))])];
  }

  /** Whether `path` (absolute) is one of the source's files by name. */
  matches(path: string): boolean {
    return this.includes(path) && !this.excludes?.(path);
  }

  /** Every regular file matched now, by path, with its stats (symlinks followed), in path order. */
  async scan(): Promise<Map<string, Stats>> {
    const found = new Map<string, Stats>();
    for (const path of this.literals) {
      if (!this.excludes?.(path)) await this.add(found, path);
    }
    for (const root of this.roots) await this.walk(found, root.base, root.depth);
    return new Map([...found].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  private async walk(found: Map<string, Stats>, dir: string, depth: number): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== "ENOENT" && err.code !== "ENOTDIR") this.warn(dir, err);
      return;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (depth > 1) await this.walk(found, path, depth - 1);
      } else if (entry.isFile() || entry.isSymbolicLink()) {
        if (!found.has(path) && this.matches(path)) await this.add(found, path);
      }
    }
  }

  private async add(found: Map<string, Stats>, path: string): Promise<void> {
    try {
      const st = await stat(path);
      if (st.isFile()) found.set(path, st);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== "ENOENT" && err.code !== "ENOTDIR" && err.code !== "ELOOP") this.warn(path, err);
    }
  }
}
