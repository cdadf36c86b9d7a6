/**
 * DiskChannel: the shipper's durable, bounded queue between its sources and the Kafka sink (Flume's
 * file channel). Sources `put` batches of encoded entries; the sink `take`s the oldest, sends them,
 * and `commit`s once Kafka has acknowledged, or `rollback`s so they are taken again.
 *
 * On disk, a directory holds:
 * - a write-ahead log in segment files (`<first seq>.wal`: the format in segment.ts, the files and
 *   their recovery in segment-log.ts, reading them back in segment-reader.ts): every record framed
 *   with its length, a CRC-32C and its seq. One put is one buffer and one write(); puts that arrive
 *   while a write is in flight go out together in the next writev(). A segment rolls at
 *   `segmentBytes` and is deleted as soon as every record in it is committed.
 * - `COMMITTED`: the committed mark (seq, CRC; commit-mark.ts), written at most every
 *   `commitSyncMs` and on close, in place over the older of two slots and fdatasync()ed, so writing it
 *   needs no free block. A small file rewritten was chosen over an append-only ack log: recovery reads
 *   1 KiB instead of replaying a log, and there is no second log to rotate; its fdatasync is paid once
 *   a second, not per commit. A crash re-delivers what was committed since the last mark and is still
 *   in a segment: at least once, never lost. Nothing waits for the mark: a segment whose records are
 *   all committed goes at once (after a crash, a mark older than the first segment left only means
 *   there is less to deliver again), so the mark never holds space.
 * - `LOCK`: pid and process start time of the owner (lock.ts); a stale one is taken over.
 *
 * Durability (`fsync`): "always" resolves a put after fdatasync() covers it, and puts waiting at the
 * same time share one fdatasync (group commit); "interval" syncs every `fsyncIntervalMs` and resolves
 * a put once written; "never" leaves it to the page cache. Every policy survives SIGKILL (the page
 * cache outlives the process); only "always" survives a power cut without losing acknowledged puts.
 *
 * Bounds: `maxBytes` bounds what the segment files hold (records with their frames, from the oldest
 * segment still on disk to the last put), committed records not yet deleted included, so the channel
 * never takes more of its disk than that. A put that would pass it waits until commits let whole
 * segments go, which is the shipper's backpressure, except when nothing is un-committed, so a batch
 * larger than the bound cannot deadlock. A segment is at most a quarter of `maxBytes`, so the
 * committed head of the oldest segment never takes more than that quarter.
 *
 * A full disk (`ENOSPC`, `EDQUOT`: other files, or a disk smaller than `maxBytes`) is a pause: the
 * write waits and is tried again at the same offset, and puts wait behind it. The channel frees what
 * it can itself: committed segments go at once, and when the disk refuses a write while every record
 * written is committed, the active segment is emptied in place and reused (a new segment would need a
 * block). So once Kafka has acknowledged what the channel holds, it goes on without outside help.
 *
 * Memory: a tail of recently written batches (at most `tailBytes`) serves takes while the sink keeps
 * up; when it falls behind (Kafka down), takes read the segments back through a window of
 * `readChunkBytes`. The index of taken-but-uncommitted records (taken-records.ts) is 16 bytes per
 * record in flight; nothing else grows with the backlog.
 *
 * Recovery (`open`): every remaining segment is scanned and checked. A torn tail of the last segment
 * (a crash mid-write) is truncated; a corrupt record elsewhere is counted and skipped by finding the
 * next good frame; the committed mark is restored, and every later record can be taken again.
 * `uncommitted()` lists those records, so the agent learns which lines the channel already holds.
 */
import { mkdirSync } from "node:fs";
import type { Logger } from "pino";
import { CommitMark } from "./commit-mark.ts";
import { ChannelError } from "./errors.ts";
import { DirectoryLock } from "./lock.ts";
import { encodeRecords, RECORD_HEADER_BYTES, recordLength, recordSeq, SEGMENT_HEADER_BYTES } from "./segment.ts";
import { type Segment, SegmentLog } from "./segment-log.ts";
import { SegmentReader } from "./segment-reader.ts";
import { TakenRecords } from "./taken-records.ts";

export type FsyncPolicy = "always" | "interval" | "never";

export interface DiskChannelOptions {
  /** The channel's directory (created if missing). One shipper per directory: it is locked. */
  dir: string;
  /** Bytes the segment files hold (records with their 16-byte frames, committed ones not yet deleted included) before put() waits. Default 1 GiB. */
  maxBytes?: number;
  /** A segment file rolls when the next put would pass this size; at most a quarter of maxBytes (a larger value is lowered). Default 64 MiB. */
  segmentBytes?: number;
  /** When data reaches the disk itself, not just the page cache. Default "interval". */
  fsync?: FsyncPolicy;
  /** With fsync "interval": the period. Default 1000. */
  fsyncIntervalMs?: number;
  /** How often the committed mark is written to disk (at most); a crash re-delivers what was committed since. Default 1000. */
  commitSyncMs?: number;
  /** Recently written batches kept in memory, so takes do not read back what was just written. Default 16 MiB. */
  tailBytes?: number;
  /** Read size when takes or recovery read the segment files. Default 1 MiB. */
  readChunkBytes?: number;
  /** Where recovery findings (torn tails, corrupt records, a reset mark) and I/O failures are reported. */
  logger?: Pick<Logger, "warn" | "error">;
}

/** Records taken from the channel: `seqs[i]` is the seq of `payloads[i]`, ascending. */
export interface ChannelBatch {
  seqs: number[];
  /** Views of the channel's buffers, never reused by it: keep them as long as needed, but do not modify them. */
  payloads: Buffer[];
  /** Payload bytes. */
  bytes: number;
  /** The last record's seq (what to commit once all are delivered), 0 when empty. */
  lastSeq: number;
}

export interface ChannelStats {
  /** Un-committed bytes, frames included: what Kafka has not acknowledged. */
  bytes: number;
  /** Un-committed records (taken or not). */
  records: number;
  /** What counts against maxBytes: bytes from the oldest segment still on disk to the last put, frames and committed records not yet deleted included. */
  heldBytes: number;
  maxBytes: number;
  /** heldBytes / maxBytes: puts wait at 1. */
  fill: number;
  segments: number;
  /** Bytes of the segment files up to their last good record, committed records not yet deleted included. */
  diskBytes: number;
  /** Records found corrupt (bad CRC, impossible length or seq) on open or when read back, and skipped. */
  corruptRecords: number;
  /** Bytes cut from the end of the last segment on open: a record torn by a crash, or garbage. */
  truncatedBytes: number;
  /** Puts waiting for space. */
  blockedPuts: number;
  /** Times a write found the disk full (ENOSPC, EDQUOT) and waited. */
  diskFullTimes: number;
  /** How long the write now waiting for disk space has waited; 0 when none waits. */
  diskFullMs: number;
  /** Times the active segment, all of it delivered, was emptied to write on a full disk. */
  emptiedSegments: number;
  /** Records taken and not yet committed. */
  takenRecords: number;
  /** Bytes of recent batches held in memory for takes. */
  tailBytes: number;
  /** fdatasync() calls on segment files. */
  fsyncs: number;
  /** The seq the next record gets. */
  nextSeq: number;
  committedSeq: number;
}

const MiB = 1024 * 1024;

interface PendingWrite {
  buf: Buffer;
  firstSeq: number;
  lastSeq: number;
  resolve: (lastSeq: number) => void;
  reject: (err: Error) => void;
}

interface BlockedPut {
  payloads: readonly Buffer[];
  bytes: number;
  resolve: (lastSeq: number) => void;
  reject: (err: Error) => void;
}

/** A written batch kept in memory: its frames exactly as on disk. */
interface TailBatch {
  buf: Buffer;
  logicalStart: number;
  lastSeq: number;
}

function emptyBatch(): ChannelBatch {
  return { seqs: [], payloads: [], bytes: 0, lastSeq: 0 };
}

function positiveInteger(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min)
    throw new ChannelError(`${name} must be an integer >= ${min}, got ${value}`, "config", `fix the channel's ${name}`);
  return value;
}

export class DiskChannel {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly fsync: FsyncPolicy;
  private readonly fsyncIntervalMs: number;
  private readonly commitSyncMs: number;
  private readonly tailBytes: number;
  private readonly readChunkBytes: number;
  private readonly logger: Pick<Logger, "warn" | "error"> | undefined;

  /** The segment files: set by recover(), before open() returns the channel. */
  private log!: SegmentLog;
  /** The committed mark's file: set by recover() too. */
  private mark!: CommitMark;
  private nextSeq = 1;

  // Logical offsets: admitted (encoded, queued) >= written >= read >= committed.
  private admittedEnd = 0;
  private writtenEnd = 0;
  private writtenSeq = 0;
  private durableSeq = 0;
  private readAt = 0;
  private lastTakenSeq = 0;
  private committedEnd = 0;
  private committedSeq = 0;
  private persistedSeq = 0;
  private uncommittedRecords = 0;
  /** Bumped by rollback(), so a take reading the disk meanwhile knows to start over. */
  private epoch = 0;

  private readonly taken = new TakenRecords();
  private readonly takenEnds: number[] = [];
  private tail: TailBatch[] = [];
  private tailHeld = 0;
  private readonly reader: SegmentReader;

  private writeQueue: PendingWrite[] = [];
  private writing = false;
  private writerScheduled = false;
  private idleWaiters: (() => void)[] = [];
  private syncWaiters: PendingWrite[] = [];
  private syncing: Promise<void> | null = null;
  private blocked: BlockedPut[] = [];
  private takeWaiter: (() => void) | null = null;
  private takeInProgress: Promise<ChannelBatch> | null = null;

  /** The deletion of committed segments under way, if any. */
  private deleting: Promise<void> | null = null;
  /** Set while a write waits for disk space: a commit or a deletion that may have freed some calls it. */
  private spaceWaiter: (() => void) | null = null;

  private markChain: Promise<void> = Promise.resolve();
  private markTimer: NodeJS.Timeout | null = null;
  private lastMarkAt = 0;
  private fsyncTimer: NodeJS.Timeout | null = null;

  private closed = false;
  private closing: Promise<void> | null = null;
  private failure: ChannelError | null = null;
  private corruptOnOpen = 0;
  private diskFullTimes = 0;
  /** When the write waiting for disk space first found the disk full; 0 when none waits. */
  private diskFullSince = 0;
  private lastFullReportAt = 0;
  private emptiedSegments = 0;
  private truncatedBytes = 0;

  private constructor(
    options: DiskChannelOptions,
    private readonly lock: DirectoryLock,
  ) {
    this.dir = options.dir;
    this.maxBytes = positiveInteger("maxBytes", options.maxBytes ?? 1024 * MiB, 1024);
    // A quarter of maxBytes at most, so that a segment can go while the others fill.
    this.segmentBytes = Math.min(
      positiveInteger("segmentBytes", options.segmentBytes ?? 64 * MiB, 1024),
      Math.max(1024, Math.floor(this.maxBytes / 4)),
    );
    this.fsync = options.fsync ?? "interval";
    this.fsyncIntervalMs = positiveInteger("fsyncIntervalMs", options.fsyncIntervalMs ?? 1000, 1);
    this.commitSyncMs = positiveInteger("commitSyncMs", options.commitSyncMs ?? 1000, 0);
    this.tailBytes = positiveInteger("tailBytes", options.tailBytes ?? 16 * MiB, 0);
    this.readChunkBytes = positiveInteger("readChunkBytes", options.readChunkBytes ?? MiB, 64);
    this.logger = options.logger;
    this.reader = new SegmentReader(() => this.log.segments, this.readChunkBytes);
  }

  /** Opens (or creates) the channel in `options.dir`: locks it, checks and repairs the segments, restores the committed mark. */
  static async open(options: DiskChannelOptions): Promise<DiskChannel> {
    if (!["always", "interval", "never"].includes(options.fsync ?? "interval"))
      throw new ChannelError(
        `fsync must be "always", "interval" or "never", got ${JSON.stringify(options.fsync)}`,
        "config",
        "fix the channel's fsync",
      );
    mkdirSync(options.dir, { recursive: true });
    const lock = DirectoryLock.acquire(options.dir);
    let channel: DiskChannel | undefined;
    try {
      channel = new DiskChannel(options, lock);
      await channel.recover();
    } catch (e) {
      lock.release();
      throw e;
    }
    if (channel.fsync === "interval") {
      channel.fsyncTimer = setInterval(() => channel.requestSync(), channel.fsyncIntervalMs);
      channel.fsyncTimer.unref();
    }
    return channel;
  }

  // --- recovery -------------------------------------------------------------------------------------

  private async recover(): Promise<void> {
    const { mark, seq: committed } = await CommitMark.open(this.dir, this.logger);
    this.mark = mark;
    this.committedSeq = committed;
    this.persistedSeq = committed;
    let found: Awaited<ReturnType<typeof SegmentLog.recover>>;
    try {
      found = await SegmentLog.recover(
        { dir: this.dir, synced: this.fsync !== "never", readChunkBytes: this.readChunkBytes, logger: this.logger },
        committed,
      );
    } catch (e) {
      await mark.close().catch(() => {});
      throw e;
    }
    this.log = found.log;
    this.corruptOnOpen += found.corruptRecords;
    this.truncatedBytes += found.truncatedBytes;
    this.nextSeq = found.nextSeq;
    this.admittedEnd = found.end;
    this.writtenEnd = found.end;
    this.writtenSeq = this.nextSeq - 1;
    this.durableSeq = this.writtenSeq;
    this.committedEnd = found.firstUncommitted >= 0 ? found.firstUncommitted : found.end;
    this.readAt = this.committedEnd;
    this.lastTakenSeq = committed;
    this.uncommittedRecords = found.uncommitted;
  }

  // --- put ------------------------------------------------------------------------------------------

  /**
   * Appends `payloads` as one batch and resolves with the seq of its last record once it is written
   * (and, with fsync "always", synced). Waits first while the channel has no room for the batch.
   * The buffers must not change until the promise settles.
   */
  put(payloads: readonly Buffer[]): Promise<number> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(this.closedError("put"));
    const n = payloads.length;
    if (n === 0) return Promise.resolve(this.nextSeq - 1);
    let bytes = n * RECORD_HEADER_BYTES;
    for (let i = 0; i < n; i++) {
      const len = (payloads[i] as Buffer).length;
      if (len + RECORD_HEADER_BYTES > this.maxBytes)
        return Promise.reject(
          new ChannelError(
            `a record of ${len} bytes cannot go into a disk channel of maxBytes ${this.maxBytes}`,
            "too-large",
            "raise the channel's maxBytes, or lower the source's maxLineBytes so long lines are cut before they reach the channel",
          ),
        );
      bytes += len;
    }
    return new Promise((resolve, reject) => {
      if (this.blocked.length === 0 && this.fits(bytes)) this.admit(payloads, bytes, resolve, reject);
      else this.blocked.push({ payloads, bytes, resolve, reject });
    });
  }

  private fits(bytes: number): boolean {
    return this.uncommittedRecords === 0 || this.heldBytes() + bytes <= this.maxBytes;
  }

  /** Bytes of records from the oldest segment on disk to the last admitted put: what maxBytes bounds. */
  private heldBytes(): number {
    return this.admittedEnd - (this.log.segments[0] as Segment).base;
  }

  private admit(
    payloads: readonly Buffer[],
    bytes: number,
    resolve: (lastSeq: number) => void,
    reject: (err: Error) => void,
  ): void {
    const firstSeq = this.nextSeq;
    const lastSeq = firstSeq + payloads.length - 1;
    this.nextSeq = lastSeq + 1;
    this.admittedEnd += bytes;
    this.uncommittedRecords += payloads.length;
    this.writeQueue.push({ buf: encodeRecords(payloads, firstSeq, bytes), firstSeq, lastSeq, resolve, reject });
    if (!this.writing && !this.writerScheduled) {
      // A microtask later, so puts made in the same turn of the event loop share one write.
      this.writerScheduled = true;
      queueMicrotask(() => {
        this.writerScheduled = false;
        void this.writeLoop();
      });
    }
  }

  private admitBlocked(): void {
    while (this.blocked.length > 0) {
      const b = this.blocked[0] as BlockedPut;
      if (!this.fits(b.bytes)) return;
      this.blocked.shift();
      this.admit(b.payloads, b.bytes, b.resolve, b.reject);
    }
  }

  private async writeLoop(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      let reported = false;
      while (this.writeQueue.length > 0 && this.failure === null) {
        const q = this.writeQueue;
        let seg: Segment = this.log.active;
        // Everything queued that fits in this segment goes out in one writev().
        let n = 0;
        let bytes = 0;
        try {
          if (seg.end > SEGMENT_HEADER_BYTES && seg.end + (q[0] as PendingWrite).buf.length > this.segmentBytes)
            seg = await this.log.roll((q[0] as PendingWrite).firstSeq, this.writtenEnd);
          while (n < q.length && (n === 0 || seg.end + bytes + (q[n] as PendingWrite).buf.length <= this.segmentBytes))
            bytes += (q[n++] as PendingWrite).buf.length;
          await this.log.append(
            q.slice(0, n).map((w) => w.buf),
            bytes,
          );
        } catch (e) {
          // A full disk is a pause, not an end: the writes wait (so puts, and the sources, wait too)
          // and are tried again at the same offset, which overwrites whatever part of them reached
          // the disk. A channel closed meanwhile leaves them to be read again from their files.
          if (!isDiskFull(e) || this.closed) throw e;
          if (this.diskFullSince === 0) {
            const fullSince = Date.now();
            this.diskFullSince = fullSince;
            this.diskFullTimes++;
            // Reported at most every 10 s: a channel that empties its active segment on a disk it
            // fills itself meets a full disk again and again.
            reported = fullSince - this.lastFullReportAt >= 10_000;
            if (reported) {
              this.logger?.warn(
                { err: e, dir: this.dir, diskFullTimes: this.diskFullTimes },
                `disk channel: no space left in ${this.dir}; writes wait for space`,
              );
              this.lastFullReportAt = fullSince;
            }
          }
          if (await this.reuseActiveSegment()) continue;
          await this.waitForSpace(Math.min(2_000, 100 * 2 ** Math.min(5, (Date.now() - this.diskFullSince) / 2_000)));
          continue;
        }
        if (this.diskFullSince !== 0) {
          if (reported)
            this.logger?.warn(
              { dir: this.dir, waitedMs: Date.now() - this.diskFullSince, emptiedSegments: this.emptiedSegments },
              "disk channel: space is back; writing again",
            );
          this.diskFullSince = 0;
        }
        const group = q.splice(0, n);
        let at = this.writtenEnd;
        for (const w of group) {
          this.tail.push({ buf: w.buf, logicalStart: at, lastSeq: w.lastSeq });
          this.tailHeld += w.buf.length;
          at += w.buf.length;
        }
        this.writtenEnd = at;
        this.writtenSeq = (group[group.length - 1] as PendingWrite).lastSeq;
        this.evictTail();
        if (this.fsync === "always") {
          for (const w of group) this.syncWaiters.push(w);
          this.requestSync();
        } else {
          for (const w of group) w.resolve(w.lastSeq);
        }
        this.takeWaiter?.();
      }
    } catch (e) {
      this.fail(e, "write a segment");
    } finally {
      this.writing = false;
      const idle = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of idle) f();
    }
  }

  /**
   * On a full disk, with every record written committed: empties the active segment so its space
   * takes the next writes (its records are delivered; older segments are going or gone). Returns
   * whether it did.
   */
  private async reuseActiveSegment(): Promise<boolean> {
    const seg = this.log.active;
    if (
      seg.end <= SEGMENT_HEADER_BYTES ||
      this.committedSeq < this.writtenSeq ||
      this.taken.count > 0 ||
      this.readAt !== this.writtenEnd
    )
      return false;
    await this.log.resetActive(this.writtenEnd);
    await this.reader.release(seg);
    this.evictTail();
    this.emptiedSegments++;
    return true;
  }

  /** Waits `ms`, or less if a commit or a deletion may have freed space meanwhile. */
  private waitForSpace(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.spaceWaiter = () => {
        this.spaceWaiter = null;
        done();
      };
    });
  }

  private requestSync(): void {
    if (this.syncing !== null || this.failure !== null) return;
    // Cleared in a callback, never inside syncLoop: a loop with nothing to do ends before it is
    // stored here, and clearing it there left `syncing` set for good (no sync ever ran again).
    const run: Promise<void> = this.syncLoop().finally(() => {
      if (this.syncing === run) this.syncing = null;
    });
    this.syncing = run;
  }

  /** fdatasync()s until every waiting put is covered; puts written during one sync share the next. */
  private async syncLoop(): Promise<void> {
    try {
      for (;;) {
        const target = this.writtenSeq;
        if (target <= this.durableSeq && !this.log.unsynced) break;
        await this.log.sync(target > this.durableSeq);
        if (target > this.durableSeq) this.durableSeq = target;
        const w = this.syncWaiters;
        let i = 0;
        while (i < w.length && (w[i] as PendingWrite).lastSeq <= this.durableSeq) {
          const p = w[i++] as PendingWrite;
          p.resolve(p.lastSeq);
        }
        w.splice(0, i);
        if (w.length === 0) break;
      }
    } catch (e) {
      this.fail(e, "fsync a segment");
    }
  }

  // --- take, commit, rollback -------------------------------------------------------------------------

  /**
   * The oldest records not yet taken: at most `maxRecords`, and no more than `maxBytes` of payload
   * (but always at least one). Waits until there is one; resolves with an empty batch if the channel
   * closes or `signal` aborts first (an aborted signal takes what is there without waiting). One take
   * at a time.
   */
  take(maxRecords: number, maxBytes: number, signal?: AbortSignal): Promise<ChannelBatch> {
    if (this.takeInProgress !== null)
      return Promise.reject(
        new ChannelError(
          "take() called while another take() is pending",
          "usage",
          "take from one sink loop, awaiting each take before the next",
        ),
      );
    const p = this.takeRecords(Math.max(1, maxRecords), maxBytes, signal);
    this.takeInProgress = p;
    const clear = () => {
      this.takeInProgress = null;
    };
    p.then(clear, clear);
    return p;
  }

  private async takeRecords(maxRecords: number, maxBytes: number, signal?: AbortSignal): Promise<ChannelBatch> {
    const batch = emptyBatch();
    for (;;) {
      if (this.failure !== null) throw this.failure;
      if (this.closed) return batch;
      if (this.readAt >= this.writtenEnd) {
        if (signal?.aborted) return batch;
        await this.waitForRecords(signal);
        continue;
      }
      let full = false;
      let rolledBack = false;
      while (!full && this.readAt < this.writtenEnd && this.failure === null) {
        const front = this.tail[0];
        if (front !== undefined && this.readAt >= front.logicalStart) {
          full = this.takeFromTail(batch, maxRecords, maxBytes);
          continue;
        }
        const epoch = this.epoch;
        const from = batch.seqs.length;
        this.takenEnds.length = 0;
        const r = await this.reader.read(
          this.readAt,
          front !== undefined ? front.logicalStart : this.writtenEnd,
          this.lastTakenSeq,
          maxRecords,
          maxBytes,
          batch,
          this.takenEnds,
        );
        if (epoch !== this.epoch) {
          rolledBack = true;
          break;
        }
        for (let i = from; i < batch.seqs.length; i++)
          this.taken.push(batch.seqs[i] as number, this.takenEnds[i - from] as number);
        if (batch.seqs.length > from) this.lastTakenSeq = batch.seqs[batch.seqs.length - 1] as number;
        if (r.at === this.readAt && !r.full)
          throw new Error(`disk channel: no record at logical offset ${r.at} below ${this.writtenEnd} (a bug)`);
        this.readAt = r.at;
        full = r.full;
        if (this.closed) break;
      }
      if (rolledBack) {
        // rollback() came while the disk was read: what this take had gathered is available again.
        batch.seqs.length = 0;
        batch.payloads.length = 0;
        batch.bytes = 0;
        continue;
      }
      if (this.failure !== null) throw this.failure;
      batch.lastSeq = batch.seqs.length > 0 ? (batch.seqs[batch.seqs.length - 1] as number) : 0;
      if (batch.seqs.length > 0 || this.closed) return batch;
      // Only corrupt bytes were there: wait for more.
    }
  }

  /** Takes from the in-memory tail (readAt is in it); returns whether a limit was reached. */
  private takeFromTail(batch: ChannelBatch, maxRecords: number, maxBytes: number): boolean {
    const tail = this.tail;
    // The last batch that starts at or before readAt.
    let lo = 0;
    let hi = tail.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((tail[mid] as TailBatch).logicalStart <= this.readAt) lo = mid;
      else hi = mid - 1;
    }
    const seqs = batch.seqs;
    const payloads = batch.payloads;
    for (let k = lo; k < tail.length; k++) {
      const b = tail[k] as TailBatch;
      const buf = b.buf;
      let off = this.readAt - b.logicalStart;
      while (off < buf.length) {
        const len = recordLength(buf, off);
        if (seqs.length >= maxRecords || (seqs.length > 0 && batch.bytes + len > maxBytes)) {
          this.readAt = b.logicalStart + off;
          return true;
        }
        const seq = recordSeq(buf, off);
        seqs.push(seq);
        payloads.push(buf.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + len));
        batch.bytes += len;
        off += RECORD_HEADER_BYTES + len;
        this.taken.push(seq, b.logicalStart + off);
        this.lastTakenSeq = seq;
      }
      this.readAt = b.logicalStart + off;
    }
    return false;
  }

  private waitForRecords(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.takeWaiter = null;
        signal?.removeEventListener("abort", done);
        resolve();
      };
      this.takeWaiter = done;
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * Marks every taken record up to `uptoSeq` delivered: its space is freed (waiting puts go in) and
   * it will not be taken again, not even after a crash once the mark is on disk (within commitSyncMs).
   * Commits come in order; a seq at or below the last commit is ignored.
   */
  commit(uptoSeq: number): void {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw this.closedError("commit");
    if (uptoSeq <= this.committedSeq) return;
    if (uptoSeq > this.lastTakenSeq)
      throw new ChannelError(
        `commit(${uptoSeq}) is past the last record taken (seq ${this.lastTakenSeq})`,
        "usage",
        "commit only seqs that take() returned",
      );
    const n = this.taken.dropUpTo(uptoSeq);
    // With nothing left in flight, everything before readAt is delivered, or was skipped as corrupt.
    if (this.taken.count === 0) this.committedEnd = this.readAt;
    else if (n > 0) this.committedEnd = this.taken.lastEnd;
    this.committedSeq = uptoSeq;
    this.uncommittedRecords -= n;
    this.evictTail();
    this.admitBlocked();
    this.deleteCommitted();
    // A write waiting for disk space can empty the active segment once everything written is committed.
    if (this.committedSeq >= this.writtenSeq) this.spaceWaiter?.();
    this.scheduleMark();
  }

  /** Deletes the segments whose records are all committed, now rather than after the next mark. */
  private deleteCommitted(): void {
    if (this.deleting !== null || this.failure !== null || !this.log.deletable(this.committedSeq)) return;
    // Cleared in a callback, which always runs after `deleting` is set (see requestSync); a commit
    // that came between the loop's last check and this callback found `deleting` set, so look again.
    const run: Promise<void> = this.deleteLoop().finally(() => {
      if (this.deleting !== run) return;
      this.deleting = null;
      this.deleteCommitted();
    });
    this.deleting = run;
  }

  private async deleteLoop(): Promise<void> {
    try {
      while (this.failure === null && this.log.deletable(this.committedSeq))
        await this.reader.release(await this.log.deleteOldest());
    } catch (e) {
      this.fail(e, "delete a delivered segment");
      return;
    }
    if (this.closed) return;
    this.admitBlocked();
    this.spaceWaiter?.();
  }

  /** Makes every taken, un-committed record available to take again (after the sink failed to deliver them). */
  rollback(): void {
    if (this.failure !== null) throw this.failure;
    this.taken.clear();
    this.readAt = this.committedEnd;
    this.lastTakenSeq = this.committedSeq;
    this.epoch++;
    this.takeWaiter?.();
  }

  /** Drops tail batches that are committed, then the oldest while over tailBytes (takes read those from disk). */
  private evictTail(): void {
    const tail = this.tail;
    let i = 0;
    let held = this.tailHeld;
    while (i < tail.length) {
      const b = tail[i] as TailBatch;
      if (b.lastSeq > this.committedSeq && held <= this.tailBytes) break;
      held -= b.buf.length;
      i++;
    }
    if (i > 0) {
      tail.splice(0, i);
      this.tailHeld = held;
    }
  }

  // --- the committed mark -----------------------------------------------------------------------------

  private scheduleMark(): void {
    if (this.markTimer !== null || this.closed) return;
    const delay = Math.max(0, this.lastMarkAt + this.commitSyncMs - Date.now());
    this.markTimer = setTimeout(() => {
      this.markTimer = null;
      this.markOrRetry();
    }, delay);
    this.markTimer.unref();
  }

  private persistMark(): Promise<void> {
    this.markChain = this.markChain.then(() => this.writeMark());
    return this.markChain;
  }

  /** A mark that did not fit on a full disk is written at the next commit or timer instead. */
  private markOrRetry(): void {
    this.persistMark().catch((e) => {
      if (!isDiskFull(e) || this.closed) return this.fail(e, "write the committed mark");
      this.markChain = Promise.resolve();
      this.lastMarkAt = Date.now();
      this.scheduleMark();
    });
  }

  private async writeMark(): Promise<void> {
    const seq = this.committedSeq;
    if (seq <= this.persistedSeq) return;
    await this.mark.write(seq);
    this.persistedSeq = seq;
    this.lastMarkAt = Date.now();
  }

  // --- after open, close, stats ---------------------------------------------------------------------

  /**
   * Every un-committed record as it is on disk now, oldest first, in batches of up to `batchRecords`:
   * after open, what the channel already holds of each source's files. Reads the segments, does not
   * take (take() still returns these records).
   */
  async *uncommitted(batchRecords = 1000): AsyncGenerator<ChannelBatch> {
    if (this.closed) throw this.closedError("read");
    const reader = new SegmentReader(() => this.log.segments, this.readChunkBytes);
    const ends: number[] = [];
    let at = this.committedEnd;
    let afterSeq = this.committedSeq;
    const stop = this.writtenEnd;
    try {
      while (at < stop) {
        const batch = emptyBatch();
        ends.length = 0;
        at = (await reader.read(at, stop, afterSeq, batchRecords, Number.POSITIVE_INFINITY, batch, ends)).at;
        if (batch.seqs.length === 0) continue;
        batch.lastSeq = batch.seqs[batch.seqs.length - 1] as number;
        afterSeq = batch.lastSeq;
        yield batch;
      }
    } finally {
      await reader.close();
    }
  }

  stats(): ChannelStats {
    const bytes = this.admittedEnd - this.committedEnd;
    return {
      bytes,
      records: this.uncommittedRecords,
      heldBytes: this.heldBytes(),
      maxBytes: this.maxBytes,
      fill: this.heldBytes() / this.maxBytes,
      segments: this.log.segments.length,
      diskBytes: this.log.diskBytes(),
      corruptRecords: this.corruptOnOpen + this.reader.corrupt,
      truncatedBytes: this.truncatedBytes,
      blockedPuts: this.blocked.length,
      diskFullTimes: this.diskFullTimes,
      diskFullMs: this.diskFullSince === 0 ? 0 : Date.now() - this.diskFullSince,
      emptiedSegments: this.emptiedSegments,
      takenRecords: this.taken.count,
      tailBytes: this.tailHeld,
      fsyncs: this.log.fsyncs,
      nextSeq: this.nextSeq,
      committedSeq: this.committedSeq,
    };
  }

  /**
   * Stops taking puts (waiting ones fail), ends a pending take with an empty batch, finishes the
   * writes already accepted, syncs them (unless fsync "never"), writes the committed mark, and
   * releases the directory.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    if (this.fsyncTimer !== null) clearInterval(this.fsyncTimer);
    if (this.markTimer !== null) clearTimeout(this.markTimer);
    for (const b of this.blocked.splice(0)) b.reject(this.closedError("put"));
    this.takeWaiter?.();
    this.spaceWaiter?.();
    try {
      if (this.takeInProgress !== null) await this.takeInProgress.catch(() => {});
      if (this.writing || this.writerScheduled) await new Promise<void>((r) => this.idleWaiters.push(r));
      if (this.syncing !== null) await this.syncing;
      if (this.fsync !== "never" && this.failure === null) {
        this.requestSync();
        if (this.syncing !== null) await this.syncing;
      }
      if (this.deleting !== null) await this.deleting;
      if (this.failure === null)
        await this.persistMark().catch((e) => {
          // Nothing is lost: the next open delivers again what the older mark does not cover.
          if (!isDiskFull(e)) throw e;
          this.logger?.warn(
            { err: e, dir: this.dir, committedSeq: this.committedSeq, markSeq: this.persistedSeq },
            "disk channel: no space left for the committed mark at close; the next start sends again what it does not cover",
          );
        });
    } finally {
      await this.reader.close().catch(() => {});
      this.log.closeSync();
      // A mark the timer started may still be writing (after a failure, close() writes none).
      await this.markChain.catch(() => {});
      await this.mark.close().catch(() => {});
      this.lock.release();
    }
    if (this.failure !== null) throw this.failure;
  }

  private closedError(doing: string): ChannelError {
    return new ChannelError(
      `cannot ${doing}: the disk channel ${this.dir} is closed`,
      "closed",
      "stop the sources and the sink before closing the channel",
    );
  }

  /** An I/O failure ends the channel: what is on disk stays, and the next open recovers it. */
  private fail(err: unknown, doing: string): void {
    if (this.failure !== null) return;
    const message = err instanceof Error ? err.message : String(err);
    this.failure = new ChannelError(
      `the disk channel ${this.dir} failed to ${doing}: ${message}`,
      "io",
      `check free space and permissions of ${this.dir}, then restart the shipper: opening the channel recovers every complete record`,
      { cause: err },
    );
    this.logger?.error({ err, dir: this.dir }, this.failure.message);
    for (const w of this.writeQueue.splice(0)) w.reject(this.failure);
    for (const w of this.syncWaiters.splice(0)) w.reject(this.failure);
    for (const b of this.blocked.splice(0)) b.reject(this.failure);
    this.takeWaiter?.();
  }
}

/** ENOSPC, or EDQUOT (a quota): the disk may have room again later. */
function isDiskFull(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}
