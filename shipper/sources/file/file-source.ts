// The file source of `weir ship`: tails the files its globs match, follows them through rename and
// copytruncate rotation, and hands their lines to the sink in batches, reading no further until the
// sink is done with a batch. README.md (beside this file) states the rules: identity, rotation,
// truncation, partial lines, what can still be lost. Scanning the globs and working out which file a
// match is live in file-scanner.ts and known-files.ts; reading the open files here.
//
// One loop does everything in turn: scan the globs (every scanIntervalMs), read one chunk from each
// open file (a busy file cannot starve the others), deliver, close what is finished, sleep
// pollIntervalMs when nothing was read. Of one log's open files (x.log.2, x.log.1, x.log: a backlog
// of rotated files), only the oldest with lines left is read, so a log's lines are shipped in the
// order they were written (Vector's oldest_first, per log): a stream worker keeps a watermark per
// log, and a log read ahead of itself would make its own older lines late. Logs are read side by
// side as before; with no backlog each has one open file, and nothing waits. Nothing runs concurrently with it, so the maps of known, open
// and seen files need no locking. Checkpoints are not written here: the agent passes the positions it
// has delivered back in as ResumePoints when it starts a source.
import { crc32c } from "@node-rs/crc32";
import pino, { type Logger } from "pino";
import type { FileState, LineSink, ResumePoint } from "../../types.ts";
import { type FileSourceConfig, FileSourceConfigSchema, type FileSourceSettings } from "./config.ts";
import { FileScanner, type ScanCounters } from "./file-scanner.ts";
import { parseFileId, readAt } from "./fingerprint.ts";
import { KnownFiles, type OpenFile, TAIL_SAMPLE_BYTES } from "./known-files.ts";
import { LineBatch } from "./line-reader.ts";
import { rotationRank } from "./log-family.ts";

export interface FileSourceOptions {
  sink: LineSink;
  /** Where to resume each file, from the agent's checkpoints. Files without one start per `startAt`. */
  resume?: ResumePoint[];
  logger?: Logger;
  /** Called once if the sink rejects: the source has stopped reading. By default the error is logged. */
  onError?: (err: Error) => void;
  /** What relative globs are relative to; the process's working directory by default. */
  cwd?: string;
}

/** Counters as plain numbers, read by /metrics when scraped. */
export interface FileSourceStats extends ScanCounters {
  /** Lines delivered to the sink (a sink call that resolved). */
  linesRead: number;
  /** Bytes read from files. */
  bytesRead: number;
  /** Lines longer than maxLineBytes, shipped cut. */
  linesCut: number;
  /** Last lines without a newline shipped because their file was rotated away or deleted. */
  partialLinesFlushed: number;
  filesClosed: number;
  /** Open files deleted. */
  deletions: number;
  /** Files that shrank under the read offset or whose first bytes changed (copytruncate, or rewritten). */
  truncations: number;
  /** The largest buffer one line has needed (at most maxLineBytes, however long the line). */
  largestLineBuffer: number;
}

function older(a: OpenFile, b: OpenFile): boolean {
  const am = a.stats.mtimeMs;
  const bm = b.stats.mtimeMs;
  if (am !== bm) return am < bm;
  return rotationRank(a.path) > rotationRank(b.path);
}

class SinkFailed extends Error {
  constructor(readonly original: Error) {
    super(original.message);
  }
}

export class FileSource {
  readonly config: FileSourceSettings;
  private readonly sink: LineSink;
  private readonly log: Logger;
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly known: KnownFiles;
  private readonly scanner: FileScanner;
  private readonly open = new Map<string, OpenFile>();
  private readonly batch: LineBatch;
  private readonly counters: FileSourceStats = {
    linesRead: 0,
    bytesRead: 0,
    linesCut: 0,
    partialLinesFlushed: 0,
    filesOpened: 0,
    filesClosed: 0,
    rotations: 0,
    deletions: 0,
    truncations: 0,
    copiesFollowed: 0,
    readErrors: 0,
    scans: 0,
    largestLineBuffer: 0,
  };
  private running: Promise<void> | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;

  constructor(config: FileSourceConfig, options: FileSourceOptions) {
    this.config = FileSourceConfigSchema.parse(config);
    this.sink = options.sink;
    this.log = options.logger ?? pino({ name: `weir-file-source-${this.config.name}` });
    this.onError = options.onError;
    this.known = new KnownFiles(this.config.fingerprintBytes);
    this.scanner = new FileScanner(
      this.config,
      this.known,
      this.open,
      this.counters,
      this.log,
      {
        isStopping: () => this.stopping,
        wake: () => this.wake?.(),
        refresh: (f) => this.refresh(f),
        close: (f, why) => this.close(f, why),
      },
      options.cwd,
    );
    this.batch = new LineBatch(this.config.maxBatchLines, this.config.maxBatchBytes);
    const now = Date.now();
    for (const point of options.resume ?? []) {
      const parsed = parseFileId(point.fileId);
      if (!parsed) {
        if (!point.fileId.startsWith("stdin-")) {
          this.log.warn({ fileId: point.fileId }, "resume point with a fileId this source did not make: ignored");
        }
        continue;
      }
      this.known.remember({
        id: point.fileId,
        fingerprint: parsed.fingerprint,
        length: parsed.length,
        offset: point.offset,
        seq: point.seq,
        path: point.path,
        tail: null,
        reader: null,
        truncated: false,
        lastSeenMs: now,
      });
    }
  }

  /** Starts reading. Resolves once the first scan has opened the files it found; reading goes on after. */
  start(): Promise<void> {
    if (this.running) throw new Error(`file source ${this.config.name} already started`);
    return new Promise((resolve, reject) => {
      this.running = this.run(resolve, reject);
    });
  }

  /** Stops reading: waits for the sink call in flight, then closes every file. Lines read but not delivered are dropped. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
  }

  stats(): FileSourceStats {
    let largest = this.counters.largestLineBuffer;
    for (const f of this.open.values()) largest = Math.max(largest, f.reader.largestHeld);
    return { ...this.counters, largestLineBuffer: largest };
  }

  /** Open files, and the closed ones still matched on disk. */
  states(): FileState[] {
    const out: FileState[] = [];
    const source = this.config.name;
    for (const f of this.open.values()) {
      out.push({
        source,
        path: f.path,
        fileId: f.known.id,
        dev: f.dev,
        ino: f.ino,
        offset: f.reader.offset,
        size: f.size,
        deleted: f.deleted,
        open: true,
      });
    }
    for (const s of this.scanner.notOpen()) {
      const known = s.state === "closed" && s.id ? this.known.get(s.id) : undefined;
      if (!known) continue;
      out.push({
        source,
        path: s.path,
        fileId: known.id,
        dev: s.dev,
        ino: s.ino,
        offset: known.offset,
        size: s.size,
        deleted: false,
        open: false,
      });
    }
    return out;
  }

  private async run(started: () => void, failed: (err: Error) => void): Promise<void> {
    let firstScan = true;
    try {
      await this.scanner.scanNow();
      firstScan = false;
      started();
      while (!this.stopping) {
        await this.scanner.scanIfDue();
        if (this.stopping) break;
        const progressed = await this.readRound();
        if (this.stopping) break;
        await this.finishFiles();
        if (!progressed && !this.stopping) {
          const wait = Math.min(this.config.pollIntervalMs, this.scanner.nextScanAt() - Date.now());
          if (wait > 0) await this.sleep(wait);
        }
      }
    } catch (e) {
      const err = e instanceof SinkFailed ? e.original : (e as Error);
      if (firstScan) failed(err);
      if (this.onError) this.onError(err);
      else if (e instanceof SinkFailed) this.log.error({ err }, "file source stopped: the sink failed");
      else this.log.error({ err }, "file source stopped by an unexpected error");
    } finally {
      this.scanner.stopWatching();
      for (const f of [...this.open.values()]) await this.release(f);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  // ---- reading ----

  /** One chunk from each open file, in turn. Returns whether anything was read. */
  private async readRound(): Promise<boolean> {
    let progressed = false;
    const now = Date.now();
    const oldest = this.oldestWithLinesLeft();
    for (const f of [...this.open.values()]) {
      if (this.stopping) return progressed;
      if (f.closed || this.waitsForPredecessor(f, now)) continue;
      const first = oldest.get(f.family);
      if (first && first !== f && !first.closed) continue;
      try {
        if (await this.readOnce(f)) progressed = true;
      } catch (e) {
        if (e instanceof SinkFailed) throw e;
        await this.fileFailed(f, e as NodeJS.ErrnoException);
      }
      // A round can be long when the sink is slow: a file created meanwhile may be short-lived.
      if (!this.stopping) await this.scanner.scanIfDue();
    }
    if (!this.batch.empty && !this.stopping) await this.deliver();
    return progressed;
  }

  /**
   * Per log, its oldest open file with lines left to read: the one least recently written to (a
   * rotated file's last write is before its successor's), ties broken by the rotated name (x.log.2
   * before x.log.1 before x.log).
   */
  private oldestWithLinesLeft(): Map<string, OpenFile> {
    const oldest = new Map<string, OpenFile>();
    for (const f of this.open.values()) {
      if (f.closed || f.reader.offset >= f.size) continue;
      const o = oldest.get(f.family);
      if (!o || older(f, o)) oldest.set(f.family, f);
    }
    return oldest;
  }

  private waitsForPredecessor(f: OpenFile, now: number): boolean {
    const p = f.predecessor;
    if (!p) return false;
    if (p.closed || p.reader.offset >= p.size || now - f.openedMs >= this.config.rotateWaitMs) {
      f.predecessor = null;
      return false;
    }
    return true;
  }

  private async readOnce(f: OpenFile): Promise<boolean> {
    if (!(await this.refresh(f))) return true;
    const start = f.reader.offset;
    if (start >= f.size) return false;
    const want = Math.min(this.config.readChunkBytes, f.size - start);
    // A fresh buffer per read: lines are views of it and the sink may keep them after it resolves.
    const buffer = Buffer.allocUnsafe(want);
    const got = await readAt(f.handle, buffer, want, start);
    if (got === 0) return false;
    // The bytes read are this file's only if its first bytes are still the same now: truncated and
    // written past the offset during the read (copytruncate), it would hand over another file's lines.
    if (!(await this.sameHead(f))) {
      await this.dropTruncated(f, f.size);
      return true;
    }
    const chunk = got < want ? buffer.subarray(0, got) : buffer;
    this.counters.bytesRead += got;
    let pos = 0;
    while (pos < chunk.length) {
      pos = f.reader.push(chunk, pos, this.batch);
      if (this.batch.full) {
        await this.deliver();
        if (this.stopping) return true;
      }
    }
    // The checksum of the bytes before the last complete line's end, while they are at hand.
    const lineStart = f.reader.lineStart;
    if (lineStart > start) {
      const end = lineStart - start;
      const length = Math.min(TAIL_SAMPLE_BYTES, end);
      f.known.tail = { offset: lineStart, length, crc: crc32c(chunk.subarray(end - length, end)) };
    }
    return true;
  }

  /**
   * fstat: notices growth, deletion and truncation. Returns false when the file was truncated, or
   * rewritten from its start (its fingerprint bytes changed): it is then dropped, to be found again
   * by the next scan as the new file it is.
   */
  private async refresh(f: OpenFile): Promise<boolean> {
    const st = await f.handle.stat();
    f.stats = st;
    if (st.nlink === 0 && !f.deleted) {
      f.deleted = true;
      this.counters.deletions++;
      this.log.info({ path: f.path, fileId: f.known.id }, "file deleted while open: reading it to its end");
    }
    if (st.size < f.reader.offset) {
      await this.dropTruncated(f, st.size);
      return false;
    }
    if (st.size !== f.size) {
      f.size = st.size;
      f.lastGrowthMs = Date.now();
    }
    if (f.size !== f.headCheckedAtSize) {
      if (!(await this.sameHead(f))) {
        await this.dropTruncated(f, st.size);
        return false;
      }
      f.headCheckedAtSize = f.size;
    }
    return true;
  }

  /** Whether the file still starts with the bytes its fingerprint was made of. */
  private async sameHead(f: OpenFile): Promise<boolean> {
    const length = f.head.length;
    const head = this.known.head;
    const got = await readAt(f.handle, head, length, 0);
    return got === length && head.compare(f.head, 0, length, 0, length) === 0;
  }

  private async dropTruncated(f: OpenFile, size: number): Promise<void> {
    this.counters.truncations++;
    this.log.info(
      { path: f.path, fileId: f.known.id, offset: f.reader.offset, size },
      "file truncated (copytruncate?): it is read again from 0 as a new file; a copy of it carries on its fileId",
    );
    f.known.truncated = true;
    await this.release(f);
    this.scanner.dropped(f.key);
    this.scanner.requestScan();
  }

  private async deliver(): Promise<void> {
    if (this.batch.empty) return;
    const cut = this.batch.cut;
    const lines = this.batch.take();
    try {
      await this.sink(lines);
    } catch (e) {
      throw new SinkFailed(e instanceof Error ? e : new Error(String(e)));
    }
    this.counters.linesRead += lines.length;
    this.counters.linesCut += cut;
  }

  /** Ships the last lines of files that are gone, and closes files that are finished or idle. */
  private async finishFiles(): Promise<void> {
    for (const f of [...this.open.values()]) {
      if (this.stopping) return;
      if (f.closed || !this.finishDue(f, Date.now())) continue;
      try {
        // What the last read saw may be old (a long scan, a slow sink): look at the file again, so
        // that a file that grew meanwhile is not closed, or its last line cut, before it is read.
        if (!(await this.refresh(f)) || !this.finishDue(f, Date.now())) continue;
        const gone = f.deleted || f.renamed || f.unseen;
        if (gone && f.reader.pendingBytes > 0) {
          if (f.reader.flushPartial(this.batch)) this.counters.partialLinesFlushed++;
          await this.known.sampleTail(f);
          await this.deliver();
        } else {
          await this.close(f, gone ? (f.deleted ? "deleted" : "rotated") : "idle");
        }
      } catch (e) {
        if (e instanceof SinkFailed) throw e;
        await this.fileFailed(f, e as NodeJS.ErrnoException);
      }
    }
  }

  /**
   * Whether a file read to its end is to be finished now: a gone file (renamed away, deleted) has its
   * last line shipped after partialLineFlushMs without growth, and is closed after rotateWaitMs; a
   * live one is closed after closeIdleMs (its unfinished last line, if any, is read again when it is
   * reopened).
   */
  private finishDue(f: OpenFile, now: number): boolean {
    if (f.reader.offset < f.size) return false;
    const quiet = now - f.lastGrowthMs;
    if (f.deleted || f.renamed || f.unseen) {
      return quiet >= (f.reader.pendingBytes > 0 ? this.config.partialLineFlushMs : this.config.rotateWaitMs);
    }
    return quiet >= this.config.closeIdleMs;
  }

  private async close(f: OpenFile, why: "idle" | "rotated" | "deleted" | "superseded"): Promise<void> {
    this.log.debug({ path: f.path, fileId: f.known.id, offset: f.reader.lineStart, why }, "file closed");
    await this.release(f);
    this.scanner.closed(f);
  }

  /** Closes the file and hands its position back to its KnownFile. */
  private async release(f: OpenFile): Promise<void> {
    if (f.closed) return;
    f.closed = true;
    const known = f.known;
    known.offset = f.reader.lineStart;
    known.seq = f.reader.seq;
    known.path = f.path;
    known.reader = null;
    known.lastSeenMs = Date.now();
    this.counters.largestLineBuffer = Math.max(this.counters.largestLineBuffer, f.reader.largestHeld);
    this.open.delete(f.key);
    this.counters.filesClosed++;
    await f.handle.close().catch(() => {});
  }

  private async fileFailed(f: OpenFile, err: NodeJS.ErrnoException): Promise<void> {
    this.counters.readErrors++;
    this.log.warn(
      { err, path: f.path, fileId: f.known.id },
      "reading a file failed: it is closed and looked at again at the next scan",
    );
    await this.release(f);
    this.scanner.dropped(f.key);
  }
}
