// Reads the disk channel's records back from its segment files (take() when the in-memory tail no
// longer holds them, uncommitted() after open), through a bounded window: a segment is never read
// whole, and a record damaged since the scan on open is counted, not returned.
import {
  closeFile,
  FileWindow,
  openFile,
  RECORD_HEADER_BYTES,
  recordIntact,
  recordLength,
  recordSeq,
  SEGMENT_HEADER_BYTES,
} from "./segment.ts";
import type { Segment } from "./segment-log.ts";

/** Where read() appends records: a ChannelBatch of disk-channel.ts (declared here, which it need not import). */
export interface RecordsRead {
  seqs: number[];
  /** Views of the window's buffers (a fresh one per load), never reused by it. */
  payloads: Buffer[];
  /** Payload bytes. */
  bytes: number;
}

/** Reads records back from the segment files through a bounded window. */
export class SegmentReader {
  private readonly window: FileWindow;
  private fd = -1;
  private fdSegment: Segment | null = null;
  /** Records found corrupt while reading (after open). */
  corrupt = 0;

  constructor(
    private readonly segments: () => readonly Segment[],
    chunkBytes: number,
  ) {
    this.window = new FileWindow(chunkBytes);
  }

  private segmentAt(at: number): Segment {
    const segs = this.segments();
    for (const s of segs) if (at < s.base + s.end - SEGMENT_HEADER_BYTES) return s;
    return segs[segs.length - 1] as Segment;
  }

  private async load(seg: Segment, pos: number, n: number): Promise<void> {
    if (this.fdSegment !== seg) {
      await this.closeFd();
      this.fd = await openFile(seg.path, "r");
      this.fdSegment = seg;
    }
    await this.window.load(seg, this.fd, pos, n, seg.end);
  }

  /**
   * Appends to `out` the records from logical offset `from` up to `stop` (a record boundary), while
   * out holds fewer than `maxRecords` and, after its first, no more than `maxBytes` of payload.
   * `ends` gets each record's logical end. A record that fails its check (or whose seq is not above
   * `afterSeq`) is counted and the rest of its segment skipped. Returns the offset reached and
   * whether a limit stopped it.
   */
  async read(
    from: number,
    stop: number,
    afterSeq: number,
    maxRecords: number,
    maxBytes: number,
    out: RecordsRead,
    ends: number[],
  ): Promise<{ at: number; full: boolean }> {
    let at = from;
    let seg = this.segmentAt(at);
    let pos = SEGMENT_HEADER_BYTES + at - seg.base;
    const w = this.window;
    while (at < stop) {
      if (out.seqs.length >= maxRecords) return { at, full: true };
      if (pos >= seg.end) {
        seg = this.segmentAt(at);
        pos = SEGMENT_HEADER_BYTES + at - seg.base;
        if (pos >= seg.end) break;
        continue;
      }
      if (seg.holes !== null) {
        const hole = seg.holes.find((h) => h.start === pos);
        if (hole !== undefined) {
          at += hole.end - pos;
          pos = hole.end;
          continue;
        }
      }
      if (!w.has(seg, pos, RECORD_HEADER_BYTES)) await this.load(seg, pos, RECORD_HEADER_BYTES);
      let o = pos - w.start;
      const len = recordLength(w.buf, o);
      const frame = RECORD_HEADER_BYTES + len;
      if (pos + frame <= seg.end) {
        if (out.seqs.length > 0 && out.bytes + len > maxBytes) return { at, full: true };
        if (!w.has(seg, pos, frame)) {
          await this.load(seg, pos, frame);
          o = 0;
        }
        const seq = recordSeq(w.buf, o);
        if (seq > afterSeq && recordIntact(w.buf, o, len)) {
          out.seqs.push(seq);
          out.payloads.push(w.buf.subarray(o + RECORD_HEADER_BYTES, o + frame));
          out.bytes += len;
          afterSeq = seq;
          pos += frame;
          at += frame;
          ends.push(at);
          continue;
        }
      }
      // Damaged since open (the scan on open passed it): without the scan's resync at hand, the
      // rest of this segment is given up, and counted as one record.
      this.corrupt++;
      at += seg.end - pos;
      pos = seg.end;
    }
    return { at, full: false };
  }

  private async closeFd(): Promise<void> {
    if (this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      this.fdSegment = null;
      await closeFile(fd);
    }
  }

  /**
   * Forgets `seg` (deleted, or emptied for reuse): its fd is closed, or a deleted file's space would
   * stay held, and its bytes leave the window. The channel calls this only for a segment whose
   * records are all delivered, which no read is on.
   */
  async release(seg: Segment): Promise<void> {
    if (this.window.owner === seg) this.window.clear();
    if (this.fdSegment === seg) await this.closeFd();
  }

  async close(): Promise<void> {
    this.window.clear();
    await this.closeFd();
  }
}
