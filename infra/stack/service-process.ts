// A server of the local stack running detached in its own process group, tracked by a pid file.
// Stopping signals the whole group, because Elasticsearch's launcher and server are two JVMs.
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { bootId, groupMembers, type ProcessInfo, processInfo, rssBytes } from "./proc.ts";

export interface PidRecord {
  service: string;
  pid: number;
  pgid: number;
  startTicks: number;
  bootId: string;
  startedAt: string;
  version: string;
  ports: Record<string, number>;
  user: string;
}

export interface LaunchSpec {
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Where the process's own stdout/stderr go (servers log to their own files too). */
  outputFile: string;
  uid?: number | undefined;
  gid?: number | undefined;
}

export class ServiceProcess {
  readonly pidFile: string;

  constructor(
    readonly name: string,
    runDir: string,
  ) {
    this.pidFile = join(runDir, `${name}.json`);
  }

  record(): PidRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.pidFile, "utf8")) as PidRecord;
    } catch {
      return undefined;
    }
  }

  /** Live processes of this server; empty when it is not running or the pid file is stale. */
  members(record = this.record()): ProcessInfo[] {
    if (!record || record.bootId !== bootId()) return [];
    return groupMembers(record.pgid, record.startTicks);
  }

  running(): boolean {
    return this.members().length > 0;
  }

  rss(): number {
    return this.members().reduce((sum, p) => sum + rssBytes(p.pid), 0);
  }

  start(spec: LaunchSpec, meta: Pick<PidRecord, "version" | "ports" | "user">): PidRecord {
    mkdirSync(dirname(spec.outputFile), { recursive: true });
    const out = openSync(spec.outputFile, "a");
    let pid: number | undefined;
    try {
      const child = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: spec.env,
        detached: true, // own process group: `down` signals the group, and the parent may exit
        stdio: ["ignore", out, out],
        uid: spec.uid,
        gid: spec.gid,
      });
      child.on("error", () => {}); // reported below through the missing pid or an early exit
      child.unref();
      pid = child.pid;
    } finally {
      closeSync(out);
    }
    if (pid === undefined) throw new Error(`${this.name}: could not start ${spec.command}`);
    const info = processInfo(pid);
    const record: PidRecord = {
      service: this.name,
      pid,
      pgid: pid,
      startTicks: info?.startTicks ?? 0,
      bootId: bootId(),
      startedAt: new Date().toISOString(),
      ...meta,
    };
    mkdirSync(dirname(this.pidFile), { recursive: true });
    const tmp = `${this.pidFile}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
    renameSync(tmp, this.pidFile);
    return record;
  }

  /** SIGTERM to the group, SIGKILL to what is left after `graceMs`. Resolves once no member is alive. */
  async stop(graceMs: number): Promise<"not-running" | "stopped" | "killed"> {
    const record = this.record();
    if (this.members(record).length === 0 || !record) {
      rmSync(this.pidFile, { force: true });
      return "not-running";
    }
    signalGroup(record.pgid, "SIGTERM");
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline) {
      if (this.members(record).length === 0) {
        rmSync(this.pidFile, { force: true });
        return "stopped";
      }
      await sleep(200);
    }
    signalGroup(record.pgid, "SIGKILL");
    while (this.members(record).length > 0) await sleep(100);
    rmSync(this.pidFile, { force: true });
    return "killed";
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
  }
}
