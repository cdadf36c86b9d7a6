import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type ChannelBatch, DiskChannel, type DiskChannelOptions } from "./disk-channel.ts";
import { ChannelError } from "./errors.ts";
import { parseSegmentFileName, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES } from "./segment.ts";
import { numberedRecord } from "./testdata/numbered-record.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "weir-channel-"));
}

/** Record i: its number and a filler whose length varies with i. */
function record(i: number, filler = 40): Buffer {
  return Buffer.from(`${String(i).padStart(8, "0")}:${"r".repeat(filler + (i % 17))}`);
}

function records(from: number, to: number, filler?: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = from; i < to; i++) out.push(record(i, filler));
  return out;
}

/** Records from..to of exactly `bytes` bytes each. */
function sized(from: number, to: number, bytes: number): Buffer[] {
  return range(from, to).map((i) => {
    const b = Buffer.alloc(bytes, 0x2e);
    b.write(String(i).padStart(8, "0"), "latin1");
    return b;
  });
}

function indexOf(payload: Buffer): number {
  return Number(payload.toString("latin1", 0, 8));
}

async function withChannel<T>(options: DiskChannelOptions, f: (ch: DiskChannel) => Promise<T>): Promise<T> {
  const ch = await DiskChannel.open(options);
  try {
    return await f(ch);
  } finally {
    await ch.close();
  }
}

/** Takes everything there is now, without waiting, in takes of `n`. */
async function drain(ch: DiskChannel, n = 1000, maxBytes = Number.POSITIVE_INFINITY): Promise<ChannelBatch> {
  const all: ChannelBatch = { seqs: [], payloads: [], bytes: 0, lastSeq: 0 };
  const now = AbortSignal.abort();
  for (;;) {
    const b = await ch.take(n, maxBytes, now);
    if (b.seqs.length === 0) return all;
    assert.ok(b.seqs.length <= n);
    assert.equal(b.lastSeq, b.seqs.at(-1));
    all.seqs.push(...b.seqs);
    all.payloads.push(...b.payloads);
    all.bytes += b.bytes;
    all.lastSeq = b.lastSeq;
  }
}

function flip(bytes: Buffer, at: number, mask: number): void {
  bytes[at] = (bytes[at] as number) ^ mask;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, k) => from + k);
}

function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => parseSegmentFileName(n) !== null)
    .sort();
}

describe("DiskChannel", () => {
  it("gives records back in order with consecutive seqs across segment rolls, from memory and from disk", async () => {
    for (const tailBytes of [16 * 1024 * 1024, 0, 3000]) {
      const dir = tempDir();
      try {
        await withChannel({ dir, segmentBytes: 4096, tailBytes, readChunkBytes: 256 }, async (ch) => {
          let expected = 1;
          for (let b = 0; b < 40; b++) {
            const last = await ch.put(records(b * 25, (b + 1) * 25));
            expected += 25;
            assert.equal(last, expected - 1);
          }
          assert.ok(ch.stats().segments > 10, `segments: ${ch.stats().segments}`);
          assert.ok(segmentFiles(dir).length > 10);
          // Takes of odd sizes, so they start and end mid-batch and mid-segment.
          const got = await drain(ch, 37);
          assert.deepEqual(got.seqs, range(1, 1001));
          assert.deepEqual(got.payloads.map(indexOf), range(0, 1000));
          for (let i = 0; i < 1000; i++) assert.ok((got.payloads[i] as Buffer).equals(record(i)), `record ${i}`);
          assert.equal(ch.stats().takenRecords, 1000);
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it("stops a take at maxBytes of payload, but always takes at least one record", async () => {
    const dir = tempDir();
    try {
      await withChannel({ dir }, async (ch) => {
        await ch.put([Buffer.alloc(100), Buffer.alloc(100), Buffer.alloc(500), Buffer.alloc(10)]);
        const now = AbortSignal.abort();
        assert.deepEqual((await ch.take(10, 250, now)).seqs, [1, 2]);
        assert.deepEqual((await ch.take(10, 250, now)).seqs, [3]);
        const last = await ch.take(10, 250, now);
        assert.deepEqual(last.seqs, [4]);
        assert.equal(last.bytes, 10);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("makes put wait while the channel is full, and lets it in once commits free a whole segment", async () => {
    const dir = tempDir();
    try {
      await withChannel({ dir, maxBytes: 4096, segmentBytes: 1024 }, async (ch) => {
        // 100-byte payloads: 116 bytes each with their frames; puts of 4 (464 bytes), two to a segment.
        for (let p = 0; p < 8; p++) await ch.put(sized(p * 4, (p + 1) * 4, 100));
        assert.equal(ch.stats().segments, 4);
        assert.equal(ch.stats().heldBytes, 3712);
        let bDone = false;
        const b = ch.put(sized(32, 36, 100)).then((seq) => {
          bDone = true;
          return seq;
        }); // 464 more: over 4096
        // A put behind a blocked one waits its turn, even one that would fit now.
        const c = ch.put(sized(36, 37, 100));
        assert.equal(ch.stats().blockedPuts, 2);
        assert.deepEqual((await ch.take(10, Number.POSITIVE_INFINITY)).seqs, range(1, 11));
        assert.deepEqual((await drain(ch)).seqs, range(11, 33));
        ch.commit(7); // records 1..7 acknowledged, but 8 keeps their segment (1..8) on disk
        assert.equal(ch.stats().bytes, 25 * 116);
        assert.equal(ch.stats().heldBytes, 3712);
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(ch.stats().blockedPuts, 2);
        assert.equal(bDone, false);
        ch.commit(8); // the segment goes: 2784 + 464 + 116 <= 4096
        assert.equal(await b, 36);
        assert.equal(await c, 37);
        assert.equal(ch.stats().segments, 4);
        assert.equal(ch.stats().heldBytes, 2784 + 464 + 116);
        const rest = await drain(ch);
        assert.deepEqual(rest.payloads.map(indexOf), range(32, 37));
        assert.ok(rest.payloads.every((p) => p.length === 100));
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("takes a batch larger than maxBytes into an empty channel, and refuses a record larger than maxBytes", async () => {
    const dir = tempDir();
    try {
      await withChannel({ dir, maxBytes: 4096 }, async (ch) => {
        const big = [Buffer.alloc(2000, 1), Buffer.alloc(2000, 2), Buffer.alloc(2000, 3)];
        assert.equal(await ch.put(big), 3);
        assert.ok(ch.stats().bytes > ch.stats().maxBytes);
        assert.ok(ch.stats().fill > 1);
        await assert.rejects(ch.put([Buffer.alloc(5000)]), (e: unknown) => {
          assert.ok(e instanceof ChannelError);
          assert.equal(e.kind, "too-large");
          assert.match(e.hint ?? "", /maxBytes/);
          return true;
        });
        // While it is not empty, the next batch waits.
        const next = ch.put([Buffer.alloc(10)]);
        assert.equal(ch.stats().blockedPuts, 1);
        const got = await drain(ch);
        assert.deepEqual(got.seqs, [1, 2, 3]);
        ch.commit(3);
        assert.equal(await next, 4);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("delivers taken records again after rollback, from the last commit on", async () => {
    const dir = tempDir();
    try {
      await withChannel({ dir, segmentBytes: 2048, tailBytes: 1500 }, async (ch) => {
        await ch.put(records(0, 60));
        const now = AbortSignal.abort();
        assert.deepEqual((await ch.take(20, Number.POSITIVE_INFINITY, now)).seqs, range(1, 21));
        assert.deepEqual((await ch.take(20, Number.POSITIVE_INFINITY, now)).seqs, range(21, 41));
        ch.rollback();
        assert.equal(ch.stats().takenRecords, 0);
        assert.deepEqual((await drain(ch, 25)).seqs, range(1, 61));
        ch.commit(33);
        ch.rollback();
        const again = await drain(ch, 7);
        assert.deepEqual(again.seqs, range(34, 61));
        assert.deepEqual(again.payloads.map(indexOf), range(33, 60));
        assert.equal(ch.stats().records, 27);
        assert.throws(
          () => ch.commit(61),
          (e: unknown) => e instanceof ChannelError && e.kind === "usage",
        );
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("after close and reopen, delivers exactly the un-committed records, and seqs go on", async () => {
    const dir = tempDir();
    try {
      await withChannel({ dir, segmentBytes: 2048 }, async (ch) => {
        await ch.put(records(0, 100));
        await ch.take(60, Number.POSITIVE_INFINITY);
        ch.commit(40);
      });
      await withChannel({ dir, segmentBytes: 2048 }, async (ch) => {
        const s = ch.stats();
        assert.equal(s.records, 60);
        assert.equal(s.committedSeq, 40);
        assert.equal(s.nextSeq, 101);
        const listed: number[] = [];
        for await (const b of ch.uncommitted(7)) {
          assert.ok(b.seqs.length <= 7);
          listed.push(...b.payloads.map(indexOf));
        }
        assert.deepEqual(listed, range(40, 100));
        assert.equal(await ch.put([record(100)]), 101);
        const got = await drain(ch);
        assert.deepEqual(got.seqs, range(41, 102));
        assert.deepEqual(got.payloads.map(indexOf), range(40, 101));
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("deletes a segment once every record in it is committed, and keeps counting seqs after", async () => {
    const dir = tempDir();
    try {
      // No mark for a minute: the segments holding only 1..150 go at the commit, not at the mark.
      await withChannel({ dir, segmentBytes: 2048, commitSyncMs: 60_000 }, async (ch) => {
        for (let b = 0; b < 10; b++) await ch.put(records(b * 30, (b + 1) * 30));
        const before = segmentFiles(dir).length;
        assert.ok(before >= 10);
        assert.equal(ch.stats().segments, before);
        await ch.take(150, Number.POSITIVE_INFINITY);
        ch.commit(150);
        await new Promise((r) => setTimeout(r, 20));
        assert.ok(segmentFiles(dir).length < before);
        assert.ok((parseSegmentFileName(segmentFiles(dir)[1] as string) as number) > 150);
      });
      const left = segmentFiles(dir).map((n) => parseSegmentFileName(n) as number);
      assert.ok(left.length < 10);
      assert.ok((left[1] as number) > 150, `segments left: ${left}`);
      assert.ok((left[0] as number) <= 151);
      await withChannel({ dir, segmentBytes: 2048 }, async (ch) => {
        const got = await drain(ch);
        assert.deepEqual(got.seqs, range(151, 301));
        ch.commit(300);
      });
      assert.equal(segmentFiles(dir).length, 1);
      await withChannel({ dir }, async (ch) => {
        assert.equal(ch.stats().records, 0);
        assert.equal(await ch.put([record(300)]), 301);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("truncates a torn tail on open and keeps every complete record", async () => {
    for (const damage of ["cut mid-record", "garbage appended", "cut mid-header"] as const) {
      const dir = tempDir();
      try {
        await withChannel({ dir, segmentBytes: 2048 }, async (ch) => {
          for (let b = 0; b < 4; b++) await ch.put(records(b * 10, (b + 1) * 10));
        });
        const files = segmentFiles(dir);
        const last = join(dir, files.at(-1) as string);
        const size = statSync(last).size;
        const lastFirstSeq = parseSegmentFileName(files.at(-1) as string) as number;
        let lost = 0;
        if (damage === "cut mid-record") {
          truncateSync(last, size - 5);
          lost = 1;
        } else if (damage === "cut mid-header") {
          truncateSync(last, size - (record(39).length + RECORD_HEADER_BYTES) + 7);
          lost = 1;
        } else {
          appendFileSync(
            last,
            Buffer.from("\x07garbage that is not a record\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
          );
        }
        assert.ok(lastFirstSeq < 40 - lost, "the damaged segment holds complete records too");
        await withChannel({ dir, segmentBytes: 2048 }, async (ch) => {
          const s = ch.stats();
          assert.ok(s.truncatedBytes > 0, damage);
          assert.equal(s.corruptRecords, 0);
          const got = await drain(ch);
          assert.deepEqual(got.payloads.map(indexOf), range(0, 40 - lost), damage);
          assert.deepEqual(got.seqs, range(1, 41 - lost));
          // The repaired segment takes appends again.
          await ch.put([record(1000)]);
          assert.equal(indexOf((await drain(ch)).payloads[0] as Buffer), 1000);
        });
        await withChannel({ dir, segmentBytes: 2048 }, async (ch) => {
          assert.equal(ch.stats().truncatedBytes, 0, "nothing left to repair");
          assert.equal(ch.stats().records, 41 - lost);
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it("detects a flipped byte on open, counts the record as corrupt and goes on with the next", async () => {
    for (const where of ["payload", "length"] as const) {
      const dir = tempDir();
      try {
        await withChannel({ dir, segmentBytes: 2048 }, async (ch) => {
          for (let b = 0; b < 6; b++) await ch.put(records(b * 10, (b + 1) * 10));
        });
        // Record 3 of the second segment (not the last one): flip a byte.
        const files = segmentFiles(dir);
        assert.ok(files.length >= 3);
        const path = join(dir, files[1] as string);
        const firstSeq = parseSegmentFileName(files[1] as string) as number;
        const bytes = readFileSync(path);
        let off = SEGMENT_HEADER_BYTES;
        for (let k = 0; k < 2; k++) off += RECORD_HEADER_BYTES + bytes.readUInt32LE(off + 4);
        const badIndex = firstSeq + 2 - 1;
        if (where === "payload") flip(bytes, off + RECORD_HEADER_BYTES + 3, 0x10);
        else flip(bytes, off + 5, 0x01); // its length, by 256
        writeFileSync(path, bytes);
        await withChannel({ dir, segmentBytes: 2048 }, async (ch) => {
          assert.equal(ch.stats().corruptRecords, 1, where);
          assert.equal(ch.stats().truncatedBytes, 0);
          assert.equal(ch.stats().records, 59);
          const got = await drain(ch);
          const want = range(0, 60).filter((i) => i !== badIndex);
          assert.deepEqual(got.payloads.map(indexOf), want, where);
          assert.deepEqual(
            got.seqs,
            want.map((i) => i + 1),
          );
          ch.commit(got.lastSeq);
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it("detects a record damaged after open when reading it back, and skips the rest of its segment", async () => {
    const dir = tempDir();
    try {
      await withChannel({ dir, segmentBytes: 2048 }, async (ch) => {
        for (let b = 0; b < 6; b++) await ch.put(records(b * 10, (b + 1) * 10));
      });
      await withChannel({ dir, segmentBytes: 2048 }, async (ch) => {
        const files = segmentFiles(dir);
        const path = join(dir, files[0] as string);
        const next = parseSegmentFileName(files[1] as string) as number;
        const bytes = readFileSync(path);
        flip(bytes, SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + 1, 0xff); // record 1's payload
        writeFileSync(path, bytes);
        const got = await drain(ch);
        assert.equal(ch.stats().corruptRecords, 1);
        assert.deepEqual(got.payloads.map(indexOf), range(next - 1, 60));
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("wakes a waiting take when records arrive, and ends it empty on abort or close", async () => {
    const dir = tempDir();
    try {
      const ch = await DiskChannel.open({ dir });
      const waiting = ch.take(10, Number.POSITIVE_INFINITY);
      await assert.rejects(ch.take(1, 1), (e: unknown) => e instanceof ChannelError && e.kind === "usage");
      await ch.put(records(0, 3));
      assert.deepEqual((await waiting).seqs, [1, 2, 3]);

      const ac = new AbortController();
      const aborted = ch.take(10, Number.POSITIVE_INFINITY, ac.signal);
      ac.abort();
      assert.deepEqual((await aborted).seqs, []);

      const closing = ch.take(10, Number.POSITIVE_INFINITY);
      await ch.close();
      assert.deepEqual((await closing).seqs, []);
      await assert.rejects(ch.put([record(0)]), (e: unknown) => e instanceof ChannelError && e.kind === "closed");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("with fsync always, puts made together share one fdatasync", async () => {
    const dir = tempDir();
    try {
      await withChannel({ dir, fsync: "always" }, async (ch) => {
        const puts = [];
        for (let p = 0; p < 20; p++) puts.push(ch.put(records(p * 5, (p + 1) * 5)));
        const seqs = await Promise.all(puts);
        assert.deepEqual(
          seqs,
          range(1, 21).map((p) => p * 5),
        );
        assert.ok(ch.stats().fsyncs >= 1);
        assert.ok(ch.stats().fsyncs <= 2, `fsyncs: ${ch.stats().fsyncs}`);
        const got = await drain(ch);
        assert.deepEqual(got.payloads.map(indexOf), range(0, 100));
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Found by test/chaos/ship-disk-full.test.ts: a timer tick with nothing to sync finished the sync
  // loop before requestSync() stored it, so `syncing` stayed set and no fsync ever ran again: the
  // interval policy synced nothing, and rolled segments' files stayed open after their deletion,
  // their space never given back (a 4 MiB disk filled with 3 MiB of deleted segments).
  it("with fsync interval, an idle tick does not stop later syncs, and rolled segments are closed", async () => {
    const dir = tempDir();
    try {
      await withChannel(
        { dir, fsync: "interval", fsyncIntervalMs: 20, commitSyncMs: 10, segmentBytes: 4096 },
        async (ch) => {
          await new Promise((r) => setTimeout(r, 100)); // ticks with nothing to sync
          for (let p = 0; p < 10; p++) await ch.put(records(p * 20, (p + 1) * 20));
          await new Promise((r) => setTimeout(r, 100));
          assert.ok(ch.stats().fsyncs >= 1, `fsyncs: ${ch.stats().fsyncs}`);
          const got = await drain(ch);
          assert.equal(got.payloads.length, 200);
          ch.commit(got.lastSeq);
          await new Promise((r) => setTimeout(r, 200));
          assert.ok(readdirSync(dir).filter((f) => f.endsWith(".wal")).length <= 2, "committed segments deleted");
          const open = spawnSync("ls", ["-l", `/proc/${process.pid}/fd`], { encoding: "utf8" }).stdout;
          assert.doesNotMatch(open, /\.wal \(deleted\)/, "a deleted segment is still open");
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Found by test/chaos/ship-disk-full.test.ts: maxBytes bounded only what Kafka had not
  // acknowledged, and acknowledged segments stayed until the next committed mark, so a channel held
  // far more than maxBytes on disk (twelve segments on a 4 MiB disk, one of them unacknowledged).
  it("bounds by maxBytes what its segment files hold, acknowledged records included, and deletes them once acknowledged", async () => {
    const dir = tempDir();
    try {
      const maxBytes = 64 * 1024;
      // No mark for a minute, and every take read from the files.
      await withChannel({ dir, maxBytes, segmentBytes: 8 * 1024, commitSyncMs: 60_000, tailBytes: 0 }, async (ch) => {
        // A segment can go between the listing and its stat.
        const sizeOf = (n: string) => statSync(join(dir, n), { throwIfNoEntry: false })?.size ?? 0;
        const onDisk = () => segmentFiles(dir).reduce((sum, n) => sum + sizeOf(n), 0);
        let most = 0;
        let taken = 0;
        const stop = new AbortController();
        const sink = (async () => {
          while (taken < 2000) {
            const b = await ch.take(37, Number.POSITIVE_INFINITY, stop.signal);
            if (b.seqs.length === 0) return;
            taken += b.seqs.length;
            ch.commit(b.lastSeq);
            most = Math.max(most, onDisk());
          }
        })();
        try {
          for (let b = 0; b < 200 && most <= maxBytes + 16 * 16; b++) {
            await ch.put(sized(b * 10, (b + 1) * 10, 200));
            most = Math.max(most, onDisk());
          }
        } finally {
          if (most > maxBytes + 16 * 16) stop.abort();
          await sink;
        }
        // 464 KB went through; the files never held more than the bound (with their 16-byte headers).
        assert.ok(most <= maxBytes + 16 * 16, `the segment files held ${most} bytes, maxBytes ${maxBytes}`);
        await new Promise((r) => setTimeout(r, 50)); // the last deletion
        assert.equal(segmentFiles(dir).length, 1, `segments left: ${segmentFiles(dir)}`);
        assert.ok(ch.stats().heldBytes <= 8 * 1024, `held ${ch.stats().heldBytes}`);
        const open = spawnSync("ls", ["-l", `/proc/${process.pid}/fd`], { encoding: "utf8" }).stdout;
        assert.doesNotMatch(open, /\.wal \(deleted\)/, "a deleted segment is still open");
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a second opener of the same directory, and takes over a lock left by a dead process", async () => {
    const dir = tempDir();
    const lockPath = join(dir, "LOCK");
    try {
      const ch = await DiskChannel.open({ dir });
      await assert.rejects(DiskChannel.open({ dir }), (e: unknown) => {
        assert.ok(e instanceof ChannelError);
        assert.equal(e.kind, "locked");
        assert.match(e.message, /in use by this process/);
        return true;
      });
      // Another live process is refused too.
      const other = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          "-e",
          `import("./shipper/channel/disk-channel.ts").then(({ DiskChannel }) => DiskChannel.open({ dir: ${JSON.stringify(dir)} })).then(() => process.exit(0), (e) => { console.log(e.kind, e.hint); process.exit(3); })`,
        ],
        { cwd: ROOT, encoding: "utf8" },
      );
      assert.equal(other.status, 3, other.stderr);
      assert.match(other.stdout, /^locked stop that shipper first/);
      await ch.put([record(1)]);
      await ch.close();
      assert.equal(existsSync(lockPath), false, "close releases the lock");

      const owner = (pid: number, startTicks: number | null) =>
        JSON.stringify({ pid, startTicks, host: hostname(), since: Date.now() });
      // A process that has exited.
      const dead = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" });
      writeFileSync(lockPath, owner(Number(dead.stdout), null));
      await withChannel({ dir }, async (c) => assert.equal(c.stats().records, 1));
      // A pid now used by another process (this one): its start time gives it away.
      writeFileSync(lockPath, owner(process.pid, 1));
      await withChannel({ dir }, async (c) => assert.equal(c.stats().records, 1));
      // A lock file torn by a crash right after it was created.
      writeFileSync(lockPath, "");
      await withChannel({ dir }, async (c) => assert.equal(c.stats().records, 1));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("DiskChannel killed with SIGKILL", () => {
  /** The last count the child printed in full. */
  const lastAcked = (out: string): number => {
    const lines = out.slice(0, out.lastIndexOf("\n")).split("\n");
    return Number(lines.filter((l) => /^\d+$/.test(l)).at(-1) ?? 0);
  };

  for (const fsync of ["never", "always"] as const) {
    it(`keeps every record a put acknowledged, in order and without a gap (fsync ${fsync})`, {
      timeout: 120_000,
    }, async () => {
      const dir = tempDir();
      try {
        const child = spawn(
          process.execPath,
          ["--import", "tsx", join(HERE, "testdata", "put-until-killed.ts"), dir, fsync],
          { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
        );
        let out = "";
        let err = "";
        let killed = false;
        const exit = new Promise<NodeJS.Signals | null>((resolve) =>
          child.on("exit", (_code, signal) => resolve(signal)),
        );
        child.stderr.on("data", (d: Buffer) => {
          err += d.toString();
        });
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          // Mid-stream: the child is putting as fast as it can, two puts in flight.
          if (!killed && lastAcked(out) >= 20_000) {
            killed = true;
            child.kill("SIGKILL");
          }
        });
        assert.equal(await exit, "SIGKILL", `the child ended by itself:\n${err}`);
        const acked = lastAcked(out);
        assert.ok(acked >= 20_000);

        await withChannel({ dir, segmentBytes: 256 * 1024 }, async (ch) => {
          let n = 0;
          for await (const b of ch.uncommitted(4096)) {
            for (let k = 0; k < b.seqs.length; k++) {
              assert.equal(b.seqs[k], n + 1, `seq of record ${n}`);
              assert.ok((b.payloads[k] as Buffer).equals(numberedRecord(n)), `record ${n}`);
              n++;
            }
          }
          assert.ok(n >= acked, `the child was told ${acked} records were put; the channel has ${n}`);
          assert.equal(ch.stats().records, n);
          assert.equal(ch.stats().corruptRecords, 0);
          const taken = await drain(ch, 5000);
          assert.equal(taken.seqs.length, n);
          assert.equal(taken.lastSeq, n);
          // And the channel goes on from there.
          assert.equal(await ch.put([Buffer.from("after")]), n + 1);
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
