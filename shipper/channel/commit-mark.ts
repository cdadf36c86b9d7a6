// The disk channel's committed mark: the seq up to which every record is delivered, in `COMMITTED`.
// A mark is 16 bytes ("WCM1", seq u64 LE, CRC-32C of the first 12). The file holds two of them, at
// offsets 0 and 512 (1,024 bytes, written whole once), and a new mark overwrites the older slot in
// place and is fdatasync()ed: no new file, so no new block, and a mark can be written on a full disk
// (a file replaced through a temp file needed a block the channel's own segments could be holding).
// A write torn by a power cut spoils one slot at most, and the other still holds the mark before it.
// Opening reads the slot with the higher seq; a 16-byte file of an older weir is read as one slot and
// replaced by the two-slot file.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { crc32c } from "@node-rs/crc32";
import type { Logger } from "pino";
import { closeFile, openFile, renameFile, syncDirectory, syncFile, writeFully } from "./segment.ts";

const MARK_FILE = "COMMITTED";
const MARK_TMP = "COMMITTED.tmp";
const MARK_MAGIC = 0x314d4357; // "WCM1"
const MARK_BYTES = 16;
const SLOT_BYTES = 512;
const FILE_BYTES = 2 * SLOT_BYTES;
const TWO_32 = 2 ** 32;

function encodeMark(seq: number): Buffer {
  const b = Buffer.alloc(MARK_BYTES);
  b.writeUInt32LE(MARK_MAGIC, 0);
  b.writeUInt32LE(seq % TWO_32, 4);
  b.writeUInt32LE(Math.floor(seq / TWO_32), 8);
  b.writeUInt32LE(crc32c(b.subarray(0, 12)), 12);
  return b;
}

/** The seq of the mark at `off` in `b`, or -1 when it is not a whole, intact mark. */
function decodeMark(b: Buffer, off: number): number {
  if (b.length < off + MARK_BYTES || b.readUInt32LE(off) !== MARK_MAGIC) return -1;
  if (crc32c(b.subarray(off, off + 12)) !== b.readUInt32LE(off + 12)) return -1;
  return b.readUInt32LE(off + 4) + b.readUInt32LE(off + 8) * TWO_32;
}

interface FoundMark {
  seq: number;
  /** The slot holding `seq` in a two-slot file, or -1 when the file is missing, old or damaged (it is replaced). */
  slot: number;
}

function findMark(dir: string, logger: Pick<Logger, "warn"> | undefined): FoundMark {
  let b: Buffer;
  try {
    b = readFileSync(join(dir, MARK_FILE));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { seq: 0, slot: -1 };
    throw e;
  }
  if (b.length === MARK_BYTES) {
    const seq = decodeMark(b, 0);
    if (seq >= 0) return { seq, slot: -1 };
  } else if (b.length === FILE_BYTES) {
    const a = decodeMark(b, 0);
    const c = decodeMark(b, SLOT_BYTES);
    if (a >= 0 || c >= 0) return a >= c ? { seq: a, slot: 0 } : { seq: c, slot: 1 };
  }
  // Only a damaged disk gets here (a torn write spoils one slot, not both): re-deliver everything rather than lose.
  logger?.warn(
    { dir },
    "disk channel: the committed mark is damaged; every record in the channel will be delivered again",
  );
  return { seq: 0, slot: -1 };
}

/**
 * The committed seq in `dir`: 0 without a mark, and 0 (with a warning) for a damaged one. A temp
 * file left by a crash while the mark file was made is removed.
 */
export function readCommitMark(dir: string, logger: Pick<Logger, "warn"> | undefined): number {
  const { seq } = findMark(dir, logger);
  rmSync(join(dir, MARK_TMP), { force: true });
  return seq;
}

/** The mark file of an open channel: written in place, one slot after the other. */
export class CommitMark {
  private constructor(
    private readonly dir: string,
    private fd: number,
    /** The slot the next mark goes to. */
    private next: number,
  ) {}

  /**
   * Reads the mark in `dir` and opens its file for writing; a missing or old file is replaced by the
   * two-slot one. On a full disk that replacement waits for the first write() (which then needs a
   * block once, as every mark did before).
   */
  static async open(dir: string, logger: Pick<Logger, "warn"> | undefined): Promise<{ mark: CommitMark; seq: number }> {
    const found = findMark(dir, logger);
    rmSync(join(dir, MARK_TMP), { force: true });
    const mark = new CommitMark(dir, -1, 0);
    if (found.slot >= 0) {
      mark.fd = await openFile(join(dir, MARK_FILE), "r+");
      mark.next = 1 - found.slot;
    } else {
      await mark.create(found.seq).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "ENOSPC" && e.code !== "EDQUOT") throw e;
      });
    }
    return { mark, seq: found.seq };
  }

  /** Writes `seq` durably: once this resolves, a crash brings back `seq` (or a later mark). */
  async write(seq: number): Promise<void> {
    if (this.fd < 0) return this.create(seq);
    await writeFully(this.fd, [encodeMark(seq)], this.next * SLOT_BYTES);
    await syncFile(this.fd, true);
    this.next = 1 - this.next;
  }

  /** Makes the two-slot file with `seq` in slot 0: a temp file, fsync, rename, fsync of the directory. */
  private async create(seq: number): Promise<void> {
    const file = Buffer.alloc(FILE_BYTES);
    encodeMark(seq).copy(file, 0);
    const tmp = join(this.dir, MARK_TMP);
    const fd = await openFile(tmp, "w");
    try {
      await writeFully(fd, [file], 0);
      await syncFile(fd);
      await renameFile(tmp, join(this.dir, MARK_FILE));
      await syncDirectory(this.dir);
    } catch (e) {
      await closeFile(fd).catch(() => {});
      rmSync(tmp, { force: true });
      throw e;
    }
    this.fd = fd;
    this.next = 1;
  }

  close(): Promise<void> {
    const fd = this.fd;
    this.fd = -1;
    return fd >= 0 ? closeFile(fd) : Promise.resolve();
  }
}
