// What the local stack needs to know about processes and ports, read from Linux's /proc.
// A pid alone is not an identity (pids are reused, and a reboot makes every pid file stale), so a
// process is identified by boot id + pid + start time, and a server by its process group.
import { readdirSync, readFileSync } from "node:fs";
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

// Which process holds a port lives in telemetry/ (the /metrics server names it too); the stack uses it here.
export { portOwner } from "../../telemetry/port-owner.ts";
