// Benchmark: the shipper's DiskChannel alone, put + take + commit of 300-byte payloads in batches of
// 500, in one process (what one shipper core spends on its channel).
//   steady:   4 putters and one taker that commits each take: the sink keeps up, takes come from
//             the in-memory tail.
//   backlog:  the same records put with no taker (Kafka down), then drained: takes read the
//             segments back from disk (page cache) through the read window.
// Per fsync policy ("interval", "always", and "never" for reference); the median of --runs.
//   node --import tsx bench/shipper/channel.ts [--records 1000000] [--runs 3] [--fsync interval,always,never] [--dir /tmp]
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { DiskChannel, type FsyncPolicy } from "../../shipper/channel/disk-channel.ts";
import { median } from "../support/process.ts";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] as string) : dflt;
};
const RECORDS = Number(arg("records", "1000000"));
const RUNS = Number(arg("runs", "3"));
const POLICIES = arg("fsync", "interval,always,never").split(",") as FsyncPolicy[];
const BASE = arg("dir", tmpdir());
const BATCH = 500;
const PAYLOAD = 300;
const PUTTERS = 4;
const MiB = 1024 * 1024;

/** Distinct payloads, reused across batches (the channel copies them): the bench measures the channel, not the allocator. */
const POOL: Buffer[][] = Array.from({ length: 16 }, (_, b) =>
  Array.from({ length: BATCH }, (_, k) => {
    const p = Buffer.alloc(PAYLOAD, 0x61 + ((b + k) % 26));
    p.write(`${b}:${k}:`, "latin1");
    return p;
  }),
);

interface Result {
  seconds: number;
  cpuSeconds: number;
  fsyncs: number;
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

async function put(ch: DiskChannel, records: number): Promise<void> {
  let next = 0;
  const putter = async () => {
    while (next < records) {
      const batch = POOL[(next / BATCH) % POOL.length] as Buffer[];
      next += BATCH;
      await ch.put(batch);
    }
  };
  await Promise.all(Array.from({ length: PUTTERS }, putter));
}

async function takeAll(ch: DiskChannel, records: number): Promise<void> {
  let taken = 0;
  while (taken < records) {
    const b = await ch.take(BATCH, Number.POSITIVE_INFINITY);
    if (b.payloads[0]?.length !== PAYLOAD) throw new Error("bench: a payload came back wrong");
    taken += b.seqs.length;
    ch.commit(b.lastSeq);
  }
}

async function steady(fsync: FsyncPolicy): Promise<Result> {
  const dir = mkdtempSync(join(BASE, "weir-bench-channel-"));
  try {
    const ch = await DiskChannel.open({ dir, fsync, maxBytes: 256 * MiB });
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await Promise.all([put(ch, RECORDS), takeAll(ch, RECORDS)]);
    const r = { seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuSeconds(c0), fsyncs: ch.stats().fsyncs };
    await ch.close();
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function backlog(fsync: FsyncPolicy): Promise<{ fill: Result; drain: Result }> {
  const dir = mkdtempSync(join(BASE, "weir-bench-channel-"));
  try {
    const ch = await DiskChannel.open({ dir, fsync, maxBytes: 2048 * MiB });
    let t0 = performance.now();
    let c0 = process.cpuUsage();
    await put(ch, RECORDS);
    const fill = { seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuSeconds(c0), fsyncs: ch.stats().fsyncs };
    t0 = performance.now();
    c0 = process.cpuUsage();
    await takeAll(ch, RECORDS);
    const drain = { seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuSeconds(c0), fsyncs: 0 };
    await ch.close();
    return { fill, drain };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function row(name: string, fsync: string, rs: Result[]): string {
  const s = median(rs.map((r) => r.seconds));
  const cpu = median(rs.map((r) => r.cpuSeconds));
  const perSec = RECORDS / s;
  const fsyncs = median(rs.map((r) => r.fsyncs));
  return `| ${name} | ${fsync} | ${Math.round(perSec).toLocaleString("en")} | ${((perSec * PAYLOAD) / MiB).toFixed(1)} | ${Math.round(RECORDS / cpu).toLocaleString("en")} | ${fsyncs} |`;
}

const lines = [
  `DiskChannel, ${RECORDS.toLocaleString("en")} records of ${PAYLOAD} bytes, batches of ${BATCH}, ${PUTTERS} putters; median of ${RUNS} runs`,
  `node ${process.version}, ${cpus()[0]?.model ?? "?"} x${cpus().length}, ${BASE}`,
  "",
  "| scenario | fsync | records/s | MiB/s (payload) | records per CPU-second | fdatasyncs |",
  "|---|---|---|---|---|---|",
];
for (const fsync of POLICIES) {
  const st: Result[] = [];
  const fill: Result[] = [];
  const drain: Result[] = [];
  for (let r = 0; r < RUNS; r++) {
    st.push(await steady(fsync));
    const b = await backlog(fsync);
    fill.push(b.fill);
    drain.push(b.drain);
  }
  lines.push(row("steady: put + take + commit", fsync, st));
  lines.push(row("backlog: put, no taker", fsync, fill));
  lines.push(row("backlog: take + commit from disk", fsync, drain));
}
lines.push("", `peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);
console.log(lines.join("\n"));
