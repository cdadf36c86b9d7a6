// The file source's scanning and file identity, against real files in a temp dir: globs, both kinds of
// rotation, restarts from resume points, inode reuse, short files, files with the same first bytes.
// Waits are for conditions ("until N lines arrived"), never for durations asserted on.
import assert from "node:assert/strict";
import {
  appendFileSync,
  closeSync,
  copyFileSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { FileSource } from "./file-source.ts";
import {
  assertEachOnce,
  assertOrderedPerFile,
  Collector,
  FAST,
  numbered,
  numberOf,
  source,
  TestDirs,
  until,
} from "./testdata/harness.ts";

const dirs = new TestDirs();
after(() => dirs.remove());
const newDir = () => dirs.newDir();

test("globs: ** and several patterns, exclude by name and by path, files appearing while running", async () => {
  const dir = newDir();
  mkdirSync(join(dir, "a/b/c"), { recursive: true });
  mkdirSync(join(dir, "old"));
  const files = {
    top: "top.log",
    deep: "a/b/c/deep.log",
    txt: "a/notes.txt",
    skipped: "a/b/debug.log",
    old: "old/x.log",
    gz: "a/b/y.log.gz",
  };
  for (const [name, rel] of Object.entries(files)) writeFileSync(join(dir, rel), `${name}\n`);
  const c = new Collector();
  const src = source(c, {
    paths: [join(dir, "**/*.log"), join(dir, "a/*.txt"), join(dir, "**/*.gz")],
    exclude: ["debug.log", "*.gz", join(dir, "old/**")],
  });
  await src.start();
  try {
    await until(() => c.lines.length >= 3, "three files");
    mkdirSync(join(dir, "a/new"));
    writeFileSync(join(dir, "a/new/later.log"), "later\n");
    writeFileSync(join(dir, "a/new/later-debug.log.gz"), "later-gz\n");
    await until(() => c.lines.length >= 4, "a file created after start");
    const scans = src.stats().scans;
    await until(() => src.stats().scans >= scans + 3, "three more scans");
    assert.deepEqual(c.texts().sort(), ["deep", "later", "top", "txt"]);
  } finally {
    await src.stop();
  }
});

/**
 * Writes lines 0..n-1 to `path`, renaming it away every `every` lines, with a few late writes to the
 * renamed file. Each file lives several scan intervals: one created and renamed to a name the globs do
 * not match between two scans is never seen (README.md, "What can still be lost").
 */
async function writeWithRenames(path: string, n: number, every: number): Promise<number> {
  let fd = openSync(path, "a");
  let rotations = 0;
  for (let i = 0; i < n; i++) {
    writeSync(fd, numbered(i));
    if (i % every === every - 4) {
      // logrotate renames; the application keeps writing to its open file until it reopens its log.
      renameSync(path, `${path}.${++rotations}`);
    } else if (i % every === every - 1) {
      closeSync(fd);
      fd = openSync(path, "a");
    }
    if (i % 100 === 0) await sleep(FAST.scanIntervalMs);
  }
  closeSync(fd);
  return rotations;
}

for (const matched of [false, true]) {
  test(`rename + create rotation while writing, rotated names ${matched ? "matched" : "not matched"} by the glob: every line once, in order, old files read to their end`, async () => {
    const dir = newDir();
    const path = join(dir, "app.log");
    writeFileSync(path, "");
    const c = new Collector();
    const src = source(c, { paths: [matched ? `${path}*` : path], watch: false });
    await src.start();
    try {
      const n = 6000;
      const rotations = await writeWithRenames(path, n, 700);
      // On a timeout the counts below say what was lost or duplicated.
      await until(() => c.lines.length >= n, `${n} lines`).catch(() => {});
      const scans = src.stats().scans;
      await until(() => src.stats().scans >= scans + 5, "five more scans (a duplicate would show)");
      assertEachOnce(c.lines, n, "rename rotation");
      assertOrderedPerFile(c.lines);
      assert.equal(new Set(c.lines.map((l) => l.fileId)).size, rotations + 1, "one fileId per file");
      assert.ok(src.stats().rotations >= rotations);
      assert.equal(src.stats().truncations, 0);
    } finally {
      await src.stop();
    }
  });
}

/**
 * copytruncate while the source is behind: A is delivered (the sink holds it), B is written, then
 * the file is copied and truncated and C written. The source cannot have read B from the original.
 * With `after` lines in C longer than A, the truncated file is past the read offset again when the
 * source looks: only its changed first bytes tell it was truncated.
 */
async function copytruncateBehind(
  copyMatched: boolean,
  after = 50,
): Promise<{ c: Collector; stats: ReturnType<FileSource["stats"]> }> {
  const dir = newDir();
  const path = join(dir, "app.log");
  const fd = openSync(path, "a");
  let i = 0;
  for (; i < 200; i++) writeSync(fd, numbered(i));
  const c = new Collector();
  c.hold();
  const src = source(c, { paths: [copyMatched ? `${path}*` : path] });
  await src.start();
  try {
    await until(() => c.calls >= 1, "the first batch");
    for (; i < 300; i++) writeSync(fd, numbered(i));
    copyFileSync(path, `${path}.1`);
    ftruncateSync(fd, 0);
    for (; i < 300 + after; i++) writeSync(fd, numbered(i));
    c.release();
    await until(() => c.lines.some((l) => numberOf(l) === 299 + after), "the last line after the truncation");
    const scans = src.stats().scans;
    await until(() => src.stats().scans >= scans + 5, "five more scans");
    return { c, stats: src.stats() };
  } finally {
    closeSync(fd);
    await src.stop();
  }
}

test("copytruncate with the copy matched: the lines written between the last read and the copy come from the copy, once", async () => {
  const { c, stats } = await copytruncateBehind(true);
  assertEachOnce(c.lines, 350, "copytruncate, copy matched");
  assertOrderedPerFile(c.lines);
  const ids = [...new Set(c.lines.map((l) => l.fileId))];
  assert.equal(ids.length, 2, "the original and its copy are one file; the truncated file is a new one");
  const b = c.lines.filter((l) => numberOf(l) >= 200 && numberOf(l) < 300);
  assert.ok(
    b.every((l) => l.fileId === ids[0] && l.file.endsWith(".1")),
    "B read from the copy, under the original's fileId",
  );
  assert.equal(stats.truncations, 1);
  assert.equal(stats.copiesFollowed, 1);
});

test("copytruncate with the copy matched, the source already past the copy's end: the copy is not read again", async () => {
  const dir = newDir();
  const path = join(dir, "app.log");
  const fd = openSync(path, "a");
  const c = new Collector();
  const src = source(c, { paths: [`${path}*`] });
  await src.start();
  try {
    for (let i = 0; i < 100; i++) writeSync(fd, numbered(i));
    await until(() => c.lines.length === 100, "100 lines");
    copyFileSync(path, `${path}.1`);
    // Written after the copy, before the truncation: only the original has them, and they are read from it.
    for (let i = 100; i < 120; i++) writeSync(fd, numbered(i));
    await until(() => c.lines.length === 120, "120 lines");
    ftruncateSync(fd, 0);
    for (let i = 120; i < 150; i++) writeSync(fd, numbered(i));
    await until(() => c.lines.length >= 150, "150 lines");
    const scans = src.stats().scans;
    await until(() => src.stats().scans >= scans + 5, "five more scans");
    assertEachOnce(c.lines, 150, "copy shorter than what was read");
    assert.equal(src.stats().truncations, 1);
  } finally {
    closeSync(fd);
    await src.stop();
  }
});

test("a file truncated and rewritten past the read offset before the source looks again is still seen as truncated", async () => {
  const { c, stats } = await copytruncateBehind(true, 400);
  assertEachOnce(c.lines, 700, "rewritten past the offset");
  assertOrderedPerFile(c.lines);
  assert.equal(stats.truncations, 1);
});

test("copytruncate with the copy not matched: only the lines the source had not read yet are lost, none twice", async (t) => {
  const { c, stats } = await copytruncateBehind(false);
  const numbers = new Set(c.lines.map(numberOf));
  assert.equal(numbers.size, c.lines.length, "no duplicates");
  const lost = [...Array(350).keys()].filter((n) => !numbers.has(n));
  // Lines 200..299 were only ever in the original before the copy, and the copy is not watched.
  assert.deepEqual(
    lost,
    [...Array(100).keys()].map((k) => 200 + k),
  );
  assert.equal(stats.truncations, 1);
  t.diagnostic(`lost ${lost.length} of 350 lines: those written while the source was behind`);

  // The same rotation with the source caught up loses nothing.
  const dir = newDir();
  const path = join(dir, "app.log");
  const fd = openSync(path, "a");
  const c2 = new Collector();
  const src = source(c2, { paths: [path] });
  await src.start();
  try {
    for (let i = 0; i < 200; i++) writeSync(fd, numbered(i));
    await until(() => c2.lines.length === 200, "200 lines");
    copyFileSync(path, `${path}.1`);
    ftruncateSync(fd, 0);
    for (let i = 200; i < 250; i++) writeSync(fd, numbered(i));
    await until(() => c2.lines.length >= 250, "250 lines");
    const scans = src.stats().scans;
    await until(() => src.stats().scans >= scans + 5, "five more scans");
    assertEachOnce(c2.lines, 250, "copytruncate, caught up");
  } finally {
    closeSync(fd);
    await src.stop();
  }
});

test("a restart resumes every file from its resume point: no duplicates, no gaps, even for a file renamed meanwhile", async () => {
  const dir = newDir();
  const a = join(dir, "a.log");
  const b = join(dir, "b.log");
  let next = 0;
  const write = (path: string, count: number) => {
    let text = "";
    for (let k = 0; k < count; k++) text += numbered(next++);
    appendFileSync(path, text);
  };
  write(a, 300);
  write(b, 300);
  const first = new Collector();
  first.delayMs = 2;
  const one = source(first, { paths: [join(dir, "*.log*")], maxBatchLines: 20 });
  await one.start();
  await until(() => first.lines.length >= 150, "150 lines");
  await one.stop();
  const delivered = first.lines.length;
  assert.ok(delivered < 600, "stopped part-way");

  write(a, 100);
  write(b, 100);
  renameSync(b, `${b}.1`);
  write(b, 50);

  const second = new Collector();
  const two = source(second, { paths: [join(dir, "*.log*")] }, first.resumePoints());
  await two.start();
  try {
    await until(() => delivered + second.lines.length >= next, `${next} lines in all`);
    const scans = two.stats().scans;
    await until(() => two.stats().scans >= scans + 5, "five more scans");
    const all = [...first.lines, ...second.lines];
    assertEachOnce(all, next, "across the restart");
    assertOrderedPerFile(all);
    for (const id of new Set(all.map((l) => l.fileId))) {
      const seqs = all.filter((l) => l.fileId === id).map((l) => l.seq);
      assert.deepEqual(
        seqs,
        seqs.map((_, k) => k),
        `seqs of ${id} from 0 without gaps`,
      );
    }
  } finally {
    await two.stop();
  }
});

/**
 * Writes `text` to a new file at `path`, on inode `ino` if the filesystem hands it out again (ext4
 * usually does at once): files are created beside it until one gets it. Returns whether one did.
 */
function recreateOnInode(path: string, text: string, ino: number): boolean {
  for (let attempt = 0; attempt < 50; attempt++) {
    const candidate = `${path}.new-${attempt}`;
    writeFileSync(candidate, text);
    if (statSync(candidate).ino === ino || attempt === 49) {
      renameSync(candidate, path);
      for (let k = 0; k < attempt; k++) unlinkSync(`${path}.new-${k}`);
      return statSync(path).ino === ino;
    }
  }
  return false;
}

test("inode reuse: a new file that got an old file's inode is read from 0, even with the same first bytes", async (t) => {
  const dir = newDir();
  const path = join(dir, "app.log");
  const header = `# ${"h".repeat(298)}\n`; // 301 bytes: longer than fingerprintBytes
  for (const sameHeader of [false, true]) {
    const c = new Collector();
    const src = source(c, { paths: [path], closeIdleMs: 50 });
    let oldText = sameHeader ? header : "";
    for (let i = 0; i < 20; i++) oldText += numbered(i);
    writeFileSync(path, oldText);
    await src.start();
    try {
      await until(() => c.lines.length === (sameHeader ? 21 : 20), "the old file");
      await until(() => src.stats().filesClosed >= 1, "the old file closed as idle");
      const oldIno = statSync(path).ino;
      const oldId = c.lines[0]?.fileId;
      unlinkSync(path);
      let newText = sameHeader ? header : "";
      for (let i = 1000; i < 1060; i++) newText += numbered(i);
      const reused = recreateOnInode(path, newText, oldIno);
      t.diagnostic(`same header: ${sameHeader}; inode reused: ${reused}`);
      const expected = sameHeader ? 21 + 61 : 20 + 60;
      await until(() => c.lines.length >= expected, "the new file");
      const fresh = c.lines.slice(sameHeader ? 21 : 20);
      assert.equal(fresh.length, expected - (sameHeader ? 21 : 20));
      assert.deepEqual([fresh[0]?.offset, fresh[0]?.seq], [0, 0], "read from its start");
      assert.ok(
        fresh.every((l) => l.fileId !== oldId),
        "a different fileId",
      );
      if (sameHeader)
        assert.ok(fresh[0]?.fileId.startsWith(`${oldId}-`), "same fingerprint: the inode tells them apart");
      assert.deepEqual(
        fresh.slice(sameHeader ? 1 : 0).map(numberOf),
        [...Array(60).keys()].map((k) => 1000 + k),
      );
    } finally {
      await src.stop();
      unlinkSync(path);
    }
  }
});

test("short files: no complete line means not read yet; one line is enough, and the fileId survives growth and restart", async () => {
  const dir = newDir();
  const path = join(dir, "short.log");
  writeFileSync(path, "abc");
  const c = new Collector();
  const src = source(c, { paths: [path] });
  await src.start();
  let id: string | undefined;
  try {
    const scans = src.stats().scans;
    await until(() => src.stats().scans >= scans + 3, "three scans");
    assert.equal(c.lines.length, 0);
    assert.deepEqual(src.states(), [], "not identified yet: not opened");
    appendFileSync(path, "\n");
    await until(() => c.lines.length === 1, "the first line");
    id = c.lines[0]?.fileId;
    assert.match(id ?? "", /-4$/, "fingerprint of the 4 bytes of its only line");
    appendFileSync(path, `${"y".repeat(400)}\n`);
    await until(() => c.lines.length === 2, "a line past fingerprintBytes");
    assert.equal(c.lines[1]?.fileId, id);
  } finally {
    await src.stop();
  }
  appendFileSync(path, "after restart\n");
  const c2 = new Collector();
  const again = source(c2, { paths: [path] }, c.resumePoints());
  await again.start();
  try {
    await until(() => c2.lines.length === 1, "the line written while stopped");
    assert.deepEqual([c2.lines[0]?.bytes.toString(), c2.lines[0]?.fileId, c2.lines[0]?.seq], ["after restart", id, 2]);
  } finally {
    await again.stop();
  }
});

test("files with the same first bytes and different content are different files; a copy of a file being read is not read again", async () => {
  const dir = newDir();
  const header = `# ${"h".repeat(298)}\n`;
  let a = header;
  let b = header;
  for (let i = 0; i < 50; i++) a += numbered(i);
  for (let i = 50; i < 100; i++) b += numbered(i);
  writeFileSync(join(dir, "a.log"), a);
  writeFileSync(join(dir, "b.log"), b);
  const c = new Collector();
  const src = source(c, { paths: [join(dir, "*.log")] });
  await src.start();
  try {
    await until(() => c.lines.length === 102, "both files");
    copyFileSync(join(dir, "a.log"), join(dir, "a-copy.log"));
    const scans = src.stats().scans;
    await until(() => src.stats().scans >= scans + 5, "five more scans");
    const withoutHeaders = c.lines.filter((l) => !l.bytes.toString().startsWith("#"));
    assertEachOnce(withoutHeaders, 100, "two files with one header");
    assert.equal(new Set(c.lines.map((l) => l.fileId)).size, 2);
  } finally {
    await src.stop();
  }
});

test("a file renamed to a name the globs do not match while the source was stopped is read to its end at restart", async () => {
  const dir = newDir();
  const path = join(dir, "app.log");
  let text = "";
  for (let i = 0; i < 400; i++) text += numbered(i);
  writeFileSync(path, text);
  const first = new Collector();
  first.delayMs = 2;
  const one = source(first, { paths: [path], maxBatchLines: 20 });
  await one.start();
  await until(() => first.lines.length >= 100, "100 lines");
  await one.stop();
  assert.ok(first.lines.length < 400, "stopped part-way");

  // logrotate ran meanwhile: app.log -> app.log.1 (not matched), a new app.log, an older compressed one.
  renameSync(path, `${path}.1`);
  writeFileSync(`${path}.2.gz`, "not text");
  let next = "";
  for (let i = 400; i < 450; i++) next += numbered(i);
  writeFileSync(path, next);

  const second = new Collector();
  const two = source(second, { paths: [path] }, first.resumePoints());
  await two.start();
  try {
    await until(() => first.lines.length + second.lines.length >= 450, "450 lines in all");
    const scans = two.stats().scans;
    await until(() => two.stats().scans >= scans + 5, "five more scans");
    const all = [...first.lines, ...second.lines];
    assertEachOnce(all, 450, "renamed while stopped");
    assertOrderedPerFile(all);
    assert.ok(second.lines.some((l) => l.file === `${path}.1`));
  } finally {
    await two.stop();
  }
});
