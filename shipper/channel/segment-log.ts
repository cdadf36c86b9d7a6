// The disk channel's write-ahead log as files (format in segment.ts): the segments in seq order, the
// one being appended to, rolling to a new one, fdatasync of what was written and of the directory,
// deleting segments whose records are all committed (and emptying the active one in place when the
// disk is full and all of it is committed), and recovery: on open, every segment is scanned and
// checked, a torn tail of the last one truncated, corrupt records elsewhere counted and skipped.
// The channel (disk-channel.ts) decides what to write, when to sync and what is committed.
import { closeSync, fstatSync, ftruncateSync, openSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import {
  closeFile,
  FileWindow,
  type Hole,
  isSegmentHeader,
  openFile,
  parseSegmentFileName,
  readExactly,
  SEGMENT_HEADER_BYTES,
  scanSegment,
  segmentFileName,
  segmentHeader,
  syncDirectory,
  syncFile,
  truncateFile,
  unlinkFile,
  writeFully,
} from "./segment.ts";

export interface Segment {
  firstSeq: number;
  path: string;
  /** Logical offset of the first record (file offset SEGMENT_HEADER_BYTES). Logical offsets number the bytes of all segments' records back to back. */
  base: number;
  /** File offset just past the last record written (or found good on open). */
  end: number;
  holes: Hole[] | null;
}

export interface LogOptions {
  dir: string;
  /** Whether segments are ever fsynced (fsync not "never"): if not, a rolled segment is closed at once. */
  synced: boolean;
  /** Read size of the scan on open. */
  readChunkBytes: number;
  logger: Pick<Logger, "warn" | "error"> | undefined;
}

/** What recovery found, besides the log itself. */
export interface RecoveredLog {
  log: SegmentLog;
  /** The seq the next record gets. */
  nextSeq: number;
  /** The logical end of the last good record: where the next write goes. */
  end: number;
  /** Logical offset of the first record above the committed mark, -1 when there is none. */
  firstUncommitted: number;
  /** Records above the committed mark. */
  uncommitted: number;
  /** Records found corrupt and skipped, or lost at the corrupt end of a segment. */
  corruptRecords: number;
  /** Bytes cut from the end of the last segment. */
  truncatedBytes: number;
}

export class SegmentLog {
  /** Rolled segments' fds, synced (then closed) by the next sync, or closed when the segment is deleted first. */
  private unsyncedFds: { seg: Segment; fd: number }[] = [];
  private dirDirty = false;
  /** fdatasync() calls on segment files. */
  fsyncs = 0;

  private constructor(
    private readonly options: LogOptions,
    readonly segments: Segment[],
    private activeFd: number,
  ) {}

  /**
   * Opens the log in `options.dir` (the caller holds its lock): scans and checks every segment,
   * counting the records above `committed` as un-committed; segments wholly at or below it are
   * deleted unscanned. Creates the first segment when there is none.
   */
  static async recover(options: LogOptions, committed: number): Promise<RecoveredLog> {
    const { dir, readChunkBytes, logger } = options;
    const segments: Segment[] = [];
    let activeFd = -1;
    let corruptRecords = 0;
    let truncatedBytes = 0;
    try {
      const files: { firstSeq: number; path: string }[] = [];
      for (const name of readdirSync(dir)) {
        const firstSeq = parseSegmentFileName(name);
        if (firstSeq !== null) files.push({ firstSeq, path: join(dir, name) });
      }
      files.sort((a, b) => a.firstSeq - b.firstSeq);
      // Segments whose every record is committed need no scan (a crash came between mark and delete).
      while (files.length > 1 && (files[1] as { firstSeq: number }).firstSeq - 1 <= committed) {
        rmSync((files.shift() as { path: string }).path, { force: true });
      }

      const window = new FileWindow(readChunkBytes);
      let lastSeq = 0;
      let base = 0;
      let firstUncommitted = -1;
      let uncommitted = 0;
      for (let i = 0; i < files.length; i++) {
        const f = files[i] as { firstSeq: number; path: string };
        const last = i === files.length - 1;
        const nextFirstSeq = last ? 0 : (files[i + 1] as { firstSeq: number }).firstSeq;
        const fd = openSync(f.path, last ? "r+" : "r");
        try {
          let size = fstatSync(fd).size;
          const seg: Segment = { firstSeq: f.firstSeq, path: f.path, base, end: SEGMENT_HEADER_BYTES, holes: null };
          const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
          if (size >= SEGMENT_HEADER_BYTES) await readExactly(fd, header, 0, SEGMENT_HEADER_BYTES, 0);
          if (!isSegmentHeader(header, f.firstSeq) && last) {
            // Torn at creation (or damaged): the name holds the same first seq, so rewrite it; records after it are still scanned.
            if (size > 0) logger?.warn({ segment: f.path }, "disk channel: segment header rewritten");
            await writeFully(fd, [segmentHeader(f.firstSeq)], 0);
            size = Math.max(size, SEGMENT_HEADER_BYTES);
          }
          lastSeq = Math.max(lastSeq, f.firstSeq - 1);
          if (size > SEGMENT_HEADER_BYTES) {
            const scan = await scanSegment(fd, size, lastSeq, window, (seq, off) => {
              if (seq <= committed) return;
              if (firstUncommitted < 0) firstUncommitted = base + off - SEGMENT_HEADER_BYTES;
              uncommitted++;
            });
            lastSeq = scan.lastSeq;
            seg.end = scan.validEnd;
            if (scan.holes.length > 0) seg.holes = scan.holes;
            corruptRecords += scan.corruptRecords;
            if (scan.corruptRecords > 0)
              logger?.warn(
                { segment: f.path, corruptRecords: scan.corruptRecords, holes: scan.holes },
                "disk channel: corrupt records skipped",
              );
            if (scan.badFrom >= 0) {
              if (last) {
                truncatedBytes += size - scan.validEnd;
                ftruncateSync(fd, scan.validEnd);
                logger?.warn(
                  { segment: f.path, at: scan.validEnd, bytes: size - scan.validEnd },
                  "disk channel: torn tail truncated",
                );
              } else {
                const lost = Math.max(1, nextFirstSeq - 1 - scan.lastSeq);
                corruptRecords += lost;
                logger?.warn(
                  { segment: f.path, at: scan.badFrom, lostRecords: lost },
                  "disk channel: the end of a segment is corrupt; going on with the next one",
                );
              }
            }
          }
          base += seg.end - SEGMENT_HEADER_BYTES;
          segments.push(seg);
          if (last) {
            await syncFile(fd);
            activeFd = fd;
          }
        } finally {
          if (!last) closeSync(fd);
        }
      }

      const lastFile = files[files.length - 1];
      const nextSeq = Math.max(lastSeq, committed, lastFile !== undefined ? lastFile.firstSeq - 1 : 0) + 1;
      if (segments.length === 0) {
        const seg: Segment = {
          firstSeq: nextSeq,
          path: join(dir, segmentFileName(nextSeq)),
          base: 0,
          end: SEGMENT_HEADER_BYTES,
          holes: null,
        };
        activeFd = await openFile(seg.path, "wx");
        await writeFully(activeFd, [segmentHeader(seg.firstSeq)], 0);
        await syncFile(activeFd);
        await syncDirectory(dir);
        segments.push(seg);
      }
      return {
        log: new SegmentLog(options, segments, activeFd),
        nextSeq,
        end: base,
        firstUncommitted,
        uncommitted,
        corruptRecords,
        truncatedBytes,
      };
    } catch (e) {
      if (activeFd >= 0) closeSync(activeFd);
      throw e;
    }
  }

  /** The segment being appended to. */
  get active(): Segment {
    return this.segments[this.segments.length - 1] as Segment;
  }

  /** Appends `bytes` of framed records to the active segment, in one writev(). */
  async append(bufs: Buffer[], bytes: number): Promise<void> {
    const seg = this.active;
    await writeFully(this.activeFd, bufs, seg.end);
    seg.end += bytes;
  }

  /** Starts a new segment for records from `firstSeq` on, at logical offset `base`. */
  async roll(firstSeq: number, base: number): Promise<Segment> {
    const seg: Segment = {
      firstSeq,
      path: join(this.options.dir, segmentFileName(firstSeq)),
      base,
      end: SEGMENT_HEADER_BYTES,
      holes: null,
    };
    const fd = await openFile(seg.path, "wx");
    try {
      await writeFully(fd, [segmentHeader(firstSeq)], 0);
    } catch (e) {
      // (A full disk.) Removed, so that the roll can be tried again.
      await closeFile(fd).catch(() => {});
      await unlinkFile(seg.path).catch(() => {});
      throw e;
    }
    const old = this.activeFd;
    this.segments.push(seg);
    this.activeFd = fd;
    if (!this.options.synced) await closeFile(old);
    else {
      // Synced (then closed) by the next sync, with the directory entry of the new file.
      this.unsyncedFds.push({ seg: this.segments[this.segments.length - 2] as Segment, fd: old });
      this.dirDirty = true;
    }
    return seg;
  }

  /** Whether a sync has rolled segments or a new directory entry to make durable. */
  get unsynced(): boolean {
    return this.unsyncedFds.length > 0 || this.dirDirty;
  }

  /**
   * fdatasync()s the rolled segments not synced yet (and closes them), the active one if `data`,
   * and the directory if a segment was created since the last sync.
   */
  async sync(data: boolean): Promise<void> {
    const old = this.unsyncedFds.splice(0);
    const fd = this.activeFd;
    const dir = this.dirDirty;
    this.dirDirty = false;
    for (const o of old) {
      await syncFile(o.fd, true);
      this.fsyncs++;
      await closeFile(o.fd);
    }
    if (data) {
      await syncFile(fd, true);
      this.fsyncs++;
    }
    if (dir) await syncDirectory(this.options.dir);
  }

  /** Whether the oldest segment holds only records at or below `seq` (and is not the active one). */
  deletable(seq: number): boolean {
    return this.segments.length > 1 && (this.segments[1] as Segment).firstSeq - 1 <= seq;
  }

  /**
   * Deletes the oldest segment (the caller checked deletable(); one deletion at a time) and returns
   * it. A rolled segment's fd not yet taken by a sync is closed unsynced: its records are delivered,
   * and an fd left open would hold the file's space after the unlink.
   */
  async deleteOldest(): Promise<Segment> {
    const s = this.segments[0] as Segment;
    const i = this.unsyncedFds.findIndex((u) => u.seg === s);
    if (i >= 0) await closeFile((this.unsyncedFds.splice(i, 1)[0] as { fd: number }).fd);
    await unlinkFile(s.path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT") throw e;
    });
    this.segments.shift();
    return s;
  }

  /**
   * Empties the active segment in place, its records all delivered, so that its space serves the
   * next writes at logical offset `base`: on a full disk, rolling to a new file would need a block
   * the old one holds. The file keeps its name and header; a later record's seq is above the name's,
   * which recovery accepts (seqs only have to increase), and after a crash before the next record
   * the name gives the next seq (the delivered records' seqs come again, which is harmless: a seq
   * only orders the records the channel holds).
   */
  async resetActive(base: number): Promise<Segment> {
    const seg = this.active;
    await truncateFile(this.activeFd, SEGMENT_HEADER_BYTES);
    seg.base = base;
    seg.end = SEGMENT_HEADER_BYTES;
    seg.holes = null;
    return seg;
  }

  /** Bytes of the segment files up to their last good record. */
  diskBytes(): number {
    let bytes = 0;
    for (const s of this.segments) bytes += s.end;
    return bytes;
  }

  /** Closes every file the log holds open. */
  closeSync(): void {
    for (const u of this.unsyncedFds.splice(0)) closeSync(u.fd);
    if (this.activeFd >= 0) closeSync(this.activeFd);
    this.activeFd = -1;
  }
}
