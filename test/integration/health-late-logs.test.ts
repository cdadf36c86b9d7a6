// Health metrics that stay exact when logs arrive late or out of order, on the real stack: service
// log files -> weir ship -> Kafka -> weir run health -> ClickHouse. Three ways logs come late:
//   1. a rotated backlog shipped at once (a shipper started after its host wrote 60 s of logs), the
//      services sharing partitions;
//   2. one host of a service that starts shipping 2 minutes after the others;
//   3. one shipper stopped for minutes while its services keep writing (and rotating), then started.
// In each, every request is counted exactly once in the 1 s, 1 min and 1 h rows of every level (an
// oracle computed from the files), and p99 is within the sketch's 1%.
//
// Event time is a few hours in the past, so that the hour the requests fall in can be closed (one
// request per service an hour later) without anything being ahead of the worker's clock. The files
// are written faster than real time: what makes logs late here is event time, and the wall-clock
// pauses (a stopped shipper) are longer than the idle timeouts (10 s), which is all they decide.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { ClickHouseClient } from "@clickhouse/client";
import kafkajs, { type Admin } from "kafkajs";
import { stringify } from "yaml";
import { SERVICES } from "../../infra/simulator/platform.ts";
import { SloConfig } from "../../pipelines/health/slo.ts";
import {
  type AccessLog,
  closeWindows,
  compareRows,
  countMessages,
  createHealthDatabase,
  HOUR,
  LEVELS,
  messageIds,
  oracle,
  readAccessLines,
  startHealthWorker,
  totalsByLevel,
  WINDOWS,
  waitFor,
} from "../support/health.ts";
import { type ShipProcess, startShip } from "../support/ship.ts";
import { clickhouseClient, kafkaClient, requireServices, uniqueName } from "../support/stack.ts";

const slo = SloConfig.load();
const SERVICE_NAMES = SERVICES.map((s) => s.name);
let ch: ClickHouseClient;
let admin: Admin;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  await requireServices(["kafka", "clickhouse"]);
  ch = clickhouseClient();
  admin = kafkaClient("weir-test-late").admin();
  await admin.connect();
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await admin.disconnect();
  await ch.close();
});

interface Run {
  id: string;
  dir: string;
  topic: string;
  database: string;
  appId: string;
  /** The hour the requests fall in: a few hours ago. */
  hour: number;
  children: Array<{ kill(signal?: NodeJS.Signals): boolean; exitCode: number | null; signalCode: string | null }>;
  worker: ReturnType<typeof startHealthWorker>;
  /** When setup began, and how long the worker took to start (ms). */
  began: number;
  startup: number;
}

/** A private input topic (`partitions`, keyed by service, like logs.access), database, app id and worker. */
async function setup(name: string, partitions = 6): Promise<Run> {
  const began = Date.now();
  const id = uniqueName(name);
  const dir = mkdtempSync(join(tmpdir(), `weir-late-${name}-`));
  const topic = `test.${id}.access`;
  const database = id;
  const appId = id.replaceAll("_", "-");
  // A loaded broker can answer UNKNOWN_TOPIC_OR_PARTITION right after creating them: ask again.
  for (let tries = 0; ; tries++) {
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          { topic, numPartitions: partitions },
          { topic: `${topic}.dlq`, numPartitions: 1 },
        ],
      });
      break;
    } catch (e) {
      if (!(e as { retriable?: boolean }).retriable || tries >= 50) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  await createHealthDatabase(ch, database);
  const hour = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
  const worker = startHealthWorker({ name: `${name}-worker`, appId, database, input: topic, dataDir: dir });
  const run: Run = { id, dir, topic, database, appId, hour, children: [worker.child], worker, began, startup: 0 };
  cleanups.push(async () => {
    for (const c of run.children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    const internal = (await admin.listTopics()).filter((t) => t.startsWith(`${appId}-`));
    await admin.deleteTopics({ topics: [topic, `${topic}.dlq`, ...internal] }).catch(() => {});
    await admin.deleteGroups([appId]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  // Generous: on a machine running other suites, node and tsx alone can take a minute.
  await waitFor("the worker to start", async () => /started/.test(worker.log()), 180_000, worker.log);
  run.startup = Date.now() - began;
  return run;
}

/** `weir simulate` into files: `seconds` of traffic from `start`, a flat rate. */
function simulate(out: string, start: number, seconds: number, rate: number, rotate = "4MiB"): void {
  const r = spawnSync(
    process.execPath,
    [
      "cli/weir.mjs",
      "simulate",
      "--out",
      out,
      "--start",
      new Date(start).toISOString(),
      "--duration",
      `${seconds}s`,
      "--rate",
      String(rate),
      "--no-diurnal",
      "--fraud",
      "0",
      "--rotate-size",
      rotate,
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
}

/** A service's access log files, oldest first (x.log.2, x.log.1, x.log). */
function accessFiles(dir: string): string[] {
  const names = readdirSync(dir).filter((f) => /^access\.log(\.\d+)?$/.test(f));
  const rank = (f: string) => Number(/\.(\d+)$/.exec(f)?.[1] ?? 0);
  return names.sort((a, b) => rank(b) - rank(a)).map((f) => join(dir, f));
}

function shipConfig(run: Run, name: string, paths: string[]): string {
  const file = join(run.dir, `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      dataDir: join(run.dir, `${name}-data`),
      topics: {
        [run.topic]: { schema: "AccessLog", key: "service" },
        [`${run.topic}.dlq`]: { schema: "DeadLetter", key: "id" },
      },
      dlq: { topic: `${run.topic}.dlq` },
      channel: { maxBytes: "64MiB", segmentBytes: "8MiB" },
      metrics: { port: 0 },
      sources: [{ name: "access", paths, format: "json", topic: run.topic }],
    }),
  );
  return file;
}

function ship(run: Run, name: string, paths: string[]): ShipProcess {
  const p = startShip(["--config", shipConfig(run, name, paths)]);
  run.children.push(p.child);
  return p;
}

/** SIGTERM once it is shipping (before that, under load, node is still loading and SIGTERM kills it outright). */
async function stopShip(p: ShipProcess): Promise<void> {
  await waitFor("weir ship to start", async () => /weir ship: shipping/.test(p.output()), 60_000, p.output);
  p.child.kill("SIGTERM");
  const { code } = await p.exited;
  assert.equal(code, 0, `weir ship stopped badly:\n${p.output().slice(-3000)}`);
}

/**
 * Waits until the topic holds every request, closes the hour with one request per service an hour
 * later, waits for the hour's row at app level, then compares every row with the oracle.
 */
async function verify(run: Run, requests: AccessLog[]): Promise<void> {
  const t0 = Date.now();
  // Generous: a shipper on a loaded machine.
  const n = await countMessages(run.topic, requests.length, 240_000);
  const inKafka = Date.now() - t0;
  if (n !== requests.length) {
    const ids = await messageIds(run.topic, 20_000);
    const missing = requests
      .filter((r) => !ids.has(r.id))
      .map((r) => `${r.id} ${r.host} ${new Date(r.ts).toISOString()}`);
    const twice = [...ids].filter(([, k]) => k > 1).map(([id]) => id);
    assert.fail(
      `${n} of ${requests.length} lines in Kafka; missing ${missing.slice(0, 10)}; twice ${twice.slice(0, 10)}`,
    );
  }
  await closeWindows(run.topic, run.hour + HOUR + 2 * 60_000, SERVICE_NAMES);
  const expected = oracle(requests, slo);
  const from = run.hour;
  const to = run.hour + HOUR;
  let counted: number | undefined;
  await waitFor(
    `the hour's final row at app level to count every request (${requests.length})`,
    async () => {
      counted = (await totalsByLevel(ch, run.database, from, to)).get(`${HOUR} APP`);
      return counted === requests.length;
    },
    300_000,
    () => `${run.worker.log().slice(-3000)}\nthe hour's final app row counts ${counted} requests of ${requests.length}`,
  );
  const counting = Date.now() - t0;
  // Corrections go out at the worker's next checkpoint: a moment more for the last of them.
  let result = await compareRows(ch, run.database, expected, from, to);
  for (let i = 0; i < 20 && result.problems.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    result = await compareRows(ch, run.database, expected, from, to);
  }
  assert.deepEqual(result.problems, [], "every row equals the oracle");
  const totals = await totalsByLevel(ch, run.database, from, to);
  for (const ms of WINDOWS)
    for (const level of LEVELS) assert.equal(totals.get(`${ms} ${level}`), requests.length, `${level} ${ms} ms rows`);
  const metrics = await workerMetrics(run);
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  console.log(
    `# ${requests.length} requests, ${result.rows} rows equal the oracle (worst p99 error ${(result.worstP99 * 100).toFixed(3)}%); ${metrics}; all in Kafka after ${s(inKafka)}, the hour's app row after ${s(counting)}, rows equal after ${s(Date.now() - t0)} (setup ${s(run.startup)}, shipping and playing ${s(t0 - run.began - run.startup)})`,
  );
}

/** What the worker says it did with late records, from its /metrics. */
async function workerMetrics(run: Run): Promise<string> {
  const port = /"metricsPort":(\d+)/.exec(run.worker.log())?.[1];
  if (!port) return "no metrics port";
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const sum = (name: string) => {
    let s = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))) s += Number(m[1]);
    return s;
  };
  return `sources ${sum("weir_stream_sources")}, late ${sum("weir_stream_late_records_total")}, corrected ${sum("weir_stream_corrected_records_total")}, corrections ${sum("weir_stream_corrections_total")}`;
}

/**
 * Services write their logs: each file's lines appended as event time passes, `speed` times faster
 * than real time, rotated (rename + create) when a file passes `rotateBytes`.
 */
class ServiceLogs {
  private readonly files: Array<{ path: string; lines: AccessLog[]; next: number; raw: string[] }> = [];

  constructor(
    byFile: Map<string, { lines: AccessLog[]; raw: string[] }>,
    private readonly rotateBytes: number,
  ) {
    for (const [path, f] of byFile) {
      mkdirSync(join(path, ".."), { recursive: true });
      writeFileSync(path, "");
      this.files.push({ path, lines: f.lines, raw: f.raw, next: 0 });
    }
  }

  /** Appends every line before `t`. */
  writeUntil(t: number): void {
    for (const f of this.files) {
      let text = "";
      while (f.next < f.lines.length && (f.lines[f.next] as AccessLog).ts < t) text += `${f.raw[f.next++]}\n`;
      if (text.length === 0) continue;
      appendFileSync(f.path, text);
      if (statSync(f.path).size >= this.rotateBytes) rotate(f.path);
    }
  }

  /** Plays from `from` to the last line (requests in flight at the run's end finish after it), `speed` times real time. */
  async play(from: number, speed: number, at: Array<[number, () => Promise<void> | void]> = []) {
    const step = 500;
    const hooks = [...at].sort((a, b) => a[0] - b[0]);
    let to = from;
    for (const f of this.files) to = Math.max(to, (f.lines.at(-1) as AccessLog).ts);
    for (let t = from; t <= to + step; t += step) {
      this.writeUntil(t);
      while (hooks.length > 0 && (hooks[0] as [number, () => void])[0] <= t)
        await (hooks.shift() as [number, () => void])[1]();
      await new Promise((r) => setTimeout(r, step / speed));
    }
  }
}

/** logrotate's rename + create: x.log.N -> x.log.N+1, ..., x.log -> x.log.1, a new empty x.log. */
function rotate(path: string): void {
  let n = 1;
  while (existsSync(`${path}.${n}`)) n++;
  for (; n > 1; n--) renameSync(`${path}.${n - 1}`, `${path}.${n}`);
  renameSync(path, `${path}.1`);
  writeFileSync(path, "");
}

/** The simulator's access logs split by host: `<out>/<service>/<host>/access.log`, each in time order. */
function byHost(simDir: string, out: string): Map<string, { lines: AccessLog[]; raw: string[] }> {
  const files = new Map<string, { lines: AccessLog[]; raw: string[] }>();
  for (const service of SERVICE_NAMES) {
    for (const file of accessFiles(join(simDir, service))) {
      const raws = readAccessLinesRaw(file);
      for (const raw of raws) {
        const line = JSON.parse(raw) as AccessLog;
        const path = join(out, service, line.host, "access.log");
        let f = files.get(path);
        if (!f) {
          f = { lines: [], raw: [] };
          files.set(path, f);
        }
        f.lines.push({ ...line, errorCode: line.errorCode ?? null });
        f.raw.push(raw);
      }
    }
  }
  return files;
}

/** Services by partition, as the shipper's producer (kafkajs' default partitioner, murmur2 of the key) places them. */
function sharedPartitions(services: string[], partitions: number): Map<number, string[]> {
  const partitioner = kafkajs.Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }));
  const out = new Map<number, string[]>();
  for (const service of services) {
    const p = partitioner({ topic: "access", partitionMetadata, message: { key: service, value: null } });
    out.set(p, [...(out.get(p) ?? []), service]);
  }
  return out;
}

function readAccessLinesRaw(file: string): string[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.length > 0);
}

test("a rotated backlog shipped at once, services sharing partitions: every request counted once at every level and length", {
  timeout: 600_000,
}, async () => {
  const run = await setup("backlog", 4);
  const sim = join(run.dir, "sim");
  // The backlog: 60 s of traffic, room-svc rotated two or three times, some services once, others never.
  simulate(sim, run.hour + 10 * 60_000, 60, 2000);
  const files = SERVICE_NAMES.flatMap((s) => accessFiles(join(sim, s)));
  const rotations = new Map(SERVICE_NAMES.map((s) => [s, accessFiles(join(sim, s)).length - 1]));
  // What made the im-svc 0%: a log that never rotated on a partition with one rotated twice or more
  // (on 4 partitions: gift-svc, never rotated, with room-svc and user-svc).
  const shared = [...sharedPartitions(SERVICE_NAMES, 4).values()].filter((s) => s.length > 1);
  const layout = shared.map((s) => s.map((x) => `${x} ${rotations.get(x)}`).join(" + ")).join("; ");
  assert.ok(
    shared.some((s) => s.some((x) => rotations.get(x) === 0) && s.some((x) => (rotations.get(x) ?? 0) >= 2)),
    `services sharing partitions, with their rotations: ${layout}`,
  );
  console.log(`# shared partitions (service rotations): ${layout}`);
  const requests = readAccessLines(files);
  const shipper = ship(run, "ship", [join(sim, "*/access.log*")]);
  await verify(run, requests);
  await stopShip(shipper);
});

test("one host of a service starts shipping 2 minutes after the others: its requests are counted once at every level and length", {
  timeout: 600_000,
}, async () => {
  const run = await setup("latehost");
  const sim = join(run.dir, "sim");
  const start = run.hour + 10 * 60_000;
  simulate(sim, start, 240, 400);
  const live = join(run.dir, "live");
  const files = byHost(sim, live);
  const requests = [...files.values()].flatMap((f) => f.lines);
  const roomHosts = [...files.keys()].filter((p) => p.includes("/room-svc/")).sort();
  const late = roomHosts[1] as string;
  const logs = new ServiceLogs(files, 64 * 1024 * 1024);
  const others = ship(
    run,
    "others",
    [...files.keys()].filter((p) => p !== late).map((p) => `${p}*`),
  );
  let lateShipper: ShipProcess | null = null;
  // 4 minutes of event time in 30 s; the late host's shipper starts when the others are 2 minutes in.
  await logs.play(start, 8, [
    [
      start + 120_000,
      () => {
        lateShipper = ship(run, "late", [`${late}*`]);
      },
    ],
  ]);
  await verify(run, requests);
  await stopShip(others);
  if (lateShipper) await stopShip(lateShipper);
});

test("a shipper stopped for minutes while its services keep writing and rotating: every request counted once at every level and length", {
  timeout: 600_000,
}, async () => {
  const run = await setup("stopped");
  const sim = join(run.dir, "sim");
  const start = run.hour + 10 * 60_000;
  simulate(sim, start, 300, 400);
  const live = join(run.dir, "live");
  const files = byHost(sim, live);
  const requests = [...files.values()].flatMap((f) => f.lines);
  // Shipper B has the first host of every service, shipper A the others.
  const hosts = [...files.keys()].sort();
  const first = new Set(SERVICE_NAMES.map((s) => hosts.find((p) => p.includes(`/${s}/`)) as string));
  const logs = new ServiceLogs(files, 256 * 1024);
  const a = ship(
    run,
    "a",
    hosts.filter((p) => !first.has(p)).map((p) => `${p}*`),
  );
  const bPaths = [...first].map((p) => `${p}*`);
  let b = ship(run, "b", bPaths);
  // 5 minutes of event time in 30 s: B stops a minute in and starts again 3 minutes later (18 s of wall clock, past every idle timeout).
  await logs.play(start, 10, [
    [start + 60_000, () => stopShip(b)],
    [
      start + 240_000,
      () => {
        b = ship(run, "b", bPaths);
      },
    ],
  ]);
  const rotated = [...first].filter((p) => existsSync(`${p}.1`));
  assert.ok(rotated.length >= 3, `B's files rotated while it was stopped: ${rotated.length}`);
  await verify(run, requests);
  await stopShip(a);
  await stopShip(b);
});
