// File identity: what makes "the same file" across renames, restarts and inode reuse.
//
// The rule (README.md, "File identity"): a file's fingerprint is the sha256 of its first
// `fingerprintBytes` bytes; while it is shorter than that, of all its complete lines (up to its last
// newline); a file with no newline in it yet and shorter than `fingerprintBytes` is not read at all
// until it has one. The fileId is `<first 32 hex of the hash>-<bytes covered>`, so any fileId can be
// checked against any file later, whatever `fingerprintBytes` is then. The bytes a fingerprint
// covers never change while the file is only appended to, so a file keeps its fileId as it grows.
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";

const NEWLINE = 0x0a;
const ID_PATTERN = /^([0-9a-f]{32})-(\d+)(?:-[0-9.]+)?$/;

/**
 * How many bytes of `head` (the first `headLength` bytes of a file) the fingerprint covers; 0 when
 * the file is not ready to be identified (shorter than `fingerprintBytes` with no complete line).
 */
export function fingerprintLength(head: Buffer, headLength: number, fingerprintBytes: number): number {
  if (headLength >= fingerprintBytes) return fingerprintBytes;
  if (headLength === 0) return 0;
  return head.lastIndexOf(NEWLINE, headLength - 1) + 1;
}

export function hashHead(head: Buffer, length: number): string {
  return createHash("sha256").update(head.subarray(0, length)).digest("hex").slice(0, 32);
}

/** `<hash>-<length>`: the fileId of a file first seen with this fingerprint. */
export function fingerprintId(hash: string, length: number): string {
  return `${hash}-${length}`;
}

/**
 * The fileId of a file whose fingerprint is already taken by a different file (same first bytes,
 * different content further on): the inode tells them apart. `generation` > 0 when even that is
 * taken (an inode reused by a third file with the same first bytes).
 */
export function derivedId(fingerprint: string, dev: number, ino: number, generation: number): string {
  return generation === 0 ? `${fingerprint}-${dev}.${ino}` : `${fingerprint}-${dev}.${ino}.${generation}`;
}

/** The fingerprint part of a fileId (`<hash>-<length>`) and the bytes it covers; null for a foreign id. */
export function parseFileId(id: string): { fingerprint: string; length: number } | null {
  const m = ID_PATTERN.exec(id);
  if (!m?.[1] || !m[2]) return null;
  const length = Number(m[2]);
  if (length <= 0) return null;
  return { fingerprint: `${m[1]}-${m[2]}`, length };
}

/** Reads up to `length` bytes from `position` into `into`; fewer only at the end of the file. */
export async function readAt(handle: FileHandle, into: Buffer, length: number, position: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await handle.read(into, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}
