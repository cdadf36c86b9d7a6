// What the benchmarks share to run and measure processes from outside: start a child with its log in
// a folder, read its CPU time (with its children's) and peak RSS from /proc, find a free port.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (100 on Linux). */
export const CLK_TCK = 100;

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** The nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1))] as number;
}

export interface Proc {
  child: ChildProcess;
  name: string;
  log: string;
  stdout: string[];
  exited: Promise<number | null>;
  exitCode: number | null | undefined;
  startedAt: number;
}

/** Starts processes in the project folder, each logging to `<logs>/<name>.log`. */
export function processes(logs: string) {
  function start(name: string, cmd: string, args: string[], env: Record<string, string> = {}): Proc {
    const log = join(logs, `${name}.log`);
    const out = createWriteStream(log);
    const startedAt = performance.now();
    const child = spawn(cmd, args, {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const p: Proc = {
      child,
      name,
      log,
      stdout: [],
      exited: null as unknown as Promise<number | null>,
      exitCode: undefined,
      startedAt,
    };
    let buf = "";
    child.stdout?.on("data", (d: Buffer) => {
      out.write(d);
      buf += d.toString("utf8");
      const lines = buf.split("\n");
      buf = lines.pop() as string;
      p.stdout.push(...lines);
    });
    child.stderr?.on("data", (d: Buffer) => out.write(d));
    p.exited = new Promise((resolve) => {
      child.on("exit", (code) => {
        if (buf) p.stdout.push(buf);
        p.exitCode = code;
        out.end();
        resolve(code);
      });
    });
    return p;
  }

  /** Runs a command that prints a JSON line last, and returns that line. */
  async function runJson(
    name: string,
    cmd: string,
    args: string[],
    timeoutMs: number,
  ): Promise<Record<string, number>> {
    const p = start(name, cmd, args);
    const timer = setTimeout(() => p.child.kill("SIGKILL"), timeoutMs);
    const code = await p.exited;
    clearTimeout(timer);
    const last = p.stdout.filter((l) => l.startsWith("{")).at(-1);
    if (code !== 0 || !last) throw new Error(`${name} exited with ${code}; log ${p.log}:\n${tail(p)}`);
    return JSON.parse(last);
  }

  return { start, runJson };
}

export function tail(p: Proc, n = 30): string {
  try {
    return readFileSync(p.log, "utf8").trim().split("\n").slice(-n).join("\n");
  } catch {
    return "(no log)";
  }
}

/** The fields of /proc/<pid>/stat after the command name (field 3 onwards). */
export function statFields(pid: number | string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** CPU time (user + system) of a process and its descendants, in ms; 0 once it is gone. */
export function cpuMsOf(pid: number): number {
  let total = 0;
  try {
    const f = statFields(pid);
    total += ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const kids = readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim();
      for (const c of kids ? kids.split(" ") : []) total += cpuMsOf(Number(c));
    }
  } catch {
    // gone
  }
  return total;
}

export function peakRssKiB(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** This process and its ancestors: what a check for other busy processes must leave out. */
export function ancestors(): Set<number> {
  const out = new Set<number>();
  for (let pid = process.pid; pid > 1 && !out.has(pid); ) {
    out.add(pid);
    pid = Number(statFields(pid)[1]);
  }
  return out;
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}
