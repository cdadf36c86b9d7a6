// The disk under the shipper's channel fills up while services keep writing. The channel must hold
// on (no crash, no corrupt record), the sources pause (the log file grows behind them), and once
// space returns every line arrives in Kafka: 0 lost. The channel sits on a small tmpfs of its own
// (root only: the test is skipped, saying why, elsewhere), so the machine's disk is never filled.
// Another file fills the disk here; channel.maxBytes (2 MiB) is below the disk's size (4 MiB): a
// channel allowed more than its disk holds can fill the disk with records already in Kafka and then
// not find the 4 KiB its committed mark needs to let them go (docs/reliability.md, "Disk full").
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { consumeAll } from "../support/kcat.ts";
import { createTopics, deleteTopics, type ShipProcess, shipSourceOf, startShip } from "../support/ship.ts";
import { requireServices, uniqueName } from "../support/stack.ts";

const LINES_PER_SECOND = 2000;
const FULL_FOR_MS = Number(process.env.WEIR_CHAOS_DISK_FULL_MS ?? 15_000);

function accessLine(n: number, ts: number): string {
  return `{"id":"full-${n}","ts":${ts},"app":"live","system":"gifting","service":"gift-svc","endpoint":"/gift/send","method":"POST","status":200,"latencyUs":${1000 + (n % 9000)},"bytesIn":115,"bytesOut":97,"traceId":"${n.toString(16).padStart(32, "0")}","uid":${100000000 + (n % 50000)},"clientIp":"10.1.${n % 256}.${(n >> 8) % 256}","host":"gift-svc-1"}\n`;
}

function canMount(): string | null {
  if (process.getuid?.() !== 0) return "needs root to mount a tmpfs for the channel";
  const probe = mkdtempSync(join(tmpdir(), "weir-tmpfs-probe-"));
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe]);
  if (r.status !== 0) {
    rmSync(probe, { recursive: true, force: true });
    return `cannot mount a tmpfs: ${r.stderr}`;
  }
  spawnSync("umount", [probe]);
  rmSync(probe, { recursive: true, force: true });
  return null;
}

async function scrape(port: number, ship: ShipProcess): Promise<Map<string, number>> {
  let text: string;
  try {
    text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch (e) {
    throw new Error(`no /metrics (${(e as Error).message}); weir ship said: ${ship.output().slice(-3000)}`);
  }
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || !line) continue;
    const at = line.lastIndexOf(" ");
    const name = line.slice(0, at).replace(/\{.*$/, "");
    out.set(name, (out.get(name) ?? 0) + Number(line.slice(at + 1)));
  }
  return out;
}

/** Waits until the shipper serves /metrics and has sent something (a loaded machine starts it slowly). */
async function waitShipping(port: number, ship: ShipProcess): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    assert.equal(ship.child.exitCode, null, `weir ship exited: ${ship.output().slice(-2000)}`);
    const m = await scrape(port, ship).catch(() => null);
    if (m && (m.get("weir_ship_events_sent_total") ?? 0) > 0) return;
    await sleep(1000);
  }
  throw new Error(`weir ship sent nothing within 120 s: ${ship.output().slice(-2000)}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Not in `npm test`'s bounded subset: on a loaded machine the channel's acknowledged segments filled
// the 4 MiB disk before the test's filler did, and the shipper stayed stuck with its source paused
// (docs/reliability.md, "Open"). `npm run test:chaos` runs it.
const skip =
  process.env.WEIR_CHAOS_DISK_FULL === "1"
    ? canMount()
    : "only in npm run test:chaos (WEIR_CHAOS_DISK_FULL=1): a known hang under load, docs/reliability.md";
test("the channel's disk fills up: the shipper holds on, its sources pause, and every line arrives once space returns", {
  skip: skip ?? false,
  timeout: 600_000,
}, async () => {
  await requireServices(["kafka"]);
  const root = mkdtempSync(join(tmpdir(), "weir-disk-full-"));
  const channelDir = join(root, "data", "channel");
  mkdirSync(channelDir, { recursive: true });
  assert.equal(spawnSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", channelDir]).status, 0);
  const logFile = join(root, "gift-svc", "access.log");
  const topic = uniqueName("disk_full");
  const dlq = `${topic}.dlq`;
  await createTopics([topic, dlq]);
  const metricsPort = 19_900 + Math.floor(Math.random() * 90);
  writeFileSync(
    join(root, "ship.yaml"),
    `dataDir: ${JSON.stringify(join(root, "data"))}
topics:
  ${topic}: { schema: AccessLog, key: service }
  ${dlq}: { schema: DeadLetter, key: id }
channel: { maxBytes: 2MiB, segmentBytes: 512KiB }
dlq: { topic: ${dlq} }
metrics: { port: ${metricsPort} }
sources:
  - name: access
    paths: [${JSON.stringify(join(root, "*/access.log"))}]
    format: json
    topic: ${topic}
`,
  );
  let ship: ShipProcess | null = null;
  let written = 0;
  let writing = true;
  const filler = join(channelDir, "filler");
  try {
    mkdirSync(join(root, "gift-svc"));
    writeFileSync(logFile, "");
    const writer = (async () => {
      while (writing) {
        let chunk = "";
        const now = Date.now();
        for (let i = 0; i < LINES_PER_SECOND / 10; i++) chunk += accessLine(written++, now);
        appendFileSync(logFile, chunk);
        await sleep(100);
      }
    })();
    ship = startShip(["--config", join(root, "ship.yaml")]);
    await waitShipping(metricsPort, ship);
    await sleep(3_000);

    // Fill the tmpfs but for 96 KiB: the active segment can no longer grow.
    const free = statfsSync(channelDir);
    const leave = 96 * 1024;
    writeFileSync(filler, Buffer.alloc(Math.max(0, Number(free.bavail) * Number(free.bsize) - leave)));
    const fullAt = Date.now();
    let readAtFullStart = -1;
    let readAtFullEnd = -1;
    while (Date.now() - fullAt < FULL_FOR_MS) {
      await sleep(1000);
      assert.equal(
        ship.child.exitCode,
        null,
        `weir ship exited while the disk was full: ${ship.output().slice(-3000)}`,
      );
      const m = await scrape(metricsPort, ship);
      const read = m.get("weir_ship_bytes_read_total") ?? 0;
      if (Date.now() - fullAt > 5_000 && readAtFullStart < 0) readAtFullStart = read;
      readAtFullEnd = read;
    }
    const lagWhileFull = (await scrape(metricsPort, ship)).get("weir_ship_file_lag_bytes") ?? 0;
    assert.ok(
      readAtFullEnd - readAtFullStart < 512 * 1024,
      `the source kept reading ${readAtFullEnd - readAtFullStart} bytes while the disk was full`,
    );
    assert.ok(lagWhileFull > 1024 * 1024, `the file should have grown past the shipper (lag ${lagWhileFull})`);
    assert.match(ship.output(), /no space left|ENOSPC/i, "the shipper said its disk was full");

    // Space returns.
    rmSync(filler);
    const back = Date.now();
    writing = false;
    await writer;
    const deadline = Date.now() + 90_000;
    let ids = new Set<number>();
    let messages = 0;
    let caughtUpAfter = -1;
    while (Date.now() < deadline) {
      await sleep(2000);
      const all = await consumeAll(topic);
      messages = all.length;
      ids = new Set(all.map((m) => shipSourceOf("AccessLog", m.value).offset));
      if (ids.size >= written) {
        caughtUpAfter = Date.now() - back;
        break;
      }
    }
    ship.child.kill("SIGTERM");
    const exit = await ship.exited;
    const output = ship.output();
    ship = null;
    assert.equal(
      ids.size,
      written,
      `${written - ids.size} of ${written} lines never arrived; weir ship said: ${output.slice(-4000)}`,
    );
    assert.equal(exit.code, 0, output.slice(-2000));
    assert.equal((await consumeAll(dlq)).length, 0, "no line was dead-lettered");
    // Reopening the channel finds no corrupt or cut record.
    const again = startShip(["--config", join(root, "ship.yaml")]);
    await sleep(5_000);
    again.child.kill("SIGTERM");
    await again.exited;
    assert.doesNotMatch(again.output(), /corrupt|truncat/i, again.output().slice(-2000));
    console.log(
      `ship-disk-full: ${written} lines at ${LINES_PER_SECOND}/s, the channel's disk full for ${FULL_FOR_MS / 1000} s; ` +
        `${written - ids.size} lost, ${messages - ids.size} duplicates, every line in Kafka ${(caughtUpAfter / 1000).toFixed(1)} s after space returned`,
    );
  } finally {
    writing = false;
    if (ship) {
      ship.child.kill("SIGKILL");
      await ship.exited;
    }
    spawnSync("umount", ["-l", channelDir]);
    await deleteTopics([topic, dlq]);
    rmSync(root, { recursive: true, force: true });
  }
});
