// Cuts one byte stream (a file from some offset, or stdin) into RawLines. Bytes stay bytes: nothing
// is decoded here, formats validate UTF-8 later.
//
// A line that fits in the chunk it was read with is a view of that chunk, not a copy. A line that
// spans chunks is copied into a buffer of its own, which never holds more than maxLineBytes: the
// rest of a longer line is counted and skipped, so a 10 MiB line costs 1 MiB of memory, not 10.
import type { RawLine } from "../../types.ts";

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/** Lines waiting to go to the sink, with the limits that make a batch full. */
export class LineBatch {
  lines: RawLine[] = [];
  bytes = 0;
  /** Lines in the batch that were cut to maxLineBytes. */
  cut = 0;

  constructor(
    readonly maxLines: number,
    readonly maxBytes: number,
  ) {}

  get full(): boolean {
    return this.lines.length >= this.maxLines || this.bytes >= this.maxBytes;
  }

  get empty(): boolean {
    return this.lines.length === 0;
  }

  add(line: RawLine): void {
    this.lines.push(line);
    this.bytes += line.bytes.length;
    if (line.size > line.bytes.length) this.cut++;
  }

  /** Hands the lines over and starts a new batch (the sink may keep the array). */
  take(): RawLine[] {
    const lines = this.lines;
    this.lines = [];
    this.bytes = 0;
    this.cut = 0;
    return lines;
  }
}

export interface LineOrigin {
  source: string;
  file: string;
  fileId: string;
}

export class LineReader {
  /** Offset of the next byte push() expects. */
  offset: number;
  /** Offset of the first byte of the line being read: where reading resumes if this reader is dropped. */
  lineStart: number;
  /** The seq the next line gets. */
  seq: number;
  /** Lines cut to maxLineBytes so far. */
  linesCut = 0;
  /** The largest line buffer this reader has held (its memory bound is maxLineBytes). */
  largestHeld = 0;

  /** The first bytes of the line being read (at most maxLineBytes), when it spans chunks. */
  private held: Buffer | null = null;
  private heldLength = 0;
  /** Bytes of the line being read so far, newline excluded, including those skipped past maxLineBytes. */
  private lineBytes = 0;
  /** The last byte of the line so far is \r (stripped if the newline follows it). */
  private endsWithCR = false;
  /** Drop everything up to the next newline: reading started in the middle of a line. */
  private discarding = false;

  constructor(
    readonly origin: LineOrigin,
    readonly maxLineBytes: number,
    offset: number,
    seq: number,
    options: { discardFirstLine?: boolean } = {},
  ) {
    this.offset = offset;
    this.lineStart = offset;
    this.seq = seq;
    this.discarding = options.discardFirstLine ?? false;
  }

  /** Bytes read past the last complete line (not yet shipped). */
  get pendingBytes(): number {
    return this.offset - this.lineStart;
  }

  /**
   * Adds the lines of `chunk[from..]` (whose first byte is at `this.offset`) to `batch`, until the
   * batch is full. Returns where it stopped in the chunk: `chunk.length` once all of it is taken.
   */
  push(chunk: Buffer, from: number, batch: LineBatch): number {
    let pos = from;
    const end = chunk.length;
    while (pos < end) {
      if (batch.full) return pos;
      const newline = chunk.indexOf(NEWLINE, pos);
      if (newline === -1) {
        this.hold(chunk, pos, end);
        return end;
      }
      const lineEnd = this.offset + (newline - pos) + 1;
      if (this.discarding) {
        this.discarding = false;
      } else if (this.lineBytes === 0) {
        // The whole line is in this chunk: a view, no copy.
        const contentEnd = newline > pos && chunk[newline - 1] === CARRIAGE_RETURN ? newline - 1 : newline;
        const size = contentEnd - pos;
        const cut = size > this.maxLineBytes;
        this.emit(batch, chunk.subarray(pos, cut ? pos + this.maxLineBytes : contentEnd), size, lineEnd);
      } else {
        this.appendHeld(chunk, pos, newline);
        const size = this.lineBytes - (this.endsWithCR ? 1 : 0);
        const kept = Math.min(size, this.maxLineBytes);
        const bytes = this.held ? this.held.subarray(0, kept) : Buffer.alloc(0);
        this.held = null;
        this.heldLength = 0;
        this.emit(batch, bytes, size, lineEnd);
      }
      this.lineBytes = 0;
      this.endsWithCR = false;
      this.offset = lineEnd;
      this.lineStart = lineEnd;
      pos = newline + 1;
    }
    return pos;
  }

  /**
   * Ships the bytes after the last newline as a line of their own: for a file that is gone and will
   * not get its newline, and for stdin at its end. Returns whether there was such a line.
   */
  flushPartial(batch: LineBatch): boolean {
    if (this.discarding || this.offset === this.lineStart) return false;
    const size = this.lineBytes - (this.endsWithCR ? 1 : 0);
    const bytes = this.held ? this.held.subarray(0, Math.min(size, this.maxLineBytes)) : Buffer.alloc(0);
    this.held = null;
    this.heldLength = 0;
    this.lineBytes = 0;
    this.endsWithCR = false;
    this.emit(batch, bytes, size, this.offset);
    this.lineStart = this.offset;
    return true;
  }

  private emit(batch: LineBatch, bytes: Buffer, size: number, end: number): void {
    if (size > bytes.length) this.linesCut++;
    const { source, file, fileId } = this.origin;
    batch.add({ source, file, fileId, offset: this.lineStart, end, seq: this.seq, bytes, size });
    this.seq++;
  }

  /** Keeps the start of a line that goes on past this chunk. */
  private hold(chunk: Buffer, pos: number, end: number): void {
    if (!this.discarding) this.appendHeld(chunk, pos, end);
    this.offset += end - pos;
  }

  private appendHeld(chunk: Buffer, pos: number, end: number): void {
    const n = end - pos;
    if (n === 0) return;
    this.lineBytes += n;
    this.endsWithCR = chunk[end - 1] === CARRIAGE_RETURN;
    const room = this.maxLineBytes - this.heldLength;
    if (room <= 0) return;
    const take = Math.min(n, room);
    const needed = this.heldLength + take;
    if (!this.held || this.held.length < needed) {
      const capacity = Math.min(this.maxLineBytes, Math.max(needed, (this.held?.length ?? 0) * 2, 256));
      const grown = Buffer.allocUnsafe(capacity);
      if (this.held) this.held.copy(grown, 0, 0, this.heldLength);
      this.held = grown;
      if (capacity > this.largestHeld) this.largestHeld = capacity;
    }
    chunk.copy(this.held, this.heldLength, pos, pos + take);
    this.heldLength += take;
  }
}
