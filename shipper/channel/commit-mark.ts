// The disk channel's committed mark: the seq up to which every record is delivered, in `COMMITTED`
// (16 bytes: "WCM1", seq u64 LE, CRC-32C of the first 12), replaced atomically: a temp file, fsync,
// rename, fsync of the directory (why a whole small file and not an ack log: disk-channel.ts).
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { crc32c } from "@node-rs/crc32";
import type { Logger } from "pino";
import { closeFile, openFile, renameFile, syncDirectory, syncFile, writeFully } from "./segment.ts";

const MARK_FILE = "COMMITTED";
const MARK_TMP = "COMMITTED.tmp";
const MARK_MAGIC = 0x314d4357; // "WCM1"
const TWO_32 = 2 ** 32;

/**
 * The committed seq in `dir`: 0 without a mark, and 0 (with a warning) for a damaged one. A temp
 * file left by a crash while the mark was replaced is removed.
 */
export function readCommitMark(dir: string, logger: Pick<Logger, "warn"> | undefined): number {
  const seq = readMark(dir, logger);
  rmSync(join(dir, MARK_TMP), { force: true });
  return seq;
}

function readMark(dir: string, logger: Pick<Logger, "warn"> | undefined): number {
  let b: Buffer;
  try {
    b = readFileSync(join(dir, MARK_FILE));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw e;
  }
  if (b.length === 16 && b.readUInt32LE(0) === MARK_MAGIC && crc32c(b.subarray(0, 12)) === b.readUInt32LE(12))
    return b.readUInt32LE(4) + b.readUInt32LE(8) * TWO_32;
  // Only a damaged disk gets here (the mark is replaced by rename): re-deliver everything rather than lose.
  logger?.warn(
    { dir },
    "disk channel: the committed mark is damaged; every record in the channel will be delivered again",
  );
  return 0;
}

/** Replaces the mark in `dir` with `seq`, durably: once this resolves, a crash brings back `seq`. */
export async function writeCommitMark(dir: string, seq: number): Promise<void> {
  const b = Buffer.allocUnsafe(16);
  b.writeUInt32LE(MARK_MAGIC, 0);
  b.writeUInt32LE(seq % TWO_32, 4);
  b.writeUInt32LE(Math.floor(seq / TWO_32), 8);
  b.writeUInt32LE(crc32c(b.subarray(0, 12)), 12);
  const tmp = join(dir, MARK_TMP);
  const fd = await openFile(tmp, "w");
  try {
    await writeFully(fd, [b], 0);
    await syncFile(fd);
  } finally {
    await closeFile(fd);
  }
  await renameFile(tmp, join(dir, MARK_FILE));
  await syncDirectory(dir);
}
