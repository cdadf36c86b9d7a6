// File checkpoints: for each file identity, the offset and next seq after the last line Kafka has
// acknowledged. Written atomically (temp file, fsync, rename, fsync of the folder), so a crash at any
// moment leaves either the old checkpoint or the new one, never a torn file. Lines that are already
// in the disk channel but not yet acknowledged are known from the channel itself at start-up, which
// is why the resume point of a file is the later of the two (see ShipAgent).
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import type { LinePosition, ResumePoint } from "./types.ts";

interface Entry {
  /** The source that read the file (absent in checkpoints written before it was recorded). */
  source?: string;
  offset: number;
  seq: number;
  path: string;
  /** When the entry last moved (ms): entries of files gone for longer than the retention are pruned. */
  at: number;
}

export class CheckpointStore {
  private readonly files = new Map<string, Entry>();
  private dirty = false;
  /** Written since the last fsynced save. */
  private unsynced = false;

  private constructor(readonly path: string) {}

  /**
   * Loads the checkpoint file. A missing file is a first start. An unreadable one (only possible if
   * something else wrote it) is kept aside as `.corrupt-<ms>` and reported through `onCorrupt`: the
   * agent then falls back to what the channel knows, re-shipping rather than losing.
   */
  static load(path: string, onCorrupt: (message: string) => void): CheckpointStore {
    const store = new CheckpointStore(path);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return store;
      throw e;
    }
    try {
      const doc = JSON.parse(text) as { version: number; files: Record<string, Entry> };
      if (doc.version !== 1 || typeof doc.files !== "object")
        throw new Error(`unknown checkpoint version ${doc.version}`);
      for (const [fileId, e] of Object.entries(doc.files)) {
        if (!Number.isSafeInteger(e.offset) || !Number.isSafeInteger(e.seq)) throw new Error(`bad entry for ${fileId}`);
        store.files.set(fileId, e);
      }
    } catch (e) {
      const aside = `${path}.corrupt-${Date.now()}`;
      renameSync(path, aside);
      onCorrupt(`checkpoint file ${path} is unreadable (${(e as Error).message}); moved to ${aside}`);
    }
    return store;
  }

  /** Kafka has the line at `p`: its file resumes after it. Never moves a file backwards. */
  advance(p: LinePosition): void {
    const cur = this.files.get(p.fileId);
    if (cur && cur.offset >= p.end) return;
    this.files.set(p.fileId, { source: p.source, offset: p.end, seq: p.seq + 1, path: p.file, at: Date.now() });
    this.dirty = true;
  }

  /** The offset Kafka has every line of this file before; -1 when none. */
  ackedOffset(fileId: string): number {
    return this.files.get(fileId)?.offset ?? -1;
  }

  get(fileId: string): ResumePoint | undefined {
    const e = this.files.get(fileId);
    return e ? point(fileId, e) : undefined;
  }

  resumePoints(): ResumePoint[] {
    return [...this.files].map(([fileId, e]) => point(fileId, e));
  }

  /** Forgets files whose checkpoint has not moved for `maxAgeMs` and that no source has open. */
  prune(maxAgeMs: number, open: Set<string>, now = Date.now()): number {
    let n = 0;
    for (const [fileId, e] of this.files) {
      if (!open.has(fileId) && now - e.at > maxAgeMs) {
        this.files.delete(fileId);
        n++;
      }
    }
    if (n > 0) this.dirty = true;
    return n;
  }

  /**
   * Writes the checkpoints if they moved: temp file, rename. With `sync`, the file and the folder
   * are fsynced too, so the checkpoint also survives a power cut; without, it survives the shipper's
   * own crash (the page cache outlives the process), which is what a save after every batch is for.
   */
  save(sync: boolean): boolean {
    if (!this.dirty && !(sync && this.unsynced)) return false;
    const doc = { version: 1, files: Object.fromEntries(this.files) };
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, JSON.stringify(doc));
      if (sync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    if (sync) {
      const dir = openSync(dirname(this.path), "r");
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    }
    this.unsynced = !sync;
    this.dirty = false;
    return true;
  }

  get size(): number {
    return this.files.size;
  }
}

function point(fileId: string, e: Entry): ResumePoint {
  return {
    ...(e.source !== undefined ? { source: e.source } : {}),
    fileId,
    offset: e.offset,
    seq: e.seq,
    path: e.path,
  };
}
