// The channel directory's lock file: one shipper per channel, because two writers appending to the
// same segments would interleave their records. The file names its owner by pid and process start
// time, so a lock left by a process that died (SIGKILL, power cut) is recognised and taken over,
// even when the pid has since been reused by another process. Not covered: two shippers starting
// at the same instant over the same stale lock (one may remove the lock the other just took);
// Node has no flock(), and that race needs two misconfigured shippers racing within microseconds.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { ChannelError } from "./errors.ts";

export const LOCK_FILE = "LOCK";

interface LockOwner {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22), or null off Linux. */
  startTicks: number | null;
  host: string;
  /** When the lock was taken (ms), for humans reading the file. */
  since: number;
}

/** A process's start time from /proc, or null when it does not exist (or /proc is not there). */
function processStartTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses; the fields after it are plain.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to another user.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readOwner(path: string): LockOwner | null {
  try {
    const o = JSON.parse(readFileSync(path, "utf8")) as Partial<LockOwner>;
    if (typeof o.pid !== "number") return null;
    return {
      pid: o.pid,
      startTicks: typeof o.startTicks === "number" ? o.startTicks : null,
      host: typeof o.host === "string" ? o.host : "",
      since: typeof o.since === "number" ? o.since : 0,
    };
  } catch {
    return null;
  }
}

/** Whether the process that wrote `owner` still runs (on another host, it has to be assumed so). */
function ownerAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true;
  if (!processAlive(owner.pid)) return false;
  if (owner.startTicks === null) return true;
  const ticks = processStartTicks(owner.pid);
  return ticks === null || ticks === owner.startTicks;
}

/** The lock of one channel directory, held until release(). */
export class DirectoryLock {
  private constructor(readonly path: string) {}

  /** Takes the lock of `dir`, taking over a stale one; throws a ChannelError when a live process holds it. */
  static acquire(dir: string): DirectoryLock {
    const path = `${dir}/${LOCK_FILE}`;
    const me: LockOwner = {
      pid: process.pid,
      startTicks: processStartTicks(process.pid),
      host: hostname(),
      since: Date.now(),
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      let fd: number;
      try {
        fd = openSync(path, "wx", 0o644);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        const owner = readOwner(path);
        if (owner && ownerAlive(owner)) {
          const who = owner.pid === process.pid && owner.host === me.host ? "this process" : `pid ${owner.pid}`;
          throw new ChannelError(
            `the disk channel ${dir} is in use by ${who} on ${owner.host || "an unknown host"} (since ${new Date(owner.since).toISOString()})`,
            "locked",
            owner.pid === process.pid
              ? "open each channel directory once per process and share the DiskChannel"
              : `stop that shipper first, or give this one another channel directory; if pid ${owner.pid} is not a shipper, delete ${path}`,
          );
        }
        // Stale (or unreadable, e.g. a crash between creating and writing it): remove and retry. If
        // another process takes it meanwhile, the next round finds it alive.
        try {
          unlinkSync(path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        }
        continue;
      }
      try {
        writeSync(fd, JSON.stringify(me));
      } finally {
        closeSync(fd);
      }
      return new DirectoryLock(path);
    }
    throw new ChannelError(
      `could not take the lock ${path}: other processes keep taking it`,
      "locked",
      "make sure only one shipper uses this channel directory",
    );
  }

  release(): void {
    try {
      unlinkSync(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }
}
