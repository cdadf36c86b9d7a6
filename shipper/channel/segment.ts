// The disk channel's on-disk format: segment files of framed, checksummed records, and the scan that
// checks them on open (torn tail found, corrupt records skipped by resynchronising on the next good
// frame). Everything here reads through a bounded window, so a segment is never read whole.
//
// A segment file is `<first seq, 16 digits>.wal`:
//   header (16 bytes):  "WEIRWAL1" | first seq u64 LE            (the name says it too; both must agree)
//   record (16 bytes + payload):
//     crc32c u32 LE  of bytes 4..end (length, seq and payload)
//     length u32 LE  of the payload
//     seq    u64 LE  strictly increasing across the whole channel (gaps only where records were lost)
//     payload
import { close, fdatasync, fsync, ftruncate, open, read, rename, unlink, write, writev } from "node:fs";
import { crc32c } from "@node-rs/crc32";

export const SEGMENT_MAGIC = Buffer.from("WEIRWAL1", "latin1");
export const SEGMENT_HEADER_BYTES = 16;
export const RECORD_HEADER_BYTES = 16;
const TWO_32 = 2 ** 32;
const SEGMENT_NAME = /^(\d{16})\.wal$/;

export function segmentFileName(firstSeq: number): string {
  return `${String(firstSeq).padStart(16, "0")}.wal`;
}

/** The first seq a segment file's name says, or null when the name is not a segment's. */
export function parseSegmentFileName(name: string): number | null {
  const m = SEGMENT_NAME.exec(name);
  return m ? Number(m[1]) : null;
}

export function segmentHeader(firstSeq: number): Buffer {
  const b = Buffer.allocUnsafe(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(b, 0);
  b.writeUInt32LE(firstSeq % TWO_32, 8);
  b.writeUInt32LE(Math.floor(firstSeq / TWO_32), 12);
  return b;
}

/** Whether `b` holds a valid segment header for `firstSeq`. */
export function isSegmentHeader(b: Buffer, firstSeq: number): boolean {
  return (
    b.length >= SEGMENT_HEADER_BYTES &&
    b.compare(SEGMENT_MAGIC, 0, 8, 0, 8) === 0 &&
    b.readUInt32LE(8) + b.readUInt32LE(12) * TWO_32 === firstSeq
  );
}

export function frameBytes(payloadBytes: number): number {
  return RECORD_HEADER_BYTES + payloadBytes;
}

/**
 * Frames `payloads` with seqs from `firstSeq` into one new buffer of `totalBytes` (the sum of their
 * frames): the unit one write() puts on disk, and what the in-memory tail keeps.
 */
export function encodeRecords(payloads: readonly Buffer[], firstSeq: number, totalBytes: number): Buffer {
  const buf = Buffer.allocUnsafe(totalBytes);
  let off = 0;
  let seq = firstSeq;
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i] as Buffer;
    const len = p.length;
    buf.writeUInt32LE(len, off + 4);
    buf.writeUInt32LE(seq % TWO_32, off + 8);
    buf.writeUInt32LE(Math.floor(seq / TWO_32), off + 12);
    p.copy(buf, off + RECORD_HEADER_BYTES);
    buf.writeUInt32LE(crc32c(buf.subarray(off + 4, off + RECORD_HEADER_BYTES + len)), off);
    off += RECORD_HEADER_BYTES + len;
    seq++;
  }
  return buf;
}

export function recordLength(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off + 4);
}

export function recordSeq(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off + 8) + buf.readUInt32LE(off + 12) * TWO_32;
}

/** Whether the record at `off` (its `len` payload bytes all in `buf`) matches its checksum. */
export function recordIntact(buf: Buffer, off: number, len: number): boolean {
  return crc32c(buf.subarray(off + 4, off + RECORD_HEADER_BYTES + len)) === buf.readUInt32LE(off);
}

// --- file I/O as promises over the callback API (lighter than FileHandle on the hot path) -----------

export function openFile(path: string, flags: string): Promise<number> {
  return new Promise((resolve, reject) => open(path, flags, 0o644, (err, fd) => (err ? reject(err) : resolve(fd))));
}

export function closeFile(fd: number): Promise<void> {
  return new Promise((resolve, reject) => close(fd, (err) => (err ? reject(err) : resolve())));
}

export function syncFile(fd: number, dataOnly = false): Promise<void> {
  return new Promise((resolve, reject) => (dataOnly ? fdatasync : fsync)(fd, (err) => (err ? reject(err) : resolve())));
}

/** Cuts the file to `len` bytes (shrinking a file never needs a free block). */
export function truncateFile(fd: number, len: number): Promise<void> {
  return new Promise((resolve, reject) => ftruncate(fd, len, (err) => (err ? reject(err) : resolve())));
}

export function renameFile(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => rename(from, to, (err) => (err ? reject(err) : resolve())));
}

export function unlinkFile(path: string): Promise<void> {
  return new Promise((resolve, reject) => unlink(path, (err) => (err ? reject(err) : resolve())));
}

/** fsyncs a directory, so a file created, renamed or deleted in it survives a power cut. */
export async function syncDirectory(dir: string): Promise<void> {
  const fd = await openFile(dir, "r");
  try {
    await syncFile(fd);
  } finally {
    await closeFile(fd);
  }
}

function readAt(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

function writeAt(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => write(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

function writevAt(fd: number, bufs: Buffer[], pos: number): Promise<number> {
  return new Promise((resolve, reject) => writev(fd, bufs, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Linux refuses more iovecs than this in one writev(). */
const IOV_MAX = 1024;

/** Writes `bufs` back to back at `pos`, in as few syscalls as the kernel allows (one, normally). */
export async function writeFully(fd: number, bufs: Buffer[], pos: number): Promise<void> {
  if (bufs.length === 1) {
    const b = bufs[0] as Buffer;
    let done = 0;
    while (done < b.length) done += await writeAt(fd, b, done, b.length - done, pos + done);
    return;
  }
  let i = 0;
  let skip = 0; // bytes of bufs[i] already written
  while (i < bufs.length) {
    const batch: Buffer[] = [];
    for (let j = i; j < bufs.length && batch.length < IOV_MAX; j++)
      batch.push(j === i && skip > 0 ? (bufs[j] as Buffer).subarray(skip) : (bufs[j] as Buffer));
    let n = await writevAt(fd, batch, pos);
    pos += n;
    // A short write (a signal, a full disk) leaves the rest for the next call.
    while (i < bufs.length && n > 0) {
      const left = (bufs[i] as Buffer).length - skip;
      if (n >= left) {
        n -= left;
        i++;
        skip = 0;
      } else {
        skip += n;
        n = 0;
      }
    }
  }
}

/** Reads exactly `len` bytes at `pos`; fails if the file is shorter. */
export async function readExactly(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<void> {
  let got = 0;
  while (got < len) {
    const n = await readAt(fd, buf, off + got, len - got, pos + got);
    if (n === 0) throw new Error(`short read: wanted ${len} bytes at offset ${pos}, the file ends after ${got}`);
    got += n;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * A bounded view of one file: `buf` holds bytes [start, start + buf.length). Each load reads into a
 * fresh buffer, so payload views handed out from an earlier load stay valid.
 */
export class FileWindow {
  buf: Buffer = EMPTY;
  start = 0;
  /** Whose bytes `buf` holds (a segment), so a reader moving to another file knows to reload. */
  owner: unknown = null;

  constructor(readonly chunkBytes: number) {}

  has(owner: unknown, pos: number, n: number): boolean {
    return owner === this.owner && pos >= this.start && pos + n <= this.start + this.buf.length;
  }

  /** Loads at least [pos, pos + n), and up to a chunk, never past `fileEnd` (pos + n <= fileEnd). */
  async load(owner: unknown, fd: number, pos: number, n: number, fileEnd: number): Promise<void> {
    const size = Math.min(fileEnd - pos, Math.max(n, this.chunkBytes));
    const buf = Buffer.allocUnsafe(size);
    this.owner = null;
    await readExactly(fd, buf, 0, size, pos);
    this.buf = buf;
    this.start = pos;
    this.owner = owner;
  }

  clear(): void {
    this.buf = EMPTY;
    this.owner = null;
  }
}

/** A stretch of a segment file between two good records that holds no record that checks out. */
export interface Hole {
  start: number;
  end: number;
}

export interface SegmentScan {
  /** File offset just past the last good record (the header's end when there is none). */
  validEnd: number;
  /** Seq of the last good record, or the `afterSeq` given when there was none. */
  lastSeq: number;
  /** Good records. */
  records: number;
  /** Corrupt stretches that good records follow; readers jump over them. */
  holes: Hole[];
  /** Seqs known lost in the holes (at least one per hole). */
  corruptRecords: number;
  /** Where bytes that hold no good record run to the end of the file (a torn tail, or corruption), else -1. */
  badFrom: number;
}

/**
 * Checks every record of a segment file from its header on: each must fit in the file, carry a seq
 * above the previous one's (`afterSeq` before the first) and match its CRC. After a bad frame it looks
 * for the next good one byte by byte: a frame that fits, whose seq could follow (the lost records took
 * at least 16 bytes each) and whose CRC matches. `onRecord` sees each good record.
 */
export async function scanSegment(
  fd: number,
  fileSize: number,
  afterSeq: number,
  window: FileWindow,
  onRecord: (seq: number, fileOffset: number, payloadBytes: number) => void,
): Promise<SegmentScan> {
  const scan: SegmentScan = {
    validEnd: SEGMENT_HEADER_BYTES,
    lastSeq: afterSeq,
    records: 0,
    holes: [],
    corruptRecords: 0,
    badFrom: -1,
  };
  const owner = scan;
  window.clear();
  let lastSeq = afterSeq;
  let p = SEGMENT_HEADER_BYTES;

  /** The seq of a good record at `q` whose seq is in (lastSeq, maxSeq], else -1. */
  const goodRecordAt = async (q: number, maxSeq: number): Promise<number> => {
    if (q + RECORD_HEADER_BYTES > fileSize) return -1;
    if (!window.has(owner, q, RECORD_HEADER_BYTES)) await window.load(owner, fd, q, RECORD_HEADER_BYTES, fileSize);
    let o = q - window.start;
    const len = recordLength(window.buf, o);
    const seq = recordSeq(window.buf, o);
    if (q + RECORD_HEADER_BYTES + len > fileSize || seq <= lastSeq || seq > maxSeq) return -1;
    if (!window.has(owner, q, RECORD_HEADER_BYTES + len)) {
      await window.load(owner, fd, q, RECORD_HEADER_BYTES + len, fileSize);
      o = 0;
    }
    return recordIntact(window.buf, o, len) ? seq : -1;
  };

  while (p < fileSize) {
    const seq = await goodRecordAt(p, Number.MAX_SAFE_INTEGER);
    if (seq > 0) {
      const len = recordLength(window.buf, p - window.start);
      onRecord(seq, p, len);
      scan.records++;
      lastSeq = seq;
      p += RECORD_HEADER_BYTES + len;
      scan.validEnd = p;
      continue;
    }
    // Resynchronise: the first offset after p where a good record starts.
    let found = -1;
    let foundSeq = -1;
    for (let q = p + 1; q + RECORD_HEADER_BYTES <= fileSize; q++) {
      if (!window.has(owner, q, RECORD_HEADER_BYTES)) await window.load(owner, fd, q, RECORD_HEADER_BYTES, fileSize);
      const o = q - window.start;
      const len = recordLength(window.buf, o);
      const seq = recordSeq(window.buf, o);
      const maxSeq = lastSeq + 1 + Math.floor((q - p) / RECORD_HEADER_BYTES);
      // Cheap checks first: a garbage header almost never passes them, so the CRC runs rarely.
      if (seq <= lastSeq || seq > maxSeq || q + RECORD_HEADER_BYTES + len > fileSize) continue;
      const s = await goodRecordAt(q, maxSeq);
      if (s > 0) {
        found = q;
        foundSeq = s;
        break;
      }
    }
    if (found < 0) {
      scan.badFrom = p;
      break;
    }
    scan.holes.push({ start: p, end: found });
    scan.corruptRecords += Math.max(1, foundSeq - lastSeq - 1);
    p = found;
  }
  scan.lastSeq = lastSeq;
  return scan;
}
