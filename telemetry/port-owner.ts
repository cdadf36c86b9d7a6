// Which process listens on a TCP port, from Linux's /proc: the socket's inode in /proc/net/tcp{,6},
// then the process holding a file descriptor on it. A taken /metrics port names its holder with it,
// and so does the local stack (infra/stack/proc.ts re-exports it).
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

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
  for (const pid of pids()) {
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

function pids(): number[] {
  try {
    return readdirSync("/proc")
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
  } catch {
    return [];
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}
