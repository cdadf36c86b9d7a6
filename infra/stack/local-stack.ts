// The local stack: Kafka, Elasticsearch, ClickHouse and Redis on loopback, without Docker, with every bit of
// state under one folder. `up` is idempotent: a server that is already running and healthy is left alone.
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ClickHouseService } from "./clickhouse.ts";
import type { StackConfig } from "./config.ts";
import { ElasticsearchService } from "./elasticsearch.ts";
import { kafkaServices } from "./kafka.ts";
import { checkReachable, ensureRunAs, findJava, StackError, tail } from "./prerequisites.ts";
import { portIsFree, portOwner } from "./proc.ts";
import { RedisService } from "./redis.ts";
import { ensureSecrets, ensureTls } from "./security.ts";
import { type Health, type ServiceContext, type ServiceName, type StackService, serviceKind } from "./service.ts";
import { ServiceProcess } from "./service-process.ts";

export interface ServiceStatus {
  service: ServiceName;
  running: boolean;
  healthy: boolean;
  detail: string;
  version: string;
  ports: Record<string, number>;
  endpoint: string;
  pid?: number;
  /** Resident memory of all the server's processes, in bytes. */
  rss: number;
  startedAt?: string;
  log: string;
}

const STOP_GRACE_MS = { kafka: 30_000, elasticsearch: 60_000, clickhouse: 30_000, redis: 30_000 } as const;

export class LocalStack {
  readonly services: StackService[];

  constructor(
    readonly cfg: StackConfig,
    private readonly out: (line: string) => void = (line) => console.log(line),
  ) {
    const wanted = new Set(cfg.services);
    this.services = [
      ...(wanted.has("kafka") ? kafkaServices(cfg) : []),
      ...(wanted.has("elasticsearch") ? [new ElasticsearchService(cfg)] : []),
      ...(wanted.has("clickhouse") ? [new ClickHouseService(cfg)] : []),
      ...(wanted.has("redis") ? [new RedisService(cfg)] : []),
    ];
  }

  service(name: string): StackService {
    const svc = this.services.find((s) => s.name === name);
    if (!svc) throw new StackError(`no service ${name}`, `one of: ${this.services.map((s) => s.name).join(", ")}`);
    return svc;
  }

  process(name: ServiceName): ServiceProcess {
    return new ServiceProcess(name, this.cfg.paths.run);
  }

  /** Starts what is not running and waits until every server answers. */
  async up(): Promise<ServiceStatus[]> {
    const began = Date.now();
    const java = findJava();
    const runAs = await ensureRunAs(this.cfg.user, this.out);
    checkReachable(runAs, this.cfg.paths.root, this.cfg.paths.downloads);
    const ctx: ServiceContext = { cfg: this.cfg, runAs, java, log: this.out };

    const toStart: StackService[] = [];
    for (const svc of this.services) {
      const proc = this.process(svc.name);
      const record = proc.record();
      if (record && proc.running()) {
        if (JSON.stringify(record.ports) !== JSON.stringify(svc.ports())) {
          throw new StackError(
            `${svc.name} is running with ports ${JSON.stringify(record.ports)} but is configured for ${JSON.stringify(svc.ports())}`,
            "stop the stack first: weir stack down",
          );
        }
        this.out(`${svc.name}: already running (pid ${record.pid})`);
        continue;
      }
      for (const [role, port] of Object.entries(svc.ports())) {
        if (!(await portIsFree(port))) {
          throw new StackError(
            `port ${port} (${svc.name} ${role}) is taken by ${portOwner(port) ?? "another process"}`,
            "stop that process, or give this stack other ports (WEIR_*_PORT variables or weir-stack.yaml, see docs/configuration.md)",
          );
        }
      }
      toStart.push(svc);
    }

    if (this.cfg.security) {
      ensureSecrets(this.cfg);
      await ensureTls(this.cfg, runAs, this.out);
    }
    const versions = await Promise.all(toStart.map((svc) => svc.install(ctx)));
    await Promise.all(
      toStart.map(async (svc, i) => {
        const spec = await svc.launch(ctx);
        const record = this.process(svc.name).start(spec, {
          version: versions[i] ?? "?",
          ports: svc.ports(),
          user: runAs.name,
        });
        this.out(`${svc.name}: started (pid ${record.pid}), waiting until it answers`);
      }),
    );
    await Promise.all(this.services.map((svc) => this.waitReady(svc)));
    for (const svc of this.services) await svc.reconcile?.(ctx);
    this.out(`stack ready in ${((Date.now() - began) / 1000).toFixed(1)} s`);
    return this.status();
  }

  private async waitReady(svc: StackService): Promise<Health> {
    const proc = this.process(svc.name);
    const deadline = Date.now() + svc.readySeconds * 1000;
    let last: Health = { ok: false, detail: "not probed" };
    while (Date.now() < deadline) {
      last = await svc.probe();
      if (last.ok) return last;
      if (!proc.running()) {
        throw new StackError(
          `${svc.name} exited while starting:\n${this.logTail(svc, 30)}`,
          `full log: weir stack logs ${svc.name}`,
        );
      }
      await sleep(500);
    }
    throw new StackError(
      `${svc.name} did not answer within ${svc.readySeconds} s (${last.detail}):\n${this.logTail(svc, 30)}`,
      `full log: weir stack logs ${svc.name}`,
    );
  }

  /** The last lines of the server's log, or of its stdout when it died before opening its log. */
  logTail(svc: StackService, lines: number): string {
    const files = [svc.serverLog(), join(this.cfg.paths.service(svc.name), "logs", "stdout.log")].filter(existsSync);
    return (
      files.map((f) => `--- ${relative(process.cwd(), f)}\n${tail(readFileSync(f, "utf8"), lines)}`).join("\n") ||
      "(no log written)"
    );
  }

  /** Servers recorded under run/ and still running that the settings do not name (a cluster's other brokers after kafka.brokers went back to 1). */
  private strays(): ServiceName[] {
    if (!existsSync(this.cfg.paths.run)) return [];
    const configured = new Set<string>(this.services.map((s) => s.name));
    const out: ServiceName[] = [];
    for (const f of readdirSync(this.cfg.paths.run)) {
      const name = /^(kafka(?:-\d+)?|elasticsearch|clickhouse)\.json$/.exec(f)?.[1] as ServiceName | undefined;
      if (name && !configured.has(name) && this.process(name).running()) out.push(name);
    }
    return out;
  }

  /** Stops every server this stack runs: those configured, and the strays it started before. */
  async down(): Promise<void> {
    await Promise.all(
      [...this.services.map((s) => s.name), ...this.strays()].map(async (name) => {
        const pid = this.process(name).record()?.pid;
        const result = await this.process(name).stop(STOP_GRACE_MS[serviceKind(name)]);
        const what = { "not-running": "not running", stopped: "stopped", killed: "killed after the grace period" }[
          result
        ];
        this.out(`${name}: ${what}${pid && result !== "not-running" ? ` (was pid ${pid})` : ""}`);
      }),
    );
  }

  async status(): Promise<ServiceStatus[]> {
    const strays = this.strays().map((name): ServiceStatus => {
      const proc = this.process(name);
      const record = proc.record();
      return {
        service: name,
        running: true,
        healthy: false,
        detail: "running, but this stack's settings do not name it (kafka.brokers, services): weir stack down stops it",
        version: record?.version ?? "-",
        ports: record?.ports ?? {},
        endpoint: "-",
        ...(record ? { pid: record.pid, startedAt: record.startedAt } : {}),
        rss: proc.rss(),
        log: "-",
      };
    });
    const rows = await Promise.all(
      this.services.map(async (svc): Promise<ServiceStatus> => {
        const proc = this.process(svc.name);
        const record = proc.record();
        const running = proc.running();
        const health = running ? await svc.probe() : { ok: false, detail: "stopped" };
        return {
          service: svc.name,
          running,
          healthy: health.ok,
          detail: health.detail,
          version: health.version ?? record?.version ?? "-",
          ports: running && record ? record.ports : svc.ports(),
          endpoint: svc.endpoint(),
          ...(running && record ? { pid: record.pid, startedAt: record.startedAt } : {}),
          rss: running ? proc.rss() : 0,
          log: svc.serverLog(),
        };
      }),
    );
    return [...rows, ...strays];
  }

  /** Stops the stack and deletes its data, configs and logs; installed distributions stay. */
  async reset(): Promise<void> {
    await this.down();
    const { root, downloads } = this.cfg.paths;
    if (!existsSync(root)) return;
    for (const entry of readdirSync(root)) {
      const path = join(root, entry);
      if (path === downloads) continue;
      rmSync(path, { recursive: true, force: true });
    }
    this.out(`reset: removed the stack's data under ${root}; kept ${downloads}`);
  }
}
