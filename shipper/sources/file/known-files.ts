// What the file source knows about files, open or not: each fileId with its fingerprint, position
// and last place (KnownFile), and the file it is being read from (OpenFile). The identity rules of
// README.md ("File identity") are decided here: which known files a file's first bytes match, whether
// a file carries a known one on from its position, whether two files hold the same bytes.
import type { Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { crc32c } from "@node-rs/crc32";
import { fingerprintId, hashHead, readAt } from "./fingerprint.ts";
import type { LineReader } from "./line-reader.ts";

/** Bytes before a position whose checksum is kept, to recognise the same content under another inode. */
export const TAIL_SAMPLE_BYTES = 64;
/** Bytes compared to tell a copy of a live file from a different file with the same first bytes. */
const COMPARE_BYTES = 4096;

export interface TailSample {
  /** The position the sample ends at. */
  offset: number;
  length: number;
  crc: number;
}

/** What the source knows about one fileId, open or not. */
export interface KnownFile {
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

export interface OpenFile {
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
  /** The log it belongs to (log-family.ts): of a log's open files, the oldest with lines to read is read first. */
  family: string;
  closed: boolean;
}

export type Continuation = "continues" | "stale-copy" | "different";

/** A file's key while it exists: device and inode. */
export const keyOf = (st: Stats): string => `${st.dev}:${st.ino}`;

export class KnownFiles {
  private readonly byId = new Map<string, KnownFile>();
  private readonly byFingerprint = new Map<string, KnownFile[]>();
  /** Fingerprint lengths in use, longest first, with how many known ids have each. */
  private readonly lengths = new Map<number, number>();
  /** Where a file's first bytes are read to identify it: as long as the longest fingerprint in use. */
  head: Buffer;
  private readonly compareA = Buffer.allocUnsafe(COMPARE_BYTES);
  private readonly compareB = Buffer.allocUnsafe(COMPARE_BYTES);

  constructor(private readonly fingerprintBytes: number) {
    this.head = Buffer.allocUnsafe(fingerprintBytes);
  }

  get(id: string): KnownFile | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  values(): IterableIterator<KnownFile> {
    return this.byId.values();
  }

  /**
   * Known files whose fingerprint this file's first bytes match, longest fingerprint first; among
   * those, the one last seen at this path, then one named after this inode, first.
   */
  candidates(head: Buffer, headLength: number, ownLength: number, own: string, path: string, st: Stats): KnownFile[] {
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
  async continuation(handle: FileHandle, size: number, path: string, known: KnownFile): Promise<Continuation> {
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
  async sameContent(handle: FileHandle, size: number, other: OpenFile): Promise<boolean> {
    const common = Math.min(size, other.size);
    const n = Math.min(COMPARE_BYTES, common);
    if (n === 0) return true;
    const a = await readAt(handle, this.compareA, n, common - n);
    const b = await readAt(other.handle, this.compareB, n, common - n);
    return a === n && b === n && this.compareA.compare(this.compareB, 0, n, 0, n) === 0;
  }

  /** Checksums the bytes before the file's position (when no read produced that sample). */
  async sampleTail(f: OpenFile): Promise<void> {
    const offset = f.reader.lineStart;
    if (offset === 0 || f.known.tail?.offset === offset) return;
    const length = Math.min(TAIL_SAMPLE_BYTES, offset);
    const got = await readAt(f.handle, this.compareA, length, offset - length);
    if (got === length) f.known.tail = { offset, length, crc: crc32c(this.compareA.subarray(0, length)) };
  }

  remember(known: KnownFile): void {
    this.byId.set(known.id, known);
    const list = this.byFingerprint.get(known.fingerprint);
    if (list) list.push(known);
    else this.byFingerprint.set(known.fingerprint, [known]);
    const count = this.lengths.get(known.length) ?? 0;
    this.lengths.set(known.length, count + 1);
    if (count === 0) {
      const sorted = [...this.lengths].sort(([a], [b]) => b - a);
      this.lengths.clear();
      for (const [length, n] of sorted) this.lengths.set(length, n);
      if (this.headBytes() > this.head.length) this.head = Buffer.allocUnsafe(this.headBytes());
    }
  }

  forget(known: KnownFile): void {
    this.byId.delete(known.id);
    const list = this.byFingerprint.get(known.fingerprint);
    const rest = list?.filter((k) => k !== known) ?? [];
    if (rest.length > 0) this.byFingerprint.set(known.fingerprint, rest);
    else this.byFingerprint.delete(known.fingerprint);
    const count = (this.lengths.get(known.length) ?? 1) - 1;
    if (count > 0) this.lengths.set(known.length, count);
    else this.lengths.delete(known.length);
  }

  /** Bytes read from a file's start to identify it: enough for the longest fingerprint in use. */
  headBytes(): number {
    let longest = this.fingerprintBytes;
    for (const length of this.lengths.keys()) longest = Math.max(longest, length);
    return longest;
  }
}
