// Merges the lines of one event that a service wrote on several lines (a Java stack trace after its
// log line) into one RawLine, per file. Either `start`: a line matching it starts an event and the
// others continue the current one (for text logs, TEXT_EVENT_START in text.ts); or `continue`: a line
// matching it continues the previous event (e.g. `^\s` for indented frames) and the others start one.
//
// Positions stay resumable: an event is emitted only once it is complete, i.e. when the next event's
// first line arrives, when its file has been quiet for flushMs (flush), or when the file is closed.
// The agent checkpoints the `end` of delivered events, so lines still pending here are read again
// after a restart, never skipped. The merged line has the first line's offset and the last line's
// end; its seq counts events, not lines: the first event the merger sees of a file takes that line's
// seq (0 at the file's start, or the resume point's seq), each later one the next number. So a
// checkpoint's `seq + 1` is exactly the seq the event after it gets again after a restart.
//
// Bounds: beyond maxLines lines or maxBytes bytes, the event's further lines are still consumed (their
// positions belong to it) but their bytes are dropped and a last line says how many were. A line the
// source had already cut (longer than its maxLineBytes) makes the whole event oversized (size >
// bytes.length): the decoder dead-letters it, like a single cut line.
//
// Pending bytes are copied into a buffer per file: a source may reuse its read buffer once its sink
// call returns. Lines stay bytes: patterns are tested against the first 64 KiB of a line read as UTF-8.
import { z } from "zod";
import type { RawLine } from "../types.ts";

const regexSource = z.string().superRefine((source, ctx) => {
  try {
    new RegExp(source);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: `not a valid regular expression: ${(e as Error).message}` });
  }
});

export const MultilineConfig = z
  .strictObject({
    /** A line matching this starts an event; the lines that do not continue it. */
    start: regexSource.optional(),
    /** A line matching this continues the previous event; the lines that do not start one. */
    continue: regexSource.optional(),
    /** Lines beyond this many are dropped from the event (still consumed). */
    maxLines: z.number().int().min(2).default(500),
    /** Bytes beyond this many are dropped from the event (still consumed). */
    maxBytes: z
      .number()
      .int()
      .min(1024)
      .default(512 * 1024),
    /** An event whose next line has not come within this long is complete. */
    flushMs: z.number().int().min(1).default(1000),
  })
  .superRefine((c, ctx) => {
    if ((c.start === undefined) === (c.continue === undefined)) {
      ctx.addIssue({
        code: "custom",
        message:
          "set one of start (a line matching it starts an event, e.g. '^\\d{4}-\\d{2}-\\d{2}') or continue (a line matching it continues the previous one, e.g. '^\\s')",
      });
    }
  });
export type MultilineConfig = z.output<typeof MultilineConfig>;
export type MultilineConfigInput = z.input<typeof MultilineConfig>;

const MATCH_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);
const NEWLINE = 0x0a;

/** One file's event being merged, and the seq its next event gets. Reused from event to event. */
interface FileMerge {
  nextSeq: number;
  pending: boolean;
  /** The first line's position (not the line: its bytes may be a view of the source's read buffer). */
  source: string;
  file: string;
  offset: number;
  end: number;
  lines: number;
  /** Size of every line consumed, with the newlines between them: the event's true size. */
  size: number;
  /** Bytes kept in `buf`. */
  kept: number;
  droppedLines: number;
  droppedBytes: number;
  /** A line of the event was cut by the source. */
  cut: boolean;
  lastAt: number;
  buf: Buffer;
}

export class MultilineMerger {
  readonly config: MultilineConfig;
  private readonly start: RegExp | null;
  private readonly continues: RegExp | null;
  private readonly files = new Map<string, FileMerge>();
  /** Events cut short by maxLines or maxBytes. */
  truncatedEvents = 0;

  constructor(config: MultilineConfigInput) {
    const parsed = MultilineConfig.safeParse(config);
    if (!parsed.success) {
      throw new Error(
        `invalid multiline config: ${parsed.error.issues.map((i) => `${i.path.join(".") || "multiline"}: ${i.message}`).join("; ")}`,
      );
    }
    this.config = parsed.data;
    this.start = this.config.start !== undefined ? new RegExp(this.config.start) : null;
    this.continues = this.config.continue !== undefined ? new RegExp(this.config.continue) : null;
  }

  /** Takes the next line of its file; pushes the events it completes onto `out` (at most one). */
  push(line: RawLine, out: RawLine[], now: number = Date.now()): void {
    let f = this.files.get(line.fileId);
    if (f === undefined) {
      f = {
        nextSeq: line.seq,
        pending: false,
        source: "",
        file: "",
        offset: 0,
        end: 0,
        lines: 0,
        size: 0,
        kept: 0,
        droppedLines: 0,
        droppedBytes: 0,
        cut: false,
        lastAt: 0,
        buf: EMPTY,
      };
      this.files.set(line.fileId, f);
    }
    if (f.pending && !this.startsEvent(line)) this.append(f, line);
    else {
      if (f.pending) out.push(this.emit(f, line.fileId));
      this.begin(f, line);
    }
    f.lastAt = now;
  }

  /**
   * Emits the events whose file has been quiet for flushMs. Call it on a timer. `quiet` narrows it to
   * files the source has read to their end: a file whose next line waits behind backpressure (a full
   * channel) is not quiet, and flushing it would split an event whose rest is already on disk.
   */
  flush(now: number, out: RawLine[], quiet?: (fileId: string) => boolean): void {
    for (const [fileId, f] of this.files) {
      if (f.pending && now - f.lastAt >= this.config.flushMs && (quiet === undefined || quiet(fileId))) {
        out.push(this.emit(f, fileId));
        // A quiet file keeps only its seq counter, not a buffer.
        f.buf = EMPTY;
      }
    }
  }

  /**
   * The source is done with the file for good (deleted, or rotated away and read to its end): emits
   * its pending event and forgets the file. Not for a file closed for being idle that may be reopened:
   * its event seqs must go on from where they were, so flush it instead.
   */
  close(fileId: string, out: RawLine[]): void {
    const f = this.files.get(fileId);
    if (f === undefined) return;
    if (f.pending) out.push(this.emit(f, fileId));
    this.files.delete(fileId);
  }

  /** When the next pending event would be flushed by time; undefined when none is pending. */
  nextFlushAt(): number | undefined {
    let at: number | undefined;
    for (const f of this.files.values()) {
      if (f.pending && (at === undefined || f.lastAt + this.config.flushMs < at)) at = f.lastAt + this.config.flushMs;
    }
    return at;
  }

  /** Events waiting for their next line. */
  pendingEvents(): number {
    let n = 0;
    for (const f of this.files.values()) if (f.pending) n++;
    return n;
  }

  private startsEvent(line: RawLine): boolean {
    const text = line.bytes.toString("utf8", 0, Math.min(line.bytes.length, MATCH_BYTES));
    return this.start !== null ? this.start.test(text) : !(this.continues as RegExp).test(text);
  }

  private begin(f: FileMerge, line: RawLine): void {
    f.pending = true;
    f.source = line.source;
    f.file = line.file;
    f.offset = line.offset;
    f.end = line.end;
    f.lines = 1;
    f.size = line.size;
    f.kept = 0;
    f.droppedLines = 0;
    f.droppedBytes = 0;
    f.cut = line.size > line.bytes.length;
    this.keep(f, line.bytes, false);
  }

  private append(f: FileMerge, line: RawLine): void {
    f.end = line.end;
    f.lines++;
    f.size += 1 + line.size;
    if (line.size > line.bytes.length) f.cut = true;
    if (f.droppedLines === 0 && f.lines <= this.config.maxLines && f.kept + 1 + line.bytes.length <= this.keepLimit()) {
      this.keep(f, line.bytes, true);
    } else {
      f.droppedLines++;
      f.droppedBytes += 1 + line.size;
    }
  }

  /** Room left for the note that says how much was dropped. */
  private keepLimit(): number {
    return this.config.maxBytes - 160;
  }

  private keep(f: FileMerge, bytes: Buffer, newline: boolean): void {
    const need = f.kept + (newline ? 1 : 0) + bytes.length;
    if (need > f.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, f.buf.length * 2, 4096));
      f.buf.copy(grown, 0, 0, f.kept);
      f.buf = grown;
    }
    if (newline) f.buf[f.kept++] = NEWLINE;
    f.kept += bytes.copy(f.buf, f.kept);
  }

  private emit(f: FileMerge, fileId: string): RawLine {
    let bytes: Buffer;
    let size: number;
    if (f.droppedLines > 0) {
      this.truncatedEvents++;
      const note = `\n\t... ${f.droppedLines} more lines (${f.droppedBytes} bytes) dropped by weir ship: the event is longer than multiline maxLines (${this.config.maxLines}) or maxBytes (${this.config.maxBytes})`;
      bytes = Buffer.concat([f.buf.subarray(0, f.kept), Buffer.from(note)]);
      // What is left is the whole event as shipped, unless a line was cut by the source.
      size = f.cut ? f.size : bytes.length;
    } else {
      bytes = Buffer.from(f.buf.subarray(0, f.kept));
      size = f.cut ? f.size : f.kept;
    }
    const event: RawLine = {
      source: f.source,
      file: f.file,
      fileId,
      offset: f.offset,
      end: f.end,
      seq: f.nextSeq++,
      bytes,
      size,
    };
    f.pending = false;
    // A huge event's buffer is not kept for the file's ordinary ones.
    if (f.buf.length > 1 << 20) f.buf = EMPTY;
    return event;
  }
}
