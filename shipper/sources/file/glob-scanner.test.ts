import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, test } from "node:test";
import { GlobScanner } from "./glob-scanner.ts";

const root = mkdtempSync(join(tmpdir(), "weir-glob-"));
after(() => rmSync(root, { recursive: true, force: true }));

mkdirSync(join(root, "a/b/c"), { recursive: true });
for (const f of ["x.log", "a/y.log", "a/b/z.log", "a/b/c/w.log", "a/b/c/w.log.gz", "a/notes.txt"]) {
  writeFileSync(join(root, f), `${f}\n`);
}
symlinkSync(join(root, "a/y.log"), join(root, "a/link.log"));
symlinkSync(root, join(root, "a/b/loop")); // a directory cycle
symlinkSync(join(root, "missing.log"), join(root, "dangling.log"));

async function scan(patterns: string[], exclude: string[] = []): Promise<string[]> {
  const warnings: string[] = [];
  const scanner = new GlobScanner(patterns, exclude, (path) => warnings.push(path), root);
  const found = [...(await scanner.scan()).keys()].map((p) => relative(root, p));
  assert.deepEqual(warnings, []);
  return found;
}

test("a pattern without ** matches at its own depth only; ** matches at any depth", async () => {
  assert.deepEqual(await scan(["*/*.log"]), ["a/link.log", "a/y.log"]);
  assert.deepEqual(await scan(["**/*.log"]), ["a/b/c/w.log", "a/b/z.log", "a/link.log", "a/y.log", "x.log"]);
  assert.deepEqual(await scan(["a/**/*.{log,txt}"]), [
    "a/b/c/w.log",
    "a/b/z.log",
    "a/link.log",
    "a/notes.txt",
    "a/y.log",
  ]);
});

test("literal paths, several patterns, excludes by name and by path; dangling links and loops are skipped", async () => {
  assert.deepEqual(await scan(["x.log", "a/b/**/*", "nope.log", "dangling.log"], ["*.gz", "a/b/c/**"]), [
    "a/b/z.log",
    "x.log",
  ]);
});
