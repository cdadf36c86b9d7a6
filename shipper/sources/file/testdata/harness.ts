// What the file source's tests share: temp directories, a sink that records what it is given (and can
// hold a batch), waiting for a condition, a source with short intervals, numbered lines and checks
// that each was delivered once, in order per file.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import type { LineSink, RawLine, ResumePoint } from "../../../types.ts";
import type { FileSourceConfig } from "../config.ts";
import { FileSource } from "../file-source.ts";

/** A temp directory per test under one root; `remove()` (in an `after` hook) deletes them all. */
export class TestDirs {
  private readonly root = mkdtempSync(join(tmpdir(), "weir-file-source-"));
  private count = 0;

  newDir(): string {
    const dir = join(this.root, `t${this.count++}`);
    mkdirSync(dir);
    return dir;
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

export const silent = pino({ level: "silent" });
export const FAST = { scanIntervalMs: 25, pollIntervalMs: 5, rotateWaitMs: 150, partialLineFlushMs: 150 };

/** Records what the source delivers; `hold()` makes the next sink call wait until `release()`. */
export class Collector {
  lines: RawLine[] = [];
  calls = 0;
  onCall: ((lines: RawLine[]) => void) | null = null;
  delayMs = 0;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;

  readonly sink: LineSink = async (lines) => {
    this.calls++;
    this.onCall?.(lines);
    if (this.gate) await this.gate;
    if (this.delayMs) await sleep(this.delayMs);
    this.lines.push(...lines);
  };

  hold(): void {
    this.gate = new Promise((resolve) => {
      this.open = resolve;
    });
  }

  release(): void {
    this.gate = null;
    this.open?.();
  }

  texts(): string[] {
    return this.lines.map((l) => l.bytes.toString());
  }

  /** The checkpoints an agent would have written from what was delivered. */
  resumePoints(): ResumePoint[] {
    const last = new Map<string, RawLine>();
    for (const l of this.lines) last.set(l.fileId, l);
    return [...last.values()].map((l) => ({ fileId: l.fileId, offset: l.end, seq: l.seq + 1, path: l.file }));
  }
}

export async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(5);
  }
}

export function source(
  collector: Collector,
  config: Partial<FileSourceConfig> & { paths: string[] },
  resume: ResumePoint[] = [],
) {
  return new FileSource({ name: "test", ...FAST, ...config }, { sink: collector.sink, resume, logger: silent });
}

export const numbered = (i: number) => `line ${String(i).padStart(7, "0")} ${"x".repeat(i % 37)}\n`;
export const numberOf = (l: RawLine) => Number(l.bytes.toString().slice(5, 12));

/** Every number in [0, n) exactly once. */
export function assertEachOnce(lines: RawLine[], n: number, what: string): void {
  const counts = new Uint32Array(n);
  for (const l of lines) counts[numberOf(l)] = (counts[numberOf(l)] ?? 0) + 1;
  const lost = counts.reduce((s, c) => s + (c === 0 ? 1 : 0), 0);
  const duplicated = counts.reduce((s, c) => s + (c > 1 ? c - 1 : 0), 0);
  assert.deepEqual({ lost, duplicated }, { lost: 0, duplicated: 0 }, what);
  assert.equal(lines.length, n, what);
}

/** Per fileId: seqs go up by one, each line starts where the last ended, numbers only go up. */
export function assertOrderedPerFile(lines: RawLine[]): void {
  const last = new Map<string, RawLine>();
  for (const l of lines) {
    const prev = last.get(l.fileId);
    if (prev) {
      assert.equal(l.seq, prev.seq + 1, `seq of ${l.fileId} at ${l.offset}`);
      assert.equal(l.offset, prev.end, `offset of ${l.fileId} seq ${l.seq}`);
      assert.ok(numberOf(l) > numberOf(prev), `order within ${l.fileId}`);
    }
    last.set(l.fileId, l);
  }
}
