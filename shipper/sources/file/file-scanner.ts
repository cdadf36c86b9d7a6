// The file source's scanning: the globs walked every scanIntervalMs (sooner when a watched directory
// changes), each match worked out as a known file, a copy of one or a new one (known-files.ts), and
// the files to read opened for the source (file-source.ts), which reads them. A file that is not open
// is remembered as it was at the last scan and looked at again only when it changes.
import { type FSWatcher, type Stats, watch } from "node:fs";
import { type FileHandle, open, readdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Logger } from "pino";
import type { FileSourceSettings } from "./config.ts";
import { derivedId, fingerprintId, fingerprintLength, hashHead, readAt } from "./fingerprint.ts";
import { GlobScanner } from "./glob-scanner.ts";
import { type KnownFile, type KnownFiles, keyOf, type OpenFile } from "./known-files.ts";
import { LineReader } from "./line-reader.ts";
import { logFamily } from "./log-family.ts";

/** A fileId not seen on disk for this long is forgotten (its file is gone for good). */
const FORGET_AFTER_MS = 24 * 60 * 60 * 1000;
/** Directories watched at most; beyond, polling alone finds changes. */
const MAX_WATCHED_DIRECTORIES = 256;
/** Scans asked for by watchers (a file created or renamed) are at least this far apart. */
const MIN_SCAN_GAP_MS = 20;
/** Rotated names that are not plain text (logrotate's `compress`). */
const COMPRESSED = /\.(gz|bz2|xz|zst|lz4|zip|Z)$/;
/** A write seen by a watcher wakes the reader at most this often: wake-ups per write would cost more than they save. */
const WRITE_WAKE_MS = 20;

/** A matched file that is not open, as it was at the last scan: looked at again only when it changes. */
export interface SeenFile {
  path: string;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  birthtimeMs: number;
  /** pending: no complete line yet; closed: idle or rotated, read up to its end; alias: a copy of a file read under its id; unreadable. */
  state: "pending" | "closed" | "alias" | "unreadable";
  id: string | null;
}

/** The counters the scanner moves (part of the source's FileSourceStats). */
export interface ScanCounters {
  filesOpened: number;
  /** Open files renamed, or no longer matched by the globs. */
  rotations: number;
  /** Copies (copytruncate's `x.log.1`) read on from the position their original had reached. */
  copiesFollowed: number;
  /** Files that could not be opened or read (they are retried at the next scan). */
  readErrors: number;
  scans: number;
}

/** What the scanner needs of the source that reads the files it opens. */
export interface ReadingSide {
  isStopping(): boolean;
  /** Wakes the read loop from its sleep. */
  wake(): void;
  /** fstat of an open file; false when it was truncated (or rewritten) and dropped. */
  refresh(f: OpenFile): Promise<boolean>;
  close(f: OpenFile, why: "superseded"): Promise<void>;
}

export class FileScanner {
  private readonly globs: GlobScanner;
  private readonly seen = new Map<string, SeenFile>();
  private readonly warned = new Set<string>();
  private scanRequested = false;
  private lastScanAt = 0;
  private firstScanDone = false;
  private readonly watchers = new Map<string, FSWatcher>();
  /** Paths of matched files that are not open, for the watchers to notice when they are written. */
  private readonly notOpenPaths = new Set<string>();
  private writeWake: NodeJS.Timeout | null = null;

  constructor(
    private readonly config: FileSourceSettings,
    private readonly known: KnownFiles,
    /** The files being read, by keyOf: the source's map, shared. */
    private readonly open: Map<string, OpenFile>,
    private readonly counters: ScanCounters,
    private readonly log: Logger,
    private readonly host: ReadingSide,
    cwd?: string,
  ) {
    this.globs = new GlobScanner(this.config.paths, this.config.exclude, (path, err) => this.warnOnce(path, err), cwd);
  }

  /** Scans now, and counts the next scan from now. */
  async scanNow(): Promise<void> {
    await this.scan();
    this.lastScanAt = Date.now();
  }

  /** Asks for a scan at the next turn (a file was dropped: its path may hold another file now). */
  requestScan(): void {
    this.scanRequested = true;
  }

  /** The matched files that are not open, as they were at the last scan. */
  notOpen(): IterableIterator<SeenFile> {
    return this.seen.values();
  }

  /** A file the source closed: looked at again when it changes. */
  closed(f: OpenFile): void {
    if (!f.deleted) this.seen.set(f.key, seenFile(f.path, f.stats, "closed", f.known.id));
  }

  /** A file dropped (truncated, failed): looked at afresh at the next scan. */
  dropped(key: string): void {
    this.seen.delete(key);
  }

  /** Stops watching directories. */
  stopWatching(): void {
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    if (this.writeWake) clearTimeout(this.writeWake);
  }

  /** When the next scan is due: every scanIntervalMs, sooner when a watcher asked for one. */
  nextScanAt(): number {
    const regular = this.lastScanAt + this.config.scanIntervalMs;
    return this.scanRequested ? Math.min(regular, this.lastScanAt + MIN_SCAN_GAP_MS) : regular;
  }

  async scanIfDue(): Promise<void> {
    if (Date.now() < this.nextScanAt()) return;
    this.scanRequested = false;
    await this.scan();
    this.lastScanAt = Date.now();
  }

  /** Watches the directories that hold matched files (and where patterns start), and only those. */
  private syncWatchers(found: Map<string, Stats>): void {
    if (!this.config.watch) return;
    const dirs = new Set(this.globs.directories());
    for (const path of found.keys()) dirs.add(dirname(path));
    for (const [dir, watcher] of this.watchers) {
      if (!dirs.has(dir)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir) || this.watchers.size >= MAX_WATCHED_DIRECTORIES) continue;
      try {
        const watcher = watch(dir, { persistent: false }, (event, name) => this.onDirectoryEvent(dir, event, name));
        watcher.on("error", () => {
          watcher.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, watcher);
      } catch {
        // Missing directory, or out of inotify watches: the scans find everything anyway.
      }
    }
  }

  private onDirectoryEvent(dir: string, event: string, name: string | null): void {
    if (this.host.isStopping()) return;
    if (event === "rename" || (name !== null && this.notOpenPaths.has(join(dir, name)))) {
      // Created, deleted or renamed, or a file not open (waiting for its first line, or idle) written
      // to: scan now, before a short-lived name is gone.
      this.scanRequested = true;
      this.host.wake();
    } else if (!this.writeWake) {
      this.writeWake = setTimeout(() => {
        this.writeWake = null;
        this.host.wake();
      }, WRITE_WAKE_MS).unref();
    }
  }

  private async scan(): Promise<void> {
    this.counters.scans++;
    const found = await this.globs.scan();
    this.syncWatchers(found);
    const now = Date.now();
    const pathOf = new Map<string, string>();
    for (const [path, st] of found) {
      const key = keyOf(st);
      if (!pathOf.has(key)) pathOf.set(key, path);
    }
    // Who had each path before this scan: a new file there is the successor of a file renamed away.
    const previousOwner = new Map<string, OpenFile>();
    for (const f of this.open.values()) previousOwner.set(f.path, f);
    for (const f of this.open.values()) {
      const path = pathOf.get(f.key);
      // Recomputed at every scan: a walk that failed for a moment must not make a live file look gone.
      f.unseen = path === undefined;
      if (path === undefined) {
        if (!f.deleted && this.countRotation(f)) {
          this.log.info({ path: f.path, fileId: f.known.id }, "file rotated away: reading it to its end");
        }
        continue;
      }
      if (path !== f.path) {
        f.renamed = true;
        this.countRotation(f);
        this.log.info({ from: f.path, to: path, fileId: f.known.id }, "file renamed: reading it to its end");
        f.path = path;
      }
      f.known.path = path;
      f.known.lastSeenMs = now;
    }
    for (const [key, path] of pathOf) {
      if (this.host.isStopping()) return;
      if (this.open.has(key)) continue;
      const st = found.get(path) as Stats;
      const before = this.seen.get(key);
      if (before && unchanged(before, st)) {
        const known = before.id ? this.known.get(before.id) : undefined;
        // A copy is looked at again when the file it copies is no longer read (truncated, closed).
        if (!(before.state === "alias" && known && !known.reader)) {
          before.path = path;
          if (known) known.lastSeenMs = now;
          continue;
        }
      }
      await this.identify(path, previousOwner.get(path) ?? null);
    }
    for (const key of this.seen.keys()) if (!pathOf.has(key)) this.seen.delete(key);
    this.notOpenPaths.clear();
    for (const s of this.seen.values()) this.notOpenPaths.add(s.path);
    for (const known of [...this.known.values()]) {
      if (!known.reader && now - known.lastSeenMs > FORGET_AFTER_MS) this.known.forget(known);
    }
    if (!this.firstScanDone) await this.findRenamedWhileStopped(found);
    this.firstScanDone = true;
  }

  /**
   * After a restart, a file with a resume point may have been renamed meanwhile to a name the globs do
   * not match (`app.log` -> `app.log.1` with `paths: [app.log]`), and its unread lines are only there.
   * Files beside the old paths of files nobody reads, under names that start with an old name (not
   * compressed ones), are each looked at once and read to their end if they carry one on.
   */
  private async findRenamedWhileStopped(found: Map<string, Stats>): Promise<void> {
    const oldNames = new Map<string, Set<string>>();
    for (const known of this.known.values()) {
      if (known.reader || known.path === undefined) continue;
      const dir = dirname(known.path);
      const names = oldNames.get(dir);
      if (names) names.add(basename(known.path));
      else oldNames.set(dir, new Set([basename(known.path)]));
    }
    for (const [dir, old] of oldNames) {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        const path = join(dir, name);
        if (found.has(path) || COMPRESSED.test(name)) continue;
        let renamed = false;
        for (const o of old) if (name.length > o.length && name.startsWith(o)) renamed = true;
        if (renamed) await this.identify(path, null, true);
      }
    }
  }

  private countRotation(f: OpenFile): boolean {
    if (f.rotationCounted) return false;
    f.rotationCounted = true;
    this.counters.rotations++;
    return true;
  }

  /**
   * Works out which file `path` is (a known one, a copy of one, or a new one) and opens it if it is to
   * be read. With `renamedOnly`, it is opened only if it carries on a known file nobody reads, from
   * another path, and has lines past its position; nothing else is recorded about it.
   */
  private async identify(path: string, predecessor: OpenFile | null, renamedOnly = false): Promise<void> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== "ENOENT") this.warnOnce(path, err);
      return;
    }
    let keep = false;
    try {
      // The file actually opened: the path may point elsewhere since the walk.
      const st = await handle.stat();
      const key = keyOf(st);
      if (this.open.has(key) || !st.isFile()) return;
      const headLength = await readAt(handle, this.known.head, this.known.head.length, 0);
      if ((await handle.stat()).size < st.size) {
        // Truncated while being looked at (copytruncate): what was read may belong to either content.
        this.scanRequested = true;
        return;
      }
      const length = fingerprintLength(this.known.head, headLength, this.config.fingerprintBytes);
      if (length === 0) {
        if (!renamedOnly) this.seen.set(key, seenFile(path, st, "pending", null));
        return;
      }
      const own = fingerprintId(hashHead(this.known.head, length), length);
      const head = Buffer.from(this.known.head.subarray(0, headLength));
      if (renamedOnly) {
        for (const known of this.known.candidates(head, headLength, length, own, path, st)) {
          if (known.reader || known.path === undefined || known.path === path || st.size <= known.offset) continue;
          if ((await this.known.continuation(handle, st.size, path, known)) !== "continues") continue;
          this.log.info(
            { path, was: known.path, fileId: known.id, offset: known.offset },
            "file renamed while the source was stopped: reading it to its end",
          );
          keep = this.attach(handle, st, path, known, head, null);
          return;
        }
        return;
      }
      for (const known of this.known.candidates(head, headLength, length, own, path, st)) {
        let reader = known.reader;
        // The file being read is looked at first: truncated since the last round, it is dropped (and
        // this one may be its copy, to carry on from its position).
        if (reader && !(await this.host.refresh(reader))) reader = null;
        if (reader && !(await this.known.sameContent(handle, st.size, reader))) {
          // Different bytes, unless the file being read was truncated during the comparison (logrotate
          // truncates right after copying): then this is its copy, and carries on from its position.
          if (await this.host.refresh(reader)) continue;
          reader = null;
        }
        if (reader) {
          if (st.size > reader.size && reader.reader.offset >= reader.size) {
            // The file being read is a frozen copy of this one, which goes on growing: follow this one.
            await this.host.close(reader, "superseded");
            this.seen.set(reader.key, seenFile(reader.path, reader.stats, "alias", known.id));
            keep = this.attach(handle, st, path, known, head, predecessor);
            return;
          }
          this.seen.set(key, seenFile(path, st, "alias", known.id));
          return;
        }
        const verdict = await this.known.continuation(handle, st.size, path, known);
        if (verdict === "continues") {
          keep = this.attach(handle, st, path, known, head, predecessor);
          return;
        }
        if (verdict === "stale-copy") {
          this.seen.set(key, seenFile(path, st, "alias", known.id));
          return;
        }
      }
      // A file never seen before (or one whose first bytes match a different file's).
      let id = own;
      for (let generation = 0; this.known.has(id); generation++) id = derivedId(own, st.dev, st.ino, generation);
      const known: KnownFile = {
        id,
        fingerprint: own,
        length,
        offset: 0,
        seq: 0,
        path,
        tail: null,
        reader: null,
        truncated: false,
        lastSeenMs: Date.now(),
      };
      let discardFirstLine = false;
      if (!this.firstScanDone && this.config.startAt === "end") {
        const start = await this.lastLineStart(handle, st.size);
        known.offset = start.offset;
        discardFirstLine = start.discard;
      }
      this.known.remember(known);
      keep = this.attach(handle, st, path, known, head, predecessor, discardFirstLine);
    } catch (e) {
      this.warnOnce(path, e as NodeJS.ErrnoException);
    } finally {
      if (!keep) await handle.close().catch(() => {});
    }
  }

  private attach(
    handle: FileHandle,
    st: Stats,
    path: string,
    known: KnownFile,
    head: Buffer,
    predecessor: OpenFile | null,
    discardFirstLine = false,
  ): boolean {
    const now = Date.now();
    const movedFrom = known.path;
    const rotated = movedFrom !== undefined && movedFrom !== path;
    if (known.truncated && rotated) {
      this.counters.copiesFollowed++;
      this.log.info(
        { path, copyOf: movedFrom, fileId: known.id, offset: known.offset },
        "copy of a truncated file: reading it on from where its original was",
      );
    }
    known.truncated = false;
    const f: OpenFile = {
      key: keyOf(st),
      dev: st.dev,
      ino: st.ino,
      handle,
      path,
      known,
      reader: new LineReader(
        { source: this.config.name, file: path, fileId: known.id },
        this.config.maxLineBytes,
        known.offset,
        known.seq,
        { discardFirstLine },
      ),
      size: st.size,
      stats: st,
      head: Buffer.from(head.subarray(0, known.length)),
      // Checked again before the first read: the file may have been truncated and rewritten while it
      // was being identified (logrotate's copytruncate), and must not be read under a stale identity.
      headCheckedAtSize: -1,
      deleted: st.nlink === 0,
      renamed: rotated,
      unseen: false,
      rotationCounted: rotated,
      lastGrowthMs: now,
      openedMs: now,
      predecessor: predecessor && predecessor.known !== known && !predecessor.closed ? predecessor : null,
      family: logFamily(path),
      closed: false,
    };
    known.reader = f;
    known.path = path;
    known.lastSeenMs = now;
    this.open.set(f.key, f);
    this.seen.delete(f.key);
    this.counters.filesOpened++;
    this.log.debug({ path, fileId: known.id, offset: known.offset }, "file opened");
    return true;
  }

  /** Where `startAt: end` begins: the start of the file's last line, complete or not. */
  private async lastLineStart(handle: FileHandle, size: number): Promise<{ offset: number; discard: boolean }> {
    const step = Math.min(64 * 1024, this.config.maxLineBytes);
    const buffer = Buffer.allocUnsafe(step);
    let end = size;
    while (end > 0 && size - end < this.config.maxLineBytes) {
      const from = Math.max(0, end - step);
      const got = await readAt(handle, buffer, end - from, from);
      const newline = buffer.lastIndexOf(0x0a, got - 1);
      // The file's last byte is a newline: the next line starts at the end.
      if (newline !== -1) return { offset: from + newline + 1, discard: false };
      end = from;
    }
    // No newline within maxLineBytes of the end: start at the end and drop the rest of that line.
    return end === 0 ? { offset: 0, discard: false } : { offset: size, discard: true };
  }

  private warnOnce(path: string, err: NodeJS.ErrnoException): void {
    this.counters.readErrors++;
    const key = `${path}\0${err.code}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    const hint =
      err.code === "EACCES" || err.code === "EPERM"
        ? "give the user running weir ship read access to it (and search access to its directories)"
        : "it is tried again at every scan";
    this.log.warn({ path, code: err.code, err }, `cannot read ${path}: ${hint}`);
  }
}

function seenFile(path: string, st: Stats, state: SeenFile["state"], id: string | null): SeenFile {
  return {
    path,
    dev: st.dev,
    ino: st.ino,
    size: st.size,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    birthtimeMs: st.birthtimeMs,
    state,
    id,
  };
}

function unchanged(s: SeenFile, st: Stats): boolean {
  return s.size === st.size && s.mtimeMs === st.mtimeMs && s.ctimeMs === st.ctimeMs && s.birthtimeMs === st.birthtimeMs;
}
