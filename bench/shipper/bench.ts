// The shipper benchmark: weir ship vs Apache Flume 1.11.0 (TAILDIR -> file channel -> Kafka sink)
// and rsyslog with omkafka, on the same backlog of access-log JSON lines, file -> Kafka with
// acks=all, an idempotent producer and lz4, on this machine.
//
//   node --import tsx bench/shipper/bench.ts [--lines 1000000] [--runs 3] [--peers weir,weir-interval,flume,rsyslog]
//        [--flume-heap 512m] [--flume-batch 1000] [--timeout-minutes 15] [--stall-seconds 120]
//        [--max-wait-minutes 20] [--quiet-cores 0.25] [--skip-verify] [--keep-logs] [--seed 1]
//        [--out bench/results/shipper.md]
//
// The input file is written once, before any shipper starts (a backlog: what is measured is the
// shipper's throughput, not the writer's). Each run of each peer gets a fresh 6-partition topic and
// a fresh state folder; peers run interleaved (weir, flume, rsyslog, weir, ...). The topic's end
// offsets are polled every 100 ms until they sum to the number of lines (weir: its own count of
// events Kafka acknowledged, since its transactions' commit markers take offsets too); the span runs from
// the first poll that shows a message to the poll that shows them all, and only the messages that
// arrived in between are credited. CPU is user + system time of the peer's process tree from /proc
// over the same span; peak RSS is the sum of VmHWM over the tree. After the peer is stopped (SIGTERM)
// the whole topic is read back and compared with the input: the raw lines (Flume, rsyslog) or the
// AccessLog fields of every decoded record (weir), as an order-independent digest.
//
// `--peers` also takes `rsyslog-disk` (rsyslog with a pure disk action queue, every message
// fdatasynced: ~1,300 lines/s here, so a 1M-line run takes ~13 min) and `rsyslog-disk-nosync` (the
// same queue left to the page cache) instead of the disk-assisted queue.
import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { cpus, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import kafkajs from "kafkajs";
import lz4 from "lz4-napi";
import { clientEndpoints, PROJECT_ROOT } from "../../infra/stack/config.ts";
import { codecFor } from "../../schemas/codec.ts";
import { benchFlags } from "../support/flags.ts";
import {
  ancestors,
  CLK_TCK,
  cpuMsOf,
  freePort,
  median,
  type Proc,
  percentile,
  processes,
  statFields,
  tail,
} from "../support/process.ts";
import { type AccessFile, writeAccessFile } from "./access-file.ts";
import { Digest, fieldsKey } from "./digest.ts";
import { flumePeer, type RunSetup, rsyslogPeer, type ShipperPeer, weirPeer } from "./peers.ts";

const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = kafkajs;

// kafkajs reads gzip only; the peers write Kafka's lz4 (the LZ4 frame format).
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  compress: (encoder: { buffer: Buffer }) => lz4.compressFrame(encoder.buffer),
  decompress: (buffer: Buffer) => lz4.decompressFrame(buffer),
});

// ---- flags ----------------------------------------------------------------------------------------

const { argv, flag, num } = benchFlags();
const LINES = num("lines", 1_000_000);
const RUNS = num("runs", 3);
const PEER_NAMES = (flag("peers") ?? "weir,weir-interval,flume,rsyslog").split(",").map((s) => s.trim());
const FLUME_HEAP = flag("flume-heap") ?? "512m";
const FLUME_BATCH = num("flume-batch", 1000);
const TIMEOUT_MS = num("timeout-minutes", 15) * 60_000;
/** A run fails when the topic has not grown for this long. */
const STALL_MS = num("stall-seconds", 120) * 1000;
const SKIP_VERIFY = flag("skip-verify") === "true";
const MAX_WAIT_MS = num("max-wait-minutes", 20) * 60_000;
/** The rest of the machine counts as quiet below this much CPU (cores). */
const QUIET_CORES = num("quiet-cores", 0.25);
const KEEP_LOGS = flag("keep-logs") === "true";
/** Where the report goes; side experiments name another file so as not to replace the committed table. */
const OUT = flag("out") ?? join(PROJECT_ROOT, "bench/results/shipper.md");
const PARTITIONS = 6;
const SEED = num("seed", 1);
const COMMAND = `node --import tsx bench/shipper/bench.ts ${argv.join(" ")}`.trim();
const BROKERS = clientEndpoints().kafkaBrokers;

const MiB = 1024 * 1024;
const fmt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en") : "–");
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "–");
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–");
const k = (x: number) => `${(x / 1000).toFixed(0)}k`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** `p`'s value, or "timeout" after `ms`; the timer is cleared either way, so it keeps no process alive. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<"timeout">((r) => {
    timer = setTimeout(() => r("timeout"), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}
const stamp = () => new Date().toISOString().slice(11, 19);
const say = (s: string) => console.log(`[${stamp()}] ${s}`);
const uid = () => `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;

const PEERS: ShipperPeer[] = PEER_NAMES.map((name) => {
  if (name === "weir") return weirPeer("always");
  if (name === "weir-interval") return weirPeer("interval");
  if (name === "flume") return flumePeer(FLUME_HEAP, FLUME_BATCH);
  if (name === "rsyslog") return rsyslogPeer("disk-assisted");
  if (name === "rsyslog-disk") return rsyslogPeer("disk");
  if (name === "rsyslog-disk-nosync") return rsyslogPeer("disk-nosync");
  throw new Error(
    `unknown peer ${name}: --peers takes weir, weir-interval, flume, rsyslog, rsyslog-disk, rsyslog-disk-nosync`,
  );
});

const began = new Date();
const WORK = mkdtempSync(join(tmpdir(), "weir-bench-shipper-"));
const LOGS = join(WORK, "logs");
mkdirSync(LOGS);
const { start } = processes(LOGS);

// ---- cleanup: peers, topics, folders, also on Ctrl-C ------------------------------------------------

let current: Proc | null = null;
const topicsToDelete = new Set<string>();
const groupsToDelete = new Set<string>();
const kafka = new Kafka({ clientId: "weir-bench-shipper", brokers: BROKERS, logLevel: logLevel.NOTHING });
const admin = kafka.admin();

async function cleanupKafka(): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const topics = [...topicsToDelete].filter((t) => existing.has(t));
  if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 60_000 }).catch((e) => say(`cleanup: ${e}`));
  topicsToDelete.clear();
  if (groupsToDelete.size > 0) {
    await admin.deleteGroups([...groupsToDelete]).catch(() => {});
    groupsToDelete.clear();
  }
}

function killCurrent(): void {
  if (current && current.exitCode === undefined) current.child.kill("SIGKILL");
}
process.on("exit", killCurrent);
let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    say(`${sig}: stopping the peer, deleting the topics and ${WORK}`);
    killCurrent();
    void Promise.race([cleanupKafka(), sleep(20_000)]).finally(() => {
      rmSync(WORK, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

// ---- machine ----------------------------------------------------------------------------------------------

/** The file system type of the folder the shippers keep their state in (fsync costs depend on it). */
function fsOf(path: string): string {
  let best = { mount: "", line: "" };
  for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
    const [dev, mount, type] = line.split(" ");
    if (mount && path.startsWith(mount) && mount.length > best.mount.length)
      best = { mount, line: `${type} on ${dev}` };
  }
  return best.line || "?";
}

/** Median and p99 time of a 4 KiB append + fdatasync in `dir`: what one durable commit costs at least. */
function fsyncProbe(dir: string, n = 200): { p50: number; p99: number } {
  const file = join(dir, "fsync-probe");
  const fd = openSync(file, "w");
  const buf = Buffer.alloc(4096, 120);
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      writeSync(fd, buf);
      fdatasyncSync(fd);
      times.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99) };
}

/** Whether `pid` is this process, one of its ancestors or one of its descendants (a peer). */
const ANCESTORS = ancestors();
function isMine(pid: number): boolean {
  if (ANCESTORS.has(pid)) return true;
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    if (p === process.pid) return true;
    try {
      p = Number(statFields(p)[1]);
    } catch {
      return false;
    }
  }
  return false;
}

/** CPU time (user + system, ms) of every process on the machine that is not this benchmark or its peer. */
function othersCpuMs(): Map<number, number> {
  const out = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || isMine(Number(d))) continue;
    try {
      const f = statFields(d);
      out.set(Number(d), ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK);
    } catch {
      // gone
    }
  }
  return out;
}

/** Processes that used more than a tenth of a core over `ms`, busiest first, and the total of all others (cores). */
async function busyOthers(ms = 2000): Promise<{ cores: number; top: string[] }> {
  const a = othersCpuMs();
  await sleep(ms);
  const b = othersCpuMs();
  let total = 0;
  const busy: [number, number][] = [];
  for (const [pid, cpu] of b) {
    const d = cpu - (a.get(pid) ?? cpu);
    total += d;
    if (d / ms > 0.1) busy.push([pid, d / ms]);
  }
  busy.sort((x, y) => y[1] - x[1]);
  const top = busy.map(([pid, c]) => {
    let cmd = "?";
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim().slice(0, 110);
    } catch {
      // gone
    }
    return `${cmd} (${c.toFixed(2)} cores)`;
  });
  return { cores: total / ms, top };
}

let waitedMs = 0;
const seenOthers = new Set<string>();
/**
 * Waits (up to --max-wait-minutes in all) until the rest of the machine uses less than --quiet-cores
 * (the broker and the stores idle; no other test or benchmark running); notes what kept it busy.
 */
async function waitQuiet(what: string): Promise<void> {
  let b = await busyOthers();
  if (b.cores < QUIET_CORES) return;
  say(`waiting before ${what}: the rest of the machine uses ${b.cores.toFixed(2)} cores:\n  ${b.top.join("\n  ")}`);
  const t0 = Date.now();
  while (b.cores >= QUIET_CORES && waitedMs + (Date.now() - t0) < MAX_WAIT_MS) {
    await sleep(3000);
    b = await busyOthers();
  }
  waitedMs += Date.now() - t0;
  if (b.cores >= QUIET_CORES) {
    for (const o of b.top) seenOthers.add(o.replace(/ \([\d.]+ cores\)$/, ""));
    say(
      `still busy (${b.cores.toFixed(2)} cores) after waiting ${((Date.now() - t0) / 1000).toFixed(0)} s; running anyway`,
    );
  }
}

/**
 * The process listening on the first bootstrap server's port (the broker the peers talk to), whose CPU
 * is reported apart from the rest; null when it is not on this machine or cannot be found. Found by
 * the listening socket, not by name: another stack (a CI clone) may run a second broker.
 */
function brokerPid(): number | null {
  const port = Number(BROKERS[0]?.split(":").at(-1));
  if (!Number.isInteger(port)) return null;
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    try {
      for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        // local_address is ADDR:PORT in hex; st 0A is LISTEN; field 9 is the socket's inode.
        if (f[3] === "0A" && Number.parseInt(f[1]?.split(":")[1] ?? "", 16) === port && f[9]) inodes.add(f[9]);
      }
    } catch {
      // no IPv6
    }
  }
  if (inodes.size === 0) return null;
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      for (const fd of readdirSync(`/proc/${d}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${d}/fd/${fd}`));
        if (m && inodes.has(m[1] as string)) return Number(d);
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return null;
}

/** Busy CPU time of the whole machine so far (ms, all cores). */
function machineBusyMs(): number {
  const f = (readFileSync("/proc/stat", "utf8").split("\n")[0] as string).trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return ((total - (f[3] as number) - (f[4] as number)) * 1000) / CLK_TCK;
}

// ---- process tree -------------------------------------------------------------------------------------------

function descendants(pid: number): number[] {
  const out = [pid];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const kids = readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim();
      for (const c of kids ? kids.split(" ") : []) out.push(...descendants(Number(c)));
    }
  } catch {
    // gone
  }
  return out;
}

/** Sum of VmHWM (peak resident set) over a process and its descendants, KiB. */
function treePeakRssKiB(pid: number): number {
  let total = 0;
  for (const p of descendants(pid)) {
    try {
      total += Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return total;
}

// ---- Kafka --------------------------------------------------------------------------------------------------

/** Events weir ship reports Kafka has acknowledged for `topic` (its /metrics), or -1 when it does not answer yet. */
async function weirSent(port: number, topic: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    const m = new RegExp(`^weir_ship_events_sent_total\\{topic="${topic.replace(/\./g, "\\.")}"\\} (\\d+)`, "m").exec(
      text,
    );
    return m ? Number(m[1]) : 0;
  } catch {
    return -1;
  }
}

async function topicCount(topic: string): Promise<number> {
  const offs = await admin.fetchTopicOffsets(topic);
  return offs.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
}

/**
 * Reads the whole topic (read_committed) and digests it the way the peer's output is compared: until
 * `expected` messages are in, then on until nothing more comes for 2 s (duplicates beyond it), or
 * until nothing comes for 30 s.
 */
async function digestTopic(
  topic: string,
  expected: number,
  output: ShipperPeer["output"],
): Promise<{ digest: Digest; valueBytes: number }> {
  const d = new Digest();
  let valueBytes = 0;
  const codec = codecFor("AccessLog");
  let undecodable = 0;
  const groupId = `bench-shipper-verify-${uid()}`;
  groupsToDelete.add(groupId);
  const consumer = kafka.consumer({ groupId, maxBytesPerPartition: 4 * MiB, maxWaitTimeInMs: 200 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let last = performance.now();
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        last = performance.now();
        for (const m of batch.messages) {
          const v = m.value ?? Buffer.alloc(0);
          valueBytes += v.length;
          if (output === "raw") d.add(v);
          else {
            try {
              d.add(fieldsKey(codec.decode(v)));
            } catch {
              undecodable++;
              d.add(v);
            }
          }
        }
      },
    });
    for (;;) {
      const idle = performance.now() - last;
      if (idle > 30_000 || (d.count >= expected && idle > 2000)) break;
      await sleep(100);
    }
  } finally {
    await consumer.disconnect().catch(() => {});
  }
  if (undecodable > 0) say(`  ${undecodable} messages did not decode as AccessLog`);
  return { digest: d, valueBytes };
}

// ---- one run ------------------------------------------------------------------------------------------------

interface Sample {
  lines: number;
  /** From the first message in the topic to the last. */
  spanMs: number;
  /** From the peer's start to the first message: JVM/Node start, reading the config, connecting. */
  startupMs: number;
  /** Messages credited to the span (those that arrived after the first poll that showed any). */
  credited: number;
  eventsPerSec: number;
  mibPerSec: number;
  /** CPU of the process tree over the span, ms. */
  cpuMs: number;
  peakRssKiB: number;
  /** CPU the Kafka broker used over the span, in cores. */
  brokerCores: number;
  /** CPU everything else (this benchmark's polling, other processes) used over the span, in cores. */
  restCores: number;
  stopMs: number;
  /** Messages read back (read_committed) after the peer stopped, minus the lines: duplicates (if < 0, losses). */
  extra: number;
  /** Average size of a message's value in the topic (bytes). */
  messageBytes: number;
  /** "" when the topic's contents equal the input's; else what differs; "not checked" with --skip-verify. */
  verified: string;
}

async function runPeer(peer: ShipperPeer, input: AccessFile, file: string): Promise<Sample> {
  const id = uid();
  const topic = `bench.ship.${peer.name}.${id}`;
  const state = join(WORK, `state-${peer.name}-${id}`);
  mkdirSync(state);
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
  });
  topicsToDelete.add(topic);
  const setup: RunSetup = { file, topic, state, brokers: BROKERS, metricsPort: await freePort() };
  const c = peer.command(setup);
  const p = start(`${peer.name}-${id}`, c.cmd, c.args, c.env);
  current = p;
  const pid = p.child.pid as number;
  // Looked up per run: the stack may have been restarted since the last one.
  const brokerAt = brokerPid();
  const t0 = performance.now();
  let first: { t: number; cpu: number; busy: number; broker: number; count: number } | undefined;
  let done: { t: number; cpu: number; busy: number; broker: number } | undefined;
  let peakRss = 0;
  let lastCount = 0;
  let lastGrowth = t0;
  try {
    for (;;) {
      await sleep(100);
      const count = peer.progress === "offsets" ? await topicCount(topic) : await weirSent(setup.metricsPort, topic);
      const now = performance.now();
      const cpu = cpuMsOf(pid);
      const busy = machineBusyMs();
      const broker = brokerAt === null ? Number.NaN : cpuMsOf(brokerAt);
      peakRss = Math.max(peakRss, treePeakRssKiB(pid));
      if (count > lastCount) {
        lastCount = count;
        lastGrowth = now;
      }
      if (count > 0 && !first) first = { t: now, cpu, busy, broker, count };
      if (count >= LINES) {
        done = { t: now, cpu, busy, broker };
        break;
      }
      if (p.exitCode !== undefined) throw new Error(`${peer.name} exited with ${p.exitCode} at ${count} messages`);
      if (now - lastGrowth > STALL_MS) throw new Error(`${peer.name} stalled at ${count} messages`);
      if (now - t0 > TIMEOUT_MS) throw new Error(`${peer.name} timed out at ${count} messages`);
    }
    // Anything still in flight (a duplicate) lands before the count is taken again.
    await sleep(1000);
    peakRss = Math.max(peakRss, treePeakRssKiB(pid));
    const ts = performance.now();
    p.child.kill("SIGTERM");
    const code = await within(p.exited, 120_000);
    const stopMs = performance.now() - ts;
    if (code === "timeout") {
      p.child.kill("SIGKILL");
      await p.exited;
      say(`  WARNING: ${peer.name} did not stop within 120 s of SIGTERM (killed); log ${p.log}`);
      // 143: the JVM's exit status after SIGTERM, once its shutdown hooks (Flume's orderly stop) have run.
    } else if (code !== 0 && !(code === 143 && c.cmd === "java")) {
      say(`  WARNING: ${peer.name} exited with ${code}; log ${p.log}`);
    }
    // End offsets count messages, and also the commit markers of Kafka transactions (weir's).
    const offsets = await topicCount(topic);
    let verified = "not checked";
    let extra = peer.progress === "offsets" ? offsets - LINES : Number.NaN;
    let messageBytes = Number.NaN;
    if (!SKIP_VERIFY) {
      const got = await digestTopic(topic, peer.progress === "offsets" ? offsets : LINES, peer.output);
      const want = peer.output === "raw" ? input.lineDigest : input.fieldsDigest;
      verified = got.digest.difference(want);
      extra = got.digest.count - LINES;
      messageBytes = got.valueBytes / got.digest.count;
    }
    const f = first as NonNullable<typeof first>;
    const spanMs = done.t - f.t;
    const credited = LINES - f.count;
    const cpuMs = done.cpu - f.cpu;
    return {
      lines: LINES,
      spanMs,
      startupMs: f.t - t0,
      credited,
      eventsPerSec: credited / (spanMs / 1000),
      mibPerSec: (credited * (input.bytes / input.lines)) / MiB / (spanMs / 1000),
      cpuMs,
      peakRssKiB: peakRss,
      brokerCores: (done.broker - f.broker) / spanMs,
      restCores: (done.busy - f.busy - cpuMs - (brokerAt === null ? 0 : done.broker - f.broker)) / spanMs,
      stopMs,
      extra,
      messageBytes,
      verified,
    };
  } catch (e) {
    killCurrent();
    await p.exited;
    throw new Error(`${(e as Error).message}; log ${p.log}:\n${tail(p)}`);
  } finally {
    current = null;
    await cleanupKafka();
    rmSync(state, { recursive: true, force: true });
  }
}

// ---- the runs -----------------------------------------------------------------------------------------------

await admin.connect();
const versions = new Map<string, string>();
for (const peer of PEERS) versions.set(peer.name, peer.prepare());
const fsync = fsyncProbe(WORK);
const machine = `${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}; state and input on ${fsOf(WORK)}`;
say(`machine: ${machine}; fsync (4 KiB append + fdatasync) p50 ${f2(fsync.p50)} ms, p99 ${f2(fsync.p99)} ms`);
for (const [name, v] of versions) say(`${name}: ${v}`);

const inputFile = join(WORK, "access.log");
const tw = performance.now();
const input = writeAccessFile(inputFile, LINES, SEED);
say(
  `input: ${fmt(input.lines)} lines, ${f1(input.bytes / MiB)} MiB (${f1(input.bytes / input.lines)} bytes a line) in ${((performance.now() - tw) / 1000).toFixed(1)} s: ${inputFile}`,
);

const samples = new Map<string, Sample[]>(PEERS.map((p) => [p.name, []]));
const failures: string[] = [];
for (let run = 1; run <= RUNS; run++) {
  for (const peer of PEERS) {
    await waitQuiet(`run ${run} of ${peer.name}`);
    say(`run ${run}: ${peer.name}`);
    try {
      const s = await runPeer(peer, input, inputFile);
      samples.get(peer.name)?.push(s);
      say(
        `  ${fmt(s.eventsPerSec)} events/s, ${f1(s.mibPerSec)} MiB/s over ${f1(s.spanMs / 1000)} s (startup ${f1(s.startupMs / 1000)} s), ` +
          `CPU ${f1(s.cpuMs / 1000)} s (${f2(s.cpuMs / s.spanMs)} cores), ${fmt(s.credited / (s.cpuMs / 1000))} events/CPU-s, ` +
          `peak RSS ${fmt(s.peakRssKiB / 1024)} MiB, broker ${f2(s.brokerCores)} cores, rest of the machine ${f2(s.restCores)} cores, stop ${f1(s.stopMs / 1000)} s, ` +
          `${s.extra === 0 ? "exactly N messages" : `${s.extra > 0 ? "+" : ""}${s.extra} messages vs N`}, ` +
          `contents ${s.verified === "" ? "equal to the input" : s.verified}`,
      );
    } catch (e) {
      failures.push(`run ${run}, ${peer.name}: ${(e as Error).message.split("\n")[0]}`);
      say(`  FAILED: ${(e as Error).message}`);
    }
  }
}
await admin.disconnect();

// ---- the report ---------------------------------------------------------------------------------------------

const M = (name: string, f: (s: Sample) => number) => median((samples.get(name) ?? []).map(f));
const rate = (s: Sample) => s.eventsPerSec;
const mib = (s: Sample) => s.mibPerSec;
const cores = (s: Sample) => s.cpuMs / s.spanMs;
const perCpu = (s: Sample) => s.credited / (s.cpuMs / 1000);
const mibPerCpu = (s: Sample) => s.mibPerSec / cores(s);
const rss = (s: Sample) => s.peakRssKiB / 1024;
const has = (name: string) => (samples.get(name)?.length ?? 0) > 0;

function row(peer: ShipperPeer): string {
  const xs = samples.get(peer.name) ?? [];
  if (xs.length === 0) return `| ${peer.name} | failed | | | | | | | | | | |`;
  const rates = xs.map(rate);
  const n = peer.name;
  return `| ${n} | **${fmt(M(n, rate))}** (${k(Math.min(...rates))}–${k(Math.max(...rates))}) | ${f1(M(n, mib))} | ${f1(M(n, (s) => s.spanMs / 1000))} | ${f1(M(n, (s) => s.startupMs / 1000))} | ${f1(M(n, (s) => s.cpuMs / 1000))} (${f2(M(n, cores))}) | **${fmt(M(n, perCpu))}** | ${f1(M(n, mibPerCpu))} | ${fmt(M(n, rss))} | ${f2(M(n, (s) => s.brokerCores))} | ${f2(M(n, (s) => s.restCores))} | ${f1(M(n, (s) => s.stopMs / 1000))} |`;
}

const checks = PEERS.map((p) => {
  const xs = samples.get(p.name) ?? [];
  const dup = xs.map((s) => s.extra);
  const ver = xs.map((s) => (s.verified === "" ? "equal" : s.verified));
  return `${p.name}: messages beyond N per run ${dup.join(", ") || "–"}; contents ${ver.join(", ") || "–"}; ${f1(M(p.name, (s) => s.messageBytes))} bytes a message`;
}).join("; ");

const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : "–");
const met = (ok: boolean) => (ok ? "met" : "**not met**");
const W = "weir";
const F = "flume";
const R = "rsyslog";
const goals = has(W)
  ? `| goal | target | measured | |
|---|---|---|---|
| weir vs Flume, events/s | >= 2x | ${ratio(M(W, rate), M(F, rate))} | ${has(F) ? met(M(W, rate) / M(F, rate) >= 2) : "–"} |
| weir vs rsyslog, events/s | >= 1x | ${ratio(M(W, rate), M(R, rate))} | ${has(R) ? met(M(W, rate) / M(R, rate) >= 1) : "–"} |
| weir vs Flume / rsyslog, events per CPU-second | (for reference) | ${ratio(M(W, perCpu), M(F, perCpu))} / ${ratio(M(W, perCpu), M(R, perCpu))} | |
| weir, MiB/s per core (input bytes per CPU-second) | >= 25 | ${f1(M(W, mibPerCpu))} | ${met(M(W, mibPerCpu) >= 25)} |
| weir, peak RSS | < 150 MiB | ${fmt(M(W, rss))} MiB | ${met(M(W, rss) < 150)} |
`
  : `weir was not measured in this run (\`--peers ${PEER_NAMES.join(",")}\`): the numbers to beat are 2x Flume's
${fmt(M(F, rate))} events/s = **${fmt(2 * M(F, rate))} events/s**, and rsyslog's **${fmt(M(R, rate))} events/s**; 25 MiB/s per core
is ${fmt((25 * MiB) / (input.bytes / input.lines))} events per CPU-second at these lines' ${f1(input.bytes / input.lines)} bytes.
`;

const md = `# Shipper: weir ship vs Apache Flume and rsyslog (file -> Kafka)

Command: \`${COMMAND}\`
Date: ${began.toISOString().slice(0, 16).replace("T", " ")} UTC; total time ${((Date.now() - began.getTime()) / 60000).toFixed(1)} min.
Machine: ${machine}. A 4 KiB append + fdatasync there takes ${f2(fsync.p50)} ms (p50), ${f2(fsync.p99)} ms (p99).
Kafka 4.3.1 (KRaft, one broker) on the same machine, so the broker and the shipper share the cores. Before each run the benchmark
waited until the rest of the machine used less than ${QUIET_CORES} cores: ${(waitedMs / 1000).toFixed(0)} s in all${seenOthers.size > 0 ? `; it was still busy before some runs, with ${[...seenOthers].map((o) => `\`${o.replace(/`/g, "")}\``).join(", ")}` : "; it was quiet before every run"}.

Versions: ${[...versions.entries()].map(([n, v]) => `${n}: ${v}`).join("; ")}.

Workload: ${fmt(input.lines)} access-log JSON lines, ${f1(input.bytes / MiB)} MiB (${f1(input.bytes / input.lines)} bytes a line on average),
written by the traffic simulator's line writer (\`infra/simulator/formats.ts\` \`accessLine()\`, every service's
access log of a simulated evening peak, seed ${SEED}) to one file before the shipper starts: a backlog. Each
run ships it to a fresh topic of ${PARTITIONS} partitions with acks=all, an idempotent producer and lz4.
Medians of ${RUNS} runs per peer, interleaved (${PEERS.map((p) => p.name).join(", ")}, then again).

## Throughput on a backlog

events/s and MiB/s (input bytes) run from the first poll of the topic's end offsets (every 100 ms) that shows a
message to the poll that shows all ${fmt(LINES)}; only the messages that arrived in between are credited.
Startup is the time from starting the process to that first message. CPU is user + system time of the peer's
process tree (\`/proc/<pid>/stat\` with its children) over the same span, in seconds (and cores); MiB/s per core
= input MiB per CPU-second. Peak RSS is VmHWM summed over the process tree. Broker is the Kafka broker's CPU over
the span; "rest of the machine" is the busy CPU of everything else (\`/proc/stat\` minus the peer and the broker):
this benchmark's polling, other processes. Stop is the time from SIGTERM to exit.

| shipper | events/s (min–max) | MiB/s | span (s) | startup (s) | CPU s (cores) | events per CPU-second | MiB/s per core | peak RSS (MiB) | broker (cores) | rest of the machine (cores) | stop (s) |
|---|---|---|---|---|---|---|---|---|---|---|---|
${PEERS.map(row).join("\n")}

Every run (events/s / cores / broker cores / rest of the machine): ${PEERS.filter((p) => has(p.name))
  .map(
    (p) =>
      `${p.name}: ${(samples.get(p.name) ?? []).map((s) => `${k(s.eventsPerSec)}/${f2(cores(s))}c/${f2(s.brokerCores)}c/${f2(s.restCores)}c`).join(", ")}`,
  )
  .join("; ")}.
${failures.length > 0 ? `\nFailed runs: ${failures.join("; ")}.\n` : ""}
Delivery check (after the peer stopped, the whole topic read back): ${checks}.
${SKIP_VERIFY ? "Contents were not checked (--skip-verify)." : "Raw peers' messages are compared with the input lines byte for byte, weir's records field by field (decoded as AccessLog), as order-independent digests (count, bytes, two CRC-32C sums)."}

## Goals

${goals}
## Durability of each peer

${PEERS.map((p) => `- **${p.name}** (${p.config}): ${p.durability}`).join("\n")}

## Notes on fairness

- **Durability is not equal, and the fastest peer keeps the least.** weir (\`--fsync always\`) and Flume both keep
  a line on disk (fsynced) from the moment the source passes it on until Kafka has acknowledged it. rsyslog's
  omkafka hands messages to librdkafka and forgets them before Kafka acknowledges, whatever its queue; with the
  disk-assisted queue nothing is on disk while it keeps up. rsyslog configured to fsync every message (a pure disk
  queue with \`queue.syncQueueFiles\`, \`--peers rsyslog-disk\`) shipped ~1,300 lines/s on this machine (13 minutes
  for 1M lines, waiting on one fdatasync per message), so it is not in the default run.
- **Not the same work per line.** Flume and rsyslog ship each line as it is. weir parses each JSON line, turns it
  into an AccessLog record (Avro single-object encoding${has(W) ? `, ${f1(M(W, (s) => s.messageBytes))} bytes a message` : ""}) with its
  source position, and checks it against the schema, so that downstream consumers read typed events; and it sends each
  batch (up to 4000 records) as one Kafka transaction, a commit round trip the peers do not pay.
- **The same input and settings otherwise.** One file, written before the shipper starts and left in the page
  cache, read from its start; a fresh topic of ${PARTITIONS} partitions; acks=all, an idempotent producer, lz4;
  messages without keys. Batches: weir's file source reads up to 1000 lines at a time, Flume's source and sink
  move ${FLUME_BATCH} per transaction, rsyslog's imfile submits up to 1024 and its action dequeues up to 1024.
${
  has(F)
    ? `- **Flume's Kafka sink is its bottleneck** (Flume used ${f2(M(F, cores))} cores in all): source and sink are one thread each;
  the sink takes ${FLUME_BATCH} events, sends them, flushes the producer and waits for every acknowledgement before it
  takes the next, while the source fills the channel faster than that. Its file channel's two fsyncs per batch cost
  little on this disk (${f2(fsync.p50)} ms each). See bench/peers/flume/README.md ("Where the time goes").
`
    : ""
}- **Startup is not in the rate.** JVM start (Flume: ${f1(M(F, (s) => s.startupMs / 1000))} s to the first message, including a fixed 0.5 s wait
  for the channel) and Node start with tsx (weir: ${f1(M(W, (s) => s.startupMs / 1000))} s) are in the startup column only.
- **The broker shares the machine.** Kafka runs on the same 2 cores; a shipper that sends faster, or in
  transactions, also makes the broker work harder (the broker column).
`;

writeFileSync(OUT, md);
console.log(md);
if (KEEP_LOGS) {
  rmSync(inputFile, { force: true });
  say(`logs kept in ${LOGS}`);
} else rmSync(WORK, { recursive: true, force: true });
