import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { crc32c } from "@node-rs/crc32";
import { fingerprintId, hashHead } from "./fingerprint.ts";
import { type KnownFile, KnownFiles } from "./known-files.ts";

const root = mkdtempSync(join(tmpdir(), "weir-known-files-"));
after(() => rmSync(root, { recursive: true, force: true }));

function known(id: string, fingerprint: string, length: number, path: string, offset = 0): KnownFile {
  return { id, fingerprint, length, offset, seq: 0, path, tail: null, reader: null, truncated: false, lastSeenMs: 0 };
}

test("candidates: longest fingerprint first; among equals the one last at this path, then the one named after this inode", () => {
  const files = new KnownFiles(16);
  const head = Buffer.from("0123456789abcdef0123456789abcdef");
  const f16 = fingerprintId(hashHead(head, 16), 16);
  const f32 = fingerprintId(hashHead(head, 32), 32);
  const st = { dev: 8, ino: 77 } as never;
  files.remember(known(`${f16}-8.77`, f16, 16, "/logs/old.log"));
  files.remember(known(f16, f16, 16, "/logs/app.log"));
  files.remember(known(`${f16}-8.99`, f16, 16, "/logs/other.log"));
  assert.equal(files.head.length, 16);
  files.remember(known(f32, f32, 32, "/logs/x.log"));
  assert.equal(files.head.length, 32, "the head buffer grows with the longest fingerprint in use");
  const ids = files.candidates(head, 32, 32, f32, "/logs/app.log", st).map((k) => k.id);
  assert.deepEqual(ids, [f32, f16, `${f16}-8.77`, `${f16}-8.99`]);
  // A file with only 20 bytes cannot match the 32-byte fingerprint.
  assert.deepEqual(
    files.candidates(head, 20, 16, f16, "/logs/none.log", st).map((k) => k.id),
    [`${f16}-8.77`, f16, `${f16}-8.99`],
  );
  files.forget(files.get(f32) as KnownFile);
  assert.equal(files.has(f32), false);
  assert.deepEqual(
    files.candidates(head, 32, 32, f32, "/logs/app.log", st).map((k) => k.id),
    [f16, `${f16}-8.77`, `${f16}-8.99`],
  );
});

test("continuation: the same bytes before the position carry a known file on; shorter is a stale copy elsewhere, a new file in place", async () => {
  const path = join(root, "app.log");
  const text = "first line\nsecond line\n";
  writeFileSync(path, `${text}third line\n`);
  const files = new KnownFiles(16);
  const k = known("id", "fp", 16, path, text.length);
  const handle = await open(path, "r");
  try {
    const size = statSync(path).size;
    // No sample (a resume point): the position must end a line.
    assert.equal(await files.continuation(handle, size, path, k), "continues");
    assert.equal(await files.continuation(handle, size, path, { ...k, offset: text.length - 3 }), "different");
    // A sample of the bytes before the position decides.
    const sample = Buffer.from(text.slice(-8));
    k.tail = { offset: text.length, length: 8, crc: crc32c(sample) };
    assert.equal(await files.continuation(handle, size, path, k), "continues");
    k.tail = { offset: text.length, length: 8, crc: crc32c(Buffer.from("other!!\n")) };
    assert.equal(await files.continuation(handle, size, path, k), "different");
    // Shorter than the position: where the known file was, a new file; elsewhere, a stale copy of it.
    const far = { ...k, offset: size + 10 };
    assert.equal(await files.continuation(handle, size, path, far), "different");
    assert.equal(await files.continuation(handle, size, join(root, "app.log.1"), far), "stale-copy");
  } finally {
    await handle.close();
  }
});
