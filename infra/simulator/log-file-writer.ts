// Simulated services' log files: DIR/<service>/<kind>.log, written in big buffered chunks and
// rotated by size the way logrotate does it: rename + create (the file moves to .1, older ones shift
// up, a new file takes its place) or copytruncate (copied to .1, then truncated in place).
// Dirty lines (--dirty) are added next to the valid ones, never instead of them, so every event of
// the run is still in the files; each is recorded in the ground truth by stream, line and offset.
import {
  closeSync,
  copyFileSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import {
  DIRTY_KINDS,
  DIRTY_WEIGHTS,
  type DirtyKind,
  type EventWriter,
  type RecordTypes,
  type SimStream,
  type StreamSummary,
} from "./event-writer.ts";
import { accessLine, appLine, behaviorLine, coinLine, deviceLine } from "./formats.ts";
import type { GroundTruth } from "./ground-truth.ts";
import type { LineFormat, StreamKind } from "./platform.ts";
import { AliasTable, type Rng } from "./random.ts";

export type RotationMode = "rename" | "copytruncate" | "mixed";

export interface LogFileWriterOptions {
  dir: string;
  rotateBytes: number;
  rotation: RotationMode;
  /** Rotated files kept per stream; older ones are deleted. 0 keeps all. */
  keep: number;
  /** Share of lines followed by a dirty line. */
  dirtyRate: number;
  /** Size of an oversized dirty line. */
  oversizeBytes: number;
  /** Randomness for dirty lines only, so --dirty never changes the valid traffic. */
  rng: Rng;
  truth: GroundTruth;
}

const BUFFER_BYTES = 1 << 20;
const dirtyTable = new AliasTable(DIRTY_WEIGHTS);

export class LogFileWriter implements EventWriter {
  private readonly streams: FileStream<unknown>[] = [];
  written = 0;

  constructor(readonly opts: LogFileWriterOptions) {
    mkdirSync(opts.dir, { recursive: true });
  }

  stream<K extends StreamKind>(service: string, kind: K, format: LineFormat): SimStream<RecordTypes[K]> {
    mkdirSync(join(this.opts.dir, service), { recursive: true });
    const mode =
      this.opts.rotation === "mixed" ? (this.streams.length % 2 === 0 ? "rename" : "copytruncate") : this.opts.rotation;
    const s = new FileStream<RecordTypes[K]>(
      this,
      service,
      kind,
      format,
      serializer(kind, format) as (r: RecordTypes[K]) => string,
      mode,
    );
    this.streams.push(s as FileStream<unknown>);
    return s;
  }

  async flush(): Promise<void> {
    for (const s of this.streams) s.flushPending();
    this.opts.truth.flush();
  }

  async close(): Promise<StreamSummary[]> {
    await this.flush();
    return this.streams.map((s) => s.close());
  }
}

function serializer(kind: StreamKind, format: LineFormat): (r: never) => string {
  switch (kind) {
    case "access":
      return accessLine;
    case "coin":
      return coinLine;
    case "behavior":
      return behaviorLine;
    case "device":
      return deviceLine;
    case "app": {
      let pid = 4000;
      for (const c of format) pid += c.charCodeAt(0);
      return (r: RecordTypes["app"]) => appLine(format, r, { pid });
    }
  }
}

class FileStream<T> implements SimStream<T> {
  readonly name: string;
  private readonly path: string;
  private fd: number;
  private fileBytes = 0;
  // Lines are encoded straight into this buffer: no per-line Buffer, no string concatenation.
  private buf = Buffer.allocUnsafe(BUFFER_BYTES);
  private used = 0;
  events = 0;
  lines = 0;
  bytes = 0;
  dirty = 0;
  rotations = 0;

  constructor(
    private readonly writer: LogFileWriter,
    readonly service: string,
    readonly kind: StreamKind,
    readonly format: LineFormat,
    private readonly serialize: (r: T) => string,
    private readonly mode: "rename" | "copytruncate",
  ) {
    this.name = `${service}/${kind}`;
    this.path = join(writer.opts.dir, service, `${kind}.log`);
    this.fd = openSync(this.path, "a");
  }

  write(record: T): void {
    const line = this.serialize(record);
    const { dirtyRate } = this.writer.opts;
    if (dirtyRate > 0 && this.writer.opts.rng.next() < dirtyRate) this.addDirty(line);
    this.append(line);
    this.lines += this.format === "text" ? countNewlines(line) : 1;
    this.events++;
    this.writer.written++;
  }

  /** Appends a line (or a dirty line's bytes); rotates once the file has grown past the limit. */
  private append(chunk: string | Buffer): void {
    // A UTF-8 character takes at most 3 bytes per UTF-16 unit.
    const worst = typeof chunk === "string" ? chunk.length * 3 : chunk.length;
    if (this.used + worst > this.buf.length) {
      this.flushPending();
      if (worst > this.buf.length) this.buf = Buffer.allocUnsafe(worst);
    }
    const size = typeof chunk === "string" ? this.buf.write(chunk, this.used, "utf8") : chunk.copy(this.buf, this.used);
    this.used += size;
    this.bytes += size;
    if (this.fileBytes + this.used > this.writer.opts.rotateBytes) {
      this.flushPending();
      this.rotate();
    }
  }

  private addDirty(line: string): void {
    const { rng, oversizeBytes, truth } = this.writer.opts;
    let kind: DirtyKind = DIRTY_KINDS[dirtyTable.sample(rng)] as DirtyKind;
    // A plain-text log has no JSON to break or mistype: its bad lines are bad bytes or huge ones.
    if (this.format === "text" && (kind === "malformed-json" || kind === "wrong-type")) kind = "invalid-utf8";
    let dirty: string | Buffer;
    switch (kind) {
      case "malformed-json":
        dirty = `${line.slice(0, 1 + rng.int(line.length - 3))}\n`;
        break;
      case "wrong-type":
        dirty =
          this.format === "pino"
            ? line.replace(/"time":\d+/, '"time":"yesterday"')
            : this.format === "logback"
              ? line.replace(/"@timestamp":"[^"]*"/, '"@timestamp":false')
              : line.replace(/"ts":\d+/, '"ts":"yesterday"');
        break;
      case "invalid-utf8": {
        // 0xC3 0x28: a two-byte sequence's lead byte followed by a byte that cannot continue it.
        const bytes = Buffer.from(line, "utf8");
        const at = Math.min(20, bytes.length - 2);
        dirty = Buffer.concat([bytes.subarray(0, at), Buffer.from([0xc3, 0x28, 0xff]), bytes.subarray(at)]);
        break;
      }
      case "oversized": {
        const pad = "x".repeat(oversizeBytes);
        dirty =
          this.format === "text"
            ? `${line.slice(0, -1)} ${pad}\n`
            : `${line.slice(0, line.lastIndexOf("}"))},"blob":"${pad}"}\n`;
        break;
      }
    }
    truth.add({
      kind: "dirty",
      stream: this.name,
      line: this.lines + 1,
      offset: this.bytes,
      reason: kind,
      bytes: typeof dirty === "string" ? Buffer.byteLength(dirty) : dirty.length,
    });
    this.append(dirty);
    this.lines += 1;
    this.dirty++;
  }

  flushPending(): void {
    if (this.used === 0) return;
    let off = 0;
    while (off < this.used) off += writeSync(this.fd, this.buf, off, this.used - off);
    this.fileBytes += this.used;
    this.used = 0;
  }

  private rotate(): void {
    const { keep } = this.writer.opts;
    // Shift the rotated files up: .1 -> .2 -> ...; with `keep`, the oldest falls off.
    let n = this.rotations;
    if (keep > 0 && n >= keep) {
      rmSync(`${this.path}.${keep}`, { force: true });
      n = keep - 1;
    }
    for (let i = n; i >= 1; i--) {
      if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    }
    if (this.mode === "rename") {
      closeSync(this.fd);
      renameSync(this.path, `${this.path}.1`);
      this.fd = openSync(this.path, "a");
    } else {
      copyFileSync(this.path, `${this.path}.1`);
      ftruncateSync(this.fd, 0); // opened for append: the next write lands at the new end, offset 0
    }
    this.fileBytes = 0;
    this.rotations++;
  }

  close(): StreamSummary {
    this.flushPending();
    closeSync(this.fd);
    const { name, service, kind, format, events, lines, bytes, dirty, rotations } = this;
    return { name, service, kind, format, events, lines, bytes, dirty, rotations };
  }
}

function countNewlines(s: string): number {
  let n = 0;
  for (let i = s.indexOf("\n"); i !== -1; i = s.indexOf("\n", i + 1)) n++;
  return n;
}
