// The file source's configuration, as it appears under a `sources:` entry of the shipper's YAML.
// Durations are milliseconds (the field names say so); sizes are bytes.
import { z } from "zod";

const KiB = 1024;
const MiB = 1024 * KiB;

const Glob = z.string().min(1, "a path or glob such as /var/log/app/*.log");

export const FileSourceConfigSchema = z.strictObject({
  type: z.literal("file").default("file"),
  /** Names the source in RawLine.source, FileState and logs. */
  name: z.string().min(1),
  /** Paths or globs (`*`, `?`, `[...]`, `{a,b}`, `**`); relative ones are taken from the working directory. */
  paths: z.array(Glob).min(1, "at least one path or glob"),
  /** Globs of paths to leave alone; a glob without `/` is matched against the file name (`*.gz`). */
  exclude: z.array(Glob).default([]),
  /**
   * The identity of a file is a hash of its first `fingerprintBytes` bytes, or of all its complete
   * lines while it is shorter than that (see README.md, "File identity").
   */
  fingerprintBytes: z
    .number()
    .int()
    .min(16)
    .max(64 * KiB)
    .default(256),
  /** A longer line is cut to this many bytes (RawLine.size keeps its real size); the rest is skipped, not held. */
  maxLineBytes: z
    .number()
    .int()
    .min(64)
    .max(64 * MiB)
    .default(MiB),
  /** Where a file found at start with no resume point begins. Files that appear later always begin at 0. */
  startAt: z.enum(["beginning", "end"]).default("beginning"),
  /** How often the globs are expanded again to find new, renamed and deleted files. */
  scanIntervalMs: z.number().int().min(10).default(1000),
  /**
   * Watch (inotify) the directories of matched files: a file created or renamed there starts a scan at
   * once, a write wakes the reader. Polling stays the source of truth; this only shortens the waits.
   */
  watch: z.boolean().default(true),
  /** How often open files are checked for new data when there was nothing to read. */
  pollIntervalMs: z.number().int().min(5).max(10_000).default(200),
  /** An open file that has not grown for this long is closed; it is opened again when it grows. */
  closeIdleMs: z
    .number()
    .int()
    .min(0)
    .default(5 * 60_000),
  /**
   * A file renamed away or deleted is kept open, once read to its end, until it has not grown for
   * this long: an application writes to its old file until it reopens its log.
   */
  rotateWaitMs: z.number().int().min(0).default(5000),
  /**
   * The last line of a file renamed away or deleted that never got its newline is shipped once the
   * file has not grown for this long. The last line of a live file waits for its newline.
   */
  partialLineFlushMs: z.number().int().min(0).default(5000),
  /** Bytes read from one file at a time: a busy file gets one read per round, like every other file. */
  readChunkBytes: z
    .number()
    .int()
    .min(4 * KiB)
    .max(16 * MiB)
    .default(256 * KiB),
  /** A batch goes to the sink when it holds this many lines... */
  maxBatchLines: z.number().int().min(1).default(1000),
  /** ...or this many bytes of lines, or when a round of reads is over. */
  maxBatchBytes: z.number().int().min(1).default(MiB),
});

/** What a user writes (defaults optional). */
export type FileSourceConfig = z.input<typeof FileSourceConfigSchema>;
/** With every default filled in. */
export type FileSourceSettings = z.output<typeof FileSourceConfigSchema>;
