// The file source of `weir ship`: tails the files its globs match, follows them through rename and
// copytruncate rotation, and hands their lines to the sink in batches, reading no further until the
// sink is done with a batch. README.md (beside this file) states the rules: identity, rotation,
// truncation, partial lines, what can still be lost.
//
// One loop does everything in turn: scan the globs (every scanIntervalMs), read one chunk from each
// open file (a busy file cannot starve the others), deliver, close what is finished, sleep
// pollIntervalMs when nothing was read. Nothing runs concurrently with it, so the maps below need no
// locking. Checkpoints are not written here: the agent passes the positions it has delivered back in
// as ResumePoints when it starts a source.
import { type FSWatcher, type Stats, watch } from "node:fs";
import { type FileHandle, open, readdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { crc32c } from "@node-rs/crc32";
import pino, { type Logger } from "pino";
import type { FileState, LineSink, ResumePoint } from "../../types.ts";
import { type FileSourceConfig, FileSourceConfigSchema, type FileSourceSettings } from "./config.ts";
import { derivedId, fingerprintId, fingerprintLength, hashHead, parseFileId, readAt } from "./fingerprint.ts";
import { GlobScanner } from "./glob-scanner.ts";
import { LineBatch, LineReader } from "./line-reader.ts";

/** Bytes before a position whose checksum is kept, to recognise the same content under another inode. */
const TAIL_SAMPLE_BYTES = 64;
/** Bytes compared to tell a copy of a live file from a different file with the same first bytes. */
const COMPARE_BYTES = 4096;
/** A fileId not seen on disk for this long is forgotten (its file is gone for good). */
const FORGET_AFTER_MS = 24 * 60 * 60 * 1000;
/** Directories watched at most; beyond, polling alone finds changes. */
const MAX_WATCHED_DIRECTORIES = 256;
/** Scans asked for by watchers (a file created or renamed) are at least this far apart. */
const MIN_SCAN_GAP_MS = 20;
/** Rotated names that are not plain text (logrotate's `compress`). */
const COMPRESSED = /\.(gz|bz2|xz|zst|lz4|zip|Z)$/;
/** A write seen by a watcher wakes the reader at most this often: wake-ups per write would cost more than they save. */
const WRITE_WAKE_MS = 20;

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
export interface FileSourceStats {
  /** Lines delivered to the sink (a sink call that resolved). */
  linesRead: number;
  /** Bytes read from files. */
  bytesRead: number;
  /** Lines longer than maxLineBytes, shipped cut. */
  linesCut: number;
  /** Last lines without a newline shipped because their file was rotated away or deleted. */
  partialLinesFlushed: number;
  filesOpened: number;
  filesClosed: number;
  /** Open files renamed, or no longer matched by the globs. */
  rotations: number;
  /** Open files deleted. */
  deletions: number;
  /** Files that shrank under the read offset or whose first bytes changed (copytruncate, or rewritten). */
  truncations: number;
  /** Copies (copytruncate's `x.log.1`) read on from the position their original had reached. */
  copiesFollowed: number;
  /** Files that could not be opened or read (they are retried at the next scan). */
  readErrors: number;
  scans: number;
  /** The largest buffer one line has needed (at most maxLineBytes, however long the line). */
  largestLineBuffer: number;
}

interface TailSample {
  /** The position the sample ends at. */
  offset: number;
  length: number;
  crc: number;
}

/** What the source knows about one fileId, open or not. */
interface KnownFile {
  id: string;
  /** `<hash>-<length>`: the part of the id a file's first bytes must match. */
  fingerprint: string;
  /** Bytes the fingerprint covers. */
  length: number;
  /** Where the next line starts, and its seq (while a reader is open, the reader has the live values). */
  offset: number;
  seq: number;
  /** Where it was last seen. */
  path: string | undefined;
  tail: TailSample | null;
  /** The open file its lines are read from, if any. */
  reader: OpenFile | null;
  /** Its reader was dropped because the file was truncated: a copy may carry on. */
  truncated: boolean;
  lastSeenMs: number;
}

interface OpenFile {
  key: string;
  dev: number;
  ino: number;
  handle: FileHandle;
  path: string;
  known: KnownFile;
  reader: LineReader;
  /** Size at the last fstat. */
  size: number;
  stats: Stats;
  /** The bytes the fingerprint covers, to notice a file truncated and rewritten past the offset between two polls. */
  head: Buffer;
  headCheckedAtSize: number;
  deleted: boolean;
  /** Found at another path than where it was read before (renamed, or a copy carrying on a truncated file). */
  renamed: boolean;
  /** Not matched by the globs at the last scan (renamed to a name they do not match). */
  unseen: boolean;
  rotationCounted: boolean;
  lastGrowthMs: number;
  openedMs: number;
  /** The file that had this path before it was renamed away: read first, so its lines come before this one's. */
  predecessor: OpenFile | null;
  closed: boolean;
}

/** A matched file that is not open, as it was at the last scan: looked at again only when it changes. */
interface SeenFile {
  path: string;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  birthtimeMs: number;
  /** pending: no complete line yet; closed: idle or rotated, read up to its end; alias: a copy of a file read under its id; unreadable. */
  state: "pending" | "closed" | "alias" | "unreadable";
  id: string | null;
}

type Continuation = "continues" | "stale-copy" | "different";

class SinkFailed extends Error {
  constructor(readonly original: Error) {
    super(original.message);
  }
}

const keyOf = (st: Stats): string => `${st.dev}:${st.ino}`;

export class FileSource {
  readonly config: FileSourceSettings;
  private readonly sink: LineSink;
  private readonly log: Logger;
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly globs: GlobScanner;
  private readonly known = new Map<string, KnownFile>();
  private readonly byFingerprint = new Map<string, KnownFile[]>();
  /** Fingerprint lengths in use, longest first, with how many known ids have each. */
  private readonly lengths = new Map<number, number>();
  private readonly open = new Map<string, OpenFile>();
  private readonly seen = new Map<string, SeenFile>();
  private readonly batch: LineBatch;
  private head: Buffer;
  private readonly compareA = Buffer.allocUnsafe(COMPARE_BYTES);
  private readonly compareB = Buffer.allocUnsafe(COMPARE_BYTES);
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
  private readonly warned = new Set<string>();
  private running: Promise<void> | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;
  private scanRequested = false;
  private lastScanAt = 0;
  private firstScanDone = false;
  private readonly watchers = new Map<string, FSWatcher>();
  /** Paths of matched files that are not open, for the watchers to notice when they are written. */
  private readonly notOpenPaths = new Set<string>();
  private writeWake: NodeJS.Timeout | null = null;

  constructor(config: FileSourceConfig, options: FileSourceOptions) {
    this.config = FileSourceConfigSchema.parse(config);
    this.sink = options.sink;
    this.log = options.logger ?? pino({ name: `weir-file-source-${this.config.name}` });
    this.onError = options.onError;
    this.globs = new GlobScanner(
      this.config.paths,
      this.config.exclude,
      (path, err) => this.warnOnce(path, err),
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
      this.remember({
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
    this.head = Buffer.allocUnsafe(this.headBytes());
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
    for (const s of this.seen.values()) {
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
      await this.scan();
      firstScan = false;
      started();
      this.lastScanAt = Date.now();
      while (!this.stopping) {
        await this.scanIfDue();
        if (this.stopping) break;
        const progressed = await this.readRound();
        if (this.stopping) break;
        await this.finishFiles();
        if (!progressed && !this.stopping) {
          const wait = Math.min(this.config.pollIntervalMs, this.nextScanAt() - Date.now());
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
      for (const watcher of this.watchers.values()) watcher.close();
      this.watchers.clear();
      if (this.writeWake) clearTimeout(this.writeWake);
      for (const f of [...this.open.values()]) await this.release(f);
    }
  }

  /** When the next scan is due: every scanIntervalMs, sooner when a watcher asked for one. */
  private nextScanAt(): number {
    const regular = this.lastScanAt + this.config.scanIntervalMs;
    return this.scanRequested ? Math.min(regular, this.lastScanAt + MIN_SCAN_GAP_MS) : regular;
  }

  private async scanIfDue(): Promise<void> {
    if (Date.now() < this.nextScanAt()) return;
    this.scanRequested = false;
    await this.scan();
    this.lastScanAt = Date.now();
  }

  /** Watches the directories that hold matched files (and where patterns start), and only those. */
  private syncWatchers(found: Map<string, Stats>): void {
    if (!this.config.watch) return;
    const dirs = new Set(this.globs.directories());
    for (const path of found.keys()) dirs.add(dirname(path));
    for (const [dir, watcher] of this.watchers) {
      if (!dirs.has(dir)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir) || this.watchers.size >= MAX_WATCHED_DIRECTORIES) continue;
      try {
        const watcher = watch(dir, { persistent: false }, (event, name) => this.onDirectoryEvent(dir, event, name));
        watcher.on("error", () => {
          watcher.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, watcher);
      } catch {
        // Missing directory, or out of inotify watches: the scans find everything anyway.
      }
    }
  }

  private onDirectoryEvent(dir: string, event: string, name: string | null): void {
    if (this.stopping) return;
    if (event === "rename" || (name !== null && this.notOpenPaths.has(join(dir, name)))) {
      // Created, deleted or renamed, or a file not open (waiting for its first line, or idle) written
      // to: scan now, before a short-lived name is gone.
      this.scanRequested = true;
      this.wake?.();
    } else if (!this.writeWake) {
      this.writeWake = setTimeout(() => {
        this.writeWake = null;
        this.wake?.();
      }, WRITE_WAKE_MS).unref();
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
    for (const f of [...this.open.values()]) {
      if (this.stopping) return progressed;
      if (f.closed || this.waitsForPredecessor(f, now)) continue;
      try {
        if (await this.readOnce(f)) progressed = true;
      } catch (e) {
        if (e instanceof SinkFailed) throw e;
        await this.fileFailed(f, e as NodeJS.ErrnoException);
      }
      // A round can be long when the sink is slow: a file created meanwhile may be short-lived.
      if (!this.stopping) await this.scanIfDue();
    }
    if (!this.batch.empty && !this.stopping) await this.deliver();
    return progressed;
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
    const got = await readAt(f.handle, this.head, length, 0);
    return got === length && this.head.compare(f.head, 0, length, 0, length) === 0;
  }

  private async dropTruncated(f: OpenFile, size: number): Promise<void> {
    this.counters.truncations++;
    this.log.info(
      { path: f.path, fileId: f.known.id, offset: f.reader.offset, size },
      "file truncated (copytruncate?): it is read again from 0 as a new file; a copy of it carries on its fileId",
    );
    f.known.truncated = true;
    await this.release(f);
    this.seen.delete(f.key);
    this.scanRequested = true;
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
          await this.sampleTail(f);
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

  /** Checksums the bytes before the file's position (when no read produced that sample). */
  private async sampleTail(f: OpenFile): Promise<void> {
    const offset = f.reader.lineStart;
    if (offset === 0 || f.known.tail?.offset === offset) return;
    const length = Math.min(TAIL_SAMPLE_BYTES, offset);
    const got = await readAt(f.handle, this.compareA, length, offset - length);
    if (got === length) f.known.tail = { offset, length, crc: crc32c(this.compareA.subarray(0, length)) };
  }

  private async close(f: OpenFile, why: "idle" | "rotated" | "deleted" | "superseded"): Promise<void> {
    this.log.debug({ path: f.path, fileId: f.known.id, offset: f.reader.lineStart, why }, "file closed");
    await this.release(f);
    if (!f.deleted) this.seen.set(f.key, seenFile(f.path, f.stats, "closed", f.known.id));
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
    this.seen.delete(f.key);
  }

  // ---- scanning and identity ----

  private async scan(): Promise<void> {
    this.counters.scans++;
    const found = await this.globs.scan();
    this.syncWatchers(found);
    const now = Date.now();
    const pathOf = new Map<string, string>();
    for (const [path, st] of found) {
      const key = keyOf(st);
      if (!pathOf.has(key)) pathOf.set(key, path);
    }
    // Who had each path before this scan: a new file there is the successor of a file renamed away.
    const previousOwner = new Map<string, OpenFile>();
    for (const f of this.open.values()) previousOwner.set(f.path, f);
    for (const f of this.open.values()) {
      const path = pathOf.get(f.key);
      // Recomputed at every scan: a walk that failed for a moment must not make a live file look gone.
      f.unseen = path === undefined;
      if (path === undefined) {
        if (!f.deleted && this.countRotation(f)) {
          this.log.info({ path: f.path, fileId: f.known.id }, "file rotated away: reading it to its end");
        }
        continue;
      }
      if (path !== f.path) {
        f.renamed = true;
        this.countRotation(f);
        this.log.info({ from: f.path, to: path, fileId: f.known.id }, "file renamed: reading it to its end");
        f.path = path;
      }
      f.known.path = path;
      f.known.lastSeenMs = now;
    }
    for (const [key, path] of pathOf) {
      if (this.stopping) return;
      if (this.open.has(key)) continue;
      const st = found.get(path) as Stats;
      const before = this.seen.get(key);
      if (before && unchanged(before, st)) {
        const known = before.id ? this.known.get(before.id) : undefined;
        // A copy is looked at again when the file it copies is no longer read (truncated, closed).
        if (!(before.state === "alias" && known && !known.reader)) {
          before.path = path;
          if (known) known.lastSeenMs = now;
          continue;
        }
      }
      await this.identify(path, previousOwner.get(path) ?? null);
    }
    for (const key of this.seen.keys()) if (!pathOf.has(key)) this.seen.delete(key);
    this.notOpenPaths.clear();
    for (const s of this.seen.values()) this.notOpenPaths.add(s.path);
    for (const known of [...this.known.values()]) {
      if (!known.reader && now - known.lastSeenMs > FORGET_AFTER_MS) this.forget(known);
    }
    if (!this.firstScanDone) await this.findRenamedWhileStopped(found);
    this.firstScanDone = true;
  }

  /**
   * After a restart, a file with a resume point may have been renamed meanwhile to a name the globs do
   * not match (`app.log` -> `app.log.1` with `paths: [app.log]`), and its unread lines are only there.
   * Files beside the old paths of files nobody reads, under names that start with an old name (not
   * compressed ones), are each looked at once and read to their end if they carry one on.
   */
  private async findRenamedWhileStopped(found: Map<string, Stats>): Promise<void> {
    const oldNames = new Map<string, Set<string>>();
    for (const known of this.known.values()) {
      if (known.reader || known.path === undefined) continue;
      const dir = dirname(known.path);
      const names = oldNames.get(dir);
      if (names) names.add(basename(known.path));
      else oldNames.set(dir, new Set([basename(known.path)]));
    }
    for (const [dir, old] of oldNames) {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        const path = join(dir, name);
        if (found.has(path) || COMPRESSED.test(name)) continue;
        let renamed = false;
        for (const o of old) if (name.length > o.length && name.startsWith(o)) renamed = true;
        if (renamed) await this.identify(path, null, true);
      }
    }
  }

  private countRotation(f: OpenFile): boolean {
    if (f.rotationCounted) return false;
    f.rotationCounted = true;
    this.counters.rotations++;
    return true;
  }

  /**
   * Works out which file `path` is (a known one, a copy of one, or a new one) and opens it if it is to
   * be read. With `renamedOnly`, it is opened only if it carries on a known file nobody reads, from
   * another path, and has lines past its position; nothing else is recorded about it.
   */
  private async identify(path: string, predecessor: OpenFile | null, renamedOnly = false): Promise<void> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== "ENOENT") this.warnOnce(path, err);
      return;
    }
    let keep = false;
    try {
      // The file actually opened: the path may point elsewhere since the walk.
      const st = await handle.stat();
      const key = keyOf(st);
      if (this.open.has(key) || !st.isFile()) return;
      const headLength = await readAt(handle, this.head, this.head.length, 0);
      if ((await handle.stat()).size < st.size) {
        // Truncated while being looked at (copytruncate): what was read may belong to either content.
        this.scanRequested = true;
        return;
      }
      const length = fingerprintLength(this.head, headLength, this.config.fingerprintBytes);
      if (length === 0) {
        if (!renamedOnly) this.seen.set(key, seenFile(path, st, "pending", null));
        return;
      }
      const own = fingerprintId(hashHead(this.head, length), length);
      const head = Buffer.from(this.head.subarray(0, headLength));
      if (renamedOnly) {
        for (const known of this.candidates(head, headLength, length, own, path, st)) {
          if (known.reader || known.path === undefined || known.path === path || st.size <= known.offset) continue;
          if ((await this.continuation(handle, st.size, path, known)) !== "continues") continue;
          this.log.info(
            { path, was: known.path, fileId: known.id, offset: known.offset },
            "file renamed while the source was stopped: reading it to its end",
          );
          keep = this.attach(handle, st, path, known, head, null);
          return;
        }
        return;
      }
      for (const known of this.candidates(head, headLength, length, own, path, st)) {
        let reader = known.reader;
        // The file being read is looked at first: truncated since the last round, it is dropped (and
        // this one may be its copy, to carry on from its position).
        if (reader && !(await this.refresh(reader))) reader = null;
        if (reader && !(await this.sameContent(handle, st.size, reader))) {
          // Different bytes, unless the file being read was truncated during the comparison (logrotate
          // truncates right after copying): then this is its copy, and carries on from its position.
          if (await this.refresh(reader)) continue;
          reader = null;
        }
        if (reader) {
          if (st.size > reader.size && reader.reader.offset >= reader.size) {
            // The file being read is a frozen copy of this one, which goes on growing: follow this one.
            await this.close(reader, "superseded");
            this.seen.set(reader.key, seenFile(reader.path, reader.stats, "alias", known.id));
            keep = this.attach(handle, st, path, known, head, predecessor);
            return;
          }
          this.seen.set(key, seenFile(path, st, "alias", known.id));
          return;
        }
        const verdict = await this.continuation(handle, st.size, path, known);
        if (verdict === "continues") {
          keep = this.attach(handle, st, path, known, head, predecessor);
          return;
        }
        if (verdict === "stale-copy") {
          this.seen.set(key, seenFile(path, st, "alias", known.id));
          return;
        }
      }
      // A file never seen before (or one whose first bytes match a different file's).
      let id = own;
      for (let generation = 0; this.known.has(id); generation++) id = derivedId(own, st.dev, st.ino, generation);
      const known: KnownFile = {
        id,
        fingerprint: own,
        length,
        offset: 0,
        seq: 0,
        path,
        tail: null,
        reader: null,
        truncated: false,
        lastSeenMs: Date.now(),
      };
      let discardFirstLine = false;
      if (!this.firstScanDone && this.config.startAt === "end") {
        const start = await this.lastLineStart(handle, st.size);
        known.offset = start.offset;
        discardFirstLine = start.discard;
      }
      this.remember(known);
      keep = this.attach(handle, st, path, known, head, predecessor, discardFirstLine);
    } catch (e) {
      this.warnOnce(path, e as NodeJS.ErrnoException);
    } finally {
      if (!keep) await handle.close().catch(() => {});
    }
  }

  /**
   * Known files whose fingerprint this file's first bytes match, longest fingerprint first; among
   * those, the one last seen at this path, then one named after this inode, first.
   */
  private candidates(
    head: Buffer,
    headLength: number,
    ownLength: number,
    own: string,
    path: string,
    st: Stats,
  ): KnownFile[] {
    const out: KnownFile[] = [];
    for (const length of this.lengths.keys()) {
      if (length > headLength) continue;
      const fingerprint = length === ownLength ? own : fingerprintId(hashHead(head, length), length);
      const list = this.byFingerprint.get(fingerprint);
      if (!list) continue;
      const inode = `-${st.dev}.${st.ino}`;
      const rank = (k: KnownFile) => (k.path === path ? 0 : k.id.includes(inode) ? 1 : 2);
      out.push(...[...list].sort((a, b) => rank(a) - rank(b)));
    }
    return out;
  }

  /**
   * Whether a file with a known fingerprint, and nobody reading it, is that known file: it must be
   * at least as long as the position, with the same bytes just before it. Shorter, it is a stale copy
   * (copytruncate's copy, when its original was read past the copy) if it is somewhere else than the
   * known file was, or a different file if it is where the known file was (recreated there).
   */
  private async continuation(handle: FileHandle, size: number, path: string, known: KnownFile): Promise<Continuation> {
    const p = known.offset;
    if (size < p) return known.path !== undefined && known.path !== path ? "stale-copy" : "different";
    if (p === 0) return "continues";
    const tail = known.tail;
    if (tail && tail.offset === p) {
      const got = await readAt(handle, this.compareA, tail.length, p - tail.length);
      return got === tail.length && crc32c(this.compareA.subarray(0, got)) === tail.crc ? "continues" : "different";
    }
    // No sample (a resume point from before a restart): the position must at least end a line.
    const got = await readAt(handle, this.compareA, 1, p - 1);
    return got === 1 && this.compareA[0] === 0x0a ? "continues" : "different";
  }

  /** Whether a file holds the same bytes as a file being read, over the last bytes both have. */
  private async sameContent(handle: FileHandle, size: number, other: OpenFile): Promise<boolean> {
    const common = Math.min(size, other.size);
    const n = Math.min(COMPARE_BYTES, common);
    if (n === 0) return true;
    const a = await readAt(handle, this.compareA, n, common - n);
    const b = await readAt(other.handle, this.compareB, n, common - n);
    return a === n && b === n && this.compareA.compare(this.compareB, 0, n, 0, n) === 0;
  }

  private attach(
    handle: FileHandle,
    st: Stats,
    path: string,
    known: KnownFile,
    head: Buffer,
    predecessor: OpenFile | null,
    discardFirstLine = false,
  ): boolean {
    const now = Date.now();
    const movedFrom = known.path;
    const rotated = movedFrom !== undefined && movedFrom !== path;
    if (known.truncated && rotated) {
      this.counters.copiesFollowed++;
      this.log.info(
        { path, copyOf: movedFrom, fileId: known.id, offset: known.offset },
        "copy of a truncated file: reading it on from where its original was",
      );
    }
    known.truncated = false;
    const f: OpenFile = {
      key: keyOf(st),
      dev: st.dev,
      ino: st.ino,
      handle,
      path,
      known,
      reader: new LineReader(
        { source: this.config.name, file: path, fileId: known.id },
        this.config.maxLineBytes,
        known.offset,
        known.seq,
        { discardFirstLine },
      ),
      size: st.size,
      stats: st,
      head: Buffer.from(head.subarray(0, known.length)),
      // Checked again before the first read: the file may have been truncated and rewritten while it
      // was being identified (logrotate's copytruncate), and must not be read under a stale identity.
      headCheckedAtSize: -1,
      deleted: st.nlink === 0,
      renamed: rotated,
      unseen: false,
      rotationCounted: rotated,
      lastGrowthMs: now,
      openedMs: now,
      predecessor: predecessor && predecessor.known !== known && !predecessor.closed ? predecessor : null,
      closed: false,
    };
    known.reader = f;
    known.path = path;
    known.lastSeenMs = now;
    this.open.set(f.key, f);
    this.seen.delete(f.key);
    this.counters.filesOpened++;
    this.log.debug({ path, fileId: known.id, offset: known.offset }, "file opened");
    return true;
  }

  /** Where `startAt: end` begins: the start of the file's last line, complete or not. */
  private async lastLineStart(handle: FileHandle, size: number): Promise<{ offset: number; discard: boolean }> {
    const step = Math.min(64 * 1024, this.config.maxLineBytes);
    const buffer = Buffer.allocUnsafe(step);
    let end = size;
    while (end > 0 && size - end < this.config.maxLineBytes) {
      const from = Math.max(0, end - step);
      const got = await readAt(handle, buffer, end - from, from);
      const newline = buffer.lastIndexOf(0x0a, got - 1);
      // The file's last byte is a newline: the next line starts at the end.
      if (newline !== -1) return { offset: from + newline + 1, discard: false };
      end = from;
    }
    // No newline within maxLineBytes of the end: start at the end and drop the rest of that line.
    return end === 0 ? { offset: 0, discard: false } : { offset: size, discard: true };
  }

  private remember(known: KnownFile): void {
    this.known.set(known.id, known);
    const list = this.byFingerprint.get(known.fingerprint);
    if (list) list.push(known);
    else this.byFingerprint.set(known.fingerprint, [known]);
    const count = this.lengths.get(known.length) ?? 0;
    this.lengths.set(known.length, count + 1);
    if (count === 0) {
      const sorted = [...this.lengths].sort(([a], [b]) => b - a);
      this.lengths.clear();
      for (const [length, n] of sorted) this.lengths.set(length, n);
      if (this.head && this.headBytes() > this.head.length) this.head = Buffer.allocUnsafe(this.headBytes());
    }
  }

  private forget(known: KnownFile): void {
    this.known.delete(known.id);
    const list = this.byFingerprint.get(known.fingerprint);
    const rest = list?.filter((k) => k !== known) ?? [];
    if (rest.length > 0) this.byFingerprint.set(known.fingerprint, rest);
    else this.byFingerprint.delete(known.fingerprint);
    const count = (this.lengths.get(known.length) ?? 1) - 1;
    if (count > 0) this.lengths.set(known.length, count);
    else this.lengths.delete(known.length);
  }

  /** Bytes read from a file's start to identify it: enough for the longest fingerprint in use. */
  private headBytes(): number {
    let longest = this.config.fingerprintBytes;
    for (const length of this.lengths.keys()) longest = Math.max(longest, length);
    return longest;
  }

  private warnOnce(path: string, err: NodeJS.ErrnoException): void {
    this.counters.readErrors++;
    const key = `${path}\0${err.code}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    const hint =
      err.code === "EACCES" || err.code === "EPERM"
        ? "give the user running weir ship read access to it (and search access to its directories)"
        : "it is tried again at every scan";
    this.log.warn({ path, code: err.code, err }, `cannot read ${path}: ${hint}`);
  }
}

function seenFile(path: string, st: Stats, state: SeenFile["state"], id: string | null): SeenFile {
  return {
    path,
    dev: st.dev,
    ino: st.ino,
    size: st.size,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    birthtimeMs: st.birthtimeMs,
    state,
    id,
  };
}

function unchanged(s: SeenFile, st: Stats): boolean {
  return s.size === st.size && s.mtimeMs === st.mtimeMs && s.ctimeMs === st.ctimeMs && s.birthtimeMs === st.birthtimeMs;
}
