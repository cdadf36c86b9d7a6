// Redis from Debian's redis-server package (7.0 on bookworm), the store of hot counters (aggregated
// writes, docs/hotkeys.md), started with a config of its own under the stack folder: loopback only,
// its port a setting, an append-only file fsynced every second (counters are state, not a cache), no
// eviction (a full Redis refuses writes, and the sink retries, rather than dropping counters).
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import type { StackConfig } from "./config.ts";
import { ensureDebianPackages, makeOwnedDirs, StackError, which } from "./prerequisites.ts";
import type { Health, ServiceContext, StackService } from "./service.ts";
import type { LaunchSpec } from "./service-process.ts";
import { REDIS_DEBIAN_PACKAGE } from "./versions.ts";

export class RedisService implements StackService {
  readonly name = "redis" as const;
  readonly readySeconds = 30;
  private readonly home: string;

  constructor(private readonly cfg: StackConfig) {
    this.home = cfg.paths.service("redis");
  }

  ports() {
    return { redis: this.cfg.redis.port };
  }

  endpoint() {
    return `redis://127.0.0.1:${this.cfg.redis.port}`;
  }

  serverLog() {
    return join(this.home, "logs", "redis.log");
  }

  async install(ctx: ServiceContext): Promise<string> {
    if (!which("redis-server")) {
      await ensureDebianPackages([REDIS_DEBIAN_PACKAGE], "the local Redis, the store of hot counters", ctx.log);
    }
    if (!which("redis-server")) {
      throw new StackError(
        "redis-server is not on PATH after installing it",
        `install Debian's ${REDIS_DEBIAN_PACKAGE} (apt-get install ${REDIS_DEBIAN_PACKAGE})`,
      );
    }
    const r = spawnSync(which("redis-server") as string, ["--version"], { encoding: "utf8" });
    return /v=(\S+)/.exec(r.stdout)?.[1] ?? "unknown";
  }

  async launch(ctx: ServiceContext): Promise<LaunchSpec> {
    const data = join(this.home, "data");
    const logs = join(this.home, "logs");
    makeOwnedDirs(ctx.runAs, this.home, data, logs);
    const configFile = join(this.home, "redis.conf");
    writeFileSync(configFile, serverConfig(this.cfg.redis.port, data, this.serverLog(), this.cfg.redis.maxMemory));
    makeOwnedDirs(ctx.runAs, this.home);
    return {
      command: which("redis-server") as string,
      args: [configFile],
      cwd: this.home,
      env: { PATH: process.env.PATH, LANG: "C.UTF-8", TZ: "UTC" },
      outputFile: join(logs, "stdout.log"),
      uid: ctx.runAs.uid,
      gid: ctx.runAs.gid,
    };
  }

  async probe(): Promise<Health> {
    try {
      const info = await command(this.cfg.redis.port, ["INFO", "server"]);
      const version = /redis_version:(\S+)/.exec(info)?.[1];
      const uptime = /uptime_in_seconds:(\d+)/.exec(info)?.[1];
      if (!version) return { ok: false, detail: info.slice(0, 120) };
      return { ok: true, detail: `up ${uptime ?? "?"}s`, version };
    } catch (e) {
      return { ok: false, detail: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
    }
  }
}

function serverConfig(port: number, data: string, log: string, maxMemory: string): string {
  return `# written by weir stack up; edit infra/stack/redis.ts instead
bind 127.0.0.1
port ${port}
protected-mode yes
daemonize no
supervised no
# The config file in the process title: ps and weir's own checks tell this stack's Redis from another's.
proc-title-template "{title} {listen-addr} {config-file}"
dir ${data}
logfile ${log}
# Counters are state: every write in the append-only file, fsynced each second; no RDB snapshots.
appendonly yes
appendfsync everysec
save ""
maxmemory ${maxMemory}
maxmemory-policy noeviction
`;
}

/** One command over a fresh connection (RESP): the reply as text, or an error. */
function command(port: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let reply = "";
    const done = (e: Error | null) => {
      socket.destroy();
      clearTimeout(timer);
      if (e) reject(e);
      else resolve(reply);
    };
    const timer = setTimeout(() => done(new Error("no answer within 3 s")), 3000);
    socket.on("error", (e) => done(e));
    socket.on("connect", () => {
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`);
    });
    socket.on("data", (d) => {
      reply += d.toString("utf8");
      if (reply.startsWith("-")) done(new Error(reply.trim()));
      const m = /^\$(\d+)\r\n/.exec(reply);
      if (m && Buffer.byteLength(reply) >= m[0].length + Number(m[1]) + 2) done(null);
      else if (reply.startsWith("+") && reply.endsWith("\r\n")) done(null);
    });
  });
}
