// A ShipEntry as a disk channel payload: compact binary, no JSON. Numbers that are counts or
// offsets are LEB128 varints (a line's offset, its length, its seq: a few bytes each); the event
// time stays a float64 so any number round-trips. The value, the largest part, comes last and
// takes the rest of the payload, so it needs no length.
//
//   u8 version (1) | f64 LE ts
//   varint offset | varint end - offset | varint seq
//   varint len + utf8: topic, source, file, fileId
//   varint key length + 1 (0: null key) + key bytes
//   value bytes
import type { ShipEntry } from "../types.ts";

const VERSION = 1;

/** The last string encoded per field and its bytes: topic, source, file and fileId repeat entry after entry. */
class EncodedString {
  private str = "";
  private bytes: Buffer = Buffer.alloc(0);

  get(s: string): Buffer {
    if (s !== this.str) {
      this.bytes = Buffer.from(s, "utf8");
      this.str = s;
    }
    return this.bytes;
  }
}

/** The last string decoded per field, reused while the bytes are the same (no new string per entry). */
class DecodedString {
  private bytes: Buffer = Buffer.alloc(0);
  private str = "";

  get(buf: Buffer, start: number, end: number): string {
    const len = end - start;
    if (len !== this.bytes.length || buf.compare(this.bytes, 0, len, start, end) !== 0) {
      this.str = buf.toString("utf8", start, end);
      // A copy: holding a view would keep the whole batch buffer it came from alive.
      this.bytes = Buffer.from(buf.subarray(start, end));
    }
    return this.str;
  }
}

const encoded = [new EncodedString(), new EncodedString(), new EncodedString(), new EncodedString()] as const;
const decoded = [new DecodedString(), new DecodedString(), new DecodedString(), new DecodedString()] as const;

function varintBytes(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, off: number, n: number): number {
  while (n >= 128) {
    buf[off++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  buf[off++] = n;
  return off;
}

function checkCount(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`ShipEntry ${name} must be a non-negative integer, got ${n}`);
}

export function encodeShipEntry(entry: ShipEntry): Buffer {
  const p = entry.position;
  checkCount("position.offset", p.offset);
  checkCount("position.end - position.offset", p.end - p.offset);
  checkCount("position.seq", p.seq);
  const topic = encoded[0].get(entry.topic);
  const source = encoded[1].get(p.source);
  const file = encoded[2].get(p.file);
  const fileId = encoded[3].get(p.fileId);
  const keyField = entry.key === null ? 0 : entry.key.length + 1;
  const size =
    9 +
    varintBytes(p.offset) +
    varintBytes(p.end - p.offset) +
    varintBytes(p.seq) +
    varintBytes(topic.length) +
    topic.length +
    varintBytes(source.length) +
    source.length +
    varintBytes(file.length) +
    file.length +
    varintBytes(fileId.length) +
    fileId.length +
    varintBytes(keyField) +
    (entry.key?.length ?? 0) +
    entry.value.length;
  const buf = Buffer.allocUnsafe(size);
  buf[0] = VERSION;
  buf.writeDoubleLE(entry.ts, 1);
  let off = writeVarint(buf, 9, p.offset);
  off = writeVarint(buf, off, p.end - p.offset);
  off = writeVarint(buf, off, p.seq);
  off = writeVarint(buf, off, topic.length);
  off += topic.copy(buf, off);
  off = writeVarint(buf, off, source.length);
  off += source.copy(buf, off);
  off = writeVarint(buf, off, file.length);
  off += file.copy(buf, off);
  off = writeVarint(buf, off, fileId.length);
  off += fileId.copy(buf, off);
  off = writeVarint(buf, off, keyField);
  if (entry.key !== null) off += entry.key.copy(buf, off);
  entry.value.copy(buf, off);
  return buf;
}

/** Raised for a payload that is not an encoded ShipEntry (a bug, or a channel written by another version). */
export class ShipEntryDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShipEntryDecodeError";
  }
}

// The decoder's read position: module state rather than closures, so decoding allocates only the entry.
let at = 0;
let limit = 0;

function readVarint(buf: Buffer): number {
  let n = 0;
  let scale = 1;
  for (;;) {
    if (at >= limit) throw new ShipEntryDecodeError("truncated ShipEntry payload");
    const b = buf[at++] as number;
    n += (b & 127) * scale;
    if (b < 128) return n;
    scale *= 128;
    if (scale > 2 ** 56) throw new ShipEntryDecodeError("malformed varint in ShipEntry payload");
  }
}

function readString(buf: Buffer, field: DecodedString): string {
  const len = readVarint(buf);
  if (at + len > limit) throw new ShipEntryDecodeError("truncated ShipEntry payload");
  const s = field.get(buf, at, at + len);
  at += len;
  return s;
}

/**
 * The entry in `payload`. Its key and value are views of the payload (no copy); its strings are
 * shared with the previous entry's when the bytes are the same.
 */
export function decodeShipEntry(payload: Buffer): ShipEntry {
  if (payload.length < 9 || payload[0] !== VERSION)
    throw new ShipEntryDecodeError(
      `not a ShipEntry payload (version byte ${payload[0]}, expected ${VERSION}; ${payload.length} bytes)`,
    );
  at = 9;
  limit = payload.length;
  const ts = payload.readDoubleLE(1);
  const offset = readVarint(payload);
  const lineEnd = offset + readVarint(payload);
  const seq = readVarint(payload);
  const topic = readString(payload, decoded[0]);
  const source = readString(payload, decoded[1]);
  const file = readString(payload, decoded[2]);
  const fileId = readString(payload, decoded[3]);
  const keyField = readVarint(payload);
  let key: Buffer | null = null;
  if (keyField > 0) {
    if (at + keyField - 1 > limit) throw new ShipEntryDecodeError("truncated ShipEntry payload");
    key = payload.subarray(at, at + keyField - 1);
    at += keyField - 1;
  }
  return { topic, key, value: payload.subarray(at), ts, position: { source, file, fileId, offset, end: lineEnd, seq } };
}
