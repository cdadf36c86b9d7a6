// What the local stack needs to know about processes and ports, read from Linux's /proc.
// A pid alone is not an identity (pids are reused, and a reboot makes every pid file stale), so a
// process is identified by boot id + pid + start time, and a server by its process group.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { createServer } from "node:net";

export interface ProcessInfo {
  pid: number;
  ppid: number;
  pgid: number;
  /** Start time in clock ticks since boot (field 22 of /proc/<pid>/stat). */
  startTicks: number;
  state: string;
}

export function bootId(): string {
  return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
}

export function processInfo(pid: number): ProcessInfo | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: the fields after it start after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const state = rest[0] ?? "?";
  if (state === "Z" || state === "X") return undefined; // a zombie has exited; only its parent can reap it
  return { pid, state, ppid: Number(rest[1]), pgid: Number(rest[2]), startTicks: Number(rest[19]) };
}

export function allPids(): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** Live members of process group `pgid` that started no earlier than `sinceTicks`. */
export function groupMembers(pgid: number, sinceTicks: number): ProcessInfo[] {
  const members: ProcessInfo[] = [];
  for (const pid of allPids()) {
    const info = processInfo(pid);
    if (info && info.pgid === pgid && info.startTicks >= sinceTicks) members.push(info);
  }
  return members;
}

/** Resident memory of a process in bytes (VmRSS), 0 if it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

/** True when nothing listens on 127.0.0.1:`port` (a wildcard listener counts as taken). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Best effort: which process listens on `port`, as "pid 123 (java -cp ...)". */
export function portOwner(port: number): string | undefined {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      if (!local || cols[3] !== "0A") continue; // 0A = LISTEN
      if (Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === port && cols[9]) inodes.add(cols[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const pid of allPids()) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m?.[1] && inodes.has(m[1])) return `pid ${pid} (${commandLine(pid).slice(0, 100)})`;
    }
  }
  return "another user's process";
}
