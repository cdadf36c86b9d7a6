// The shipper's promise, proven against the real Kafka: the traffic simulator writes more than a
// million lines in real time, rotating its logs both ways (rename + create and copytruncate), while
// `weir ship` is killed with SIGKILL every few seconds and started again. Afterwards kcat (not weir)
// reads every topic: every event the simulator wrote is there, no line is lost, and re-sent lines
// (the at-least-once window between Kafka's acknowledgement and the checkpoint) stay under 0.1%.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { SIMULATE_DEFAULTS, simulate } from "../../infra/simulator/simulate.ts";
import { codecFor } from "../../schemas/codec.ts";
import { consumeAll } from "../support/kcat.ts";
import {
  createTopics,
  deleteTopics,
  messageCount,
  type ShipProcess,
  shipSourceOf,
  simulatorShipConfig,
  startShip,
  streamOf,
} from "../support/ship.ts";
import { requireStack, uniqueName } from "../support/stack.ts";

const SCHEMA_OF = {
  access: "AccessLog",
  app: "AppLog",
  behavior: "BehaviorEvent",
  coin: "CoinTxn",
  device: "DeviceReport",
} as const;

interface StreamTruth {
  events: number;
  lines: number;
  dirty: number;
}

test("weir ship killed with SIGKILL every few seconds loses no line of a million, across both kinds of rotation", async () => {
  await requireStack();
  const root = mkdtempSync(join(tmpdir(), "weir-ship-kill-"));
  const simDir = join(root, "sim");
  const dataDir = join(root, "data");
  const prefix = uniqueName("ship_kill");
  const topics = {
    access: `${prefix}.access`,
    app: `${prefix}.app`,
    behavior: `${prefix}.behavior`,
    coin: `${prefix}.coin`,
    device: `${prefix}.device`,
    dlq: `${prefix}.dlq`,
  };
  const all = Object.values(topics);
  await createTopics(all);
  const configFile = join(root, "ship.yaml");
  writeFileSync(configFile, simulatorShipConfig(simDir, dataDir, topics));
  let ship: ShipProcess | null = null;
  let kills = 0;
  /** The shippers' warnings and errors, shown when the counts are off. */
  const complaints: string[] = [];
  try {
    // ~29k records a second for 36 s of wall time: about 1.05 million lines, 8 MiB rotations,
    // rename + create and copytruncate alternating by stream, a few bad lines among them.
    const simulation = simulate({
      ...SIMULATE_DEFAULTS,
      seed: 11,
      durationMs: 36_000,
      rate: 20_000,
      diurnal: false,
      out: simDir,
      realtime: true,
      rotateBytes: 8 * 1024 * 1024,
      rotation: "mixed",
      dirty: 0.0002,
    });
    let simulating = true;
    const simulated = simulation.finally(() => {
      simulating = false;
    });

    // Kill the shipper 1-4 s after it has started shipping, and start it again: while the simulator
    // writes, then while the shipper catches up, until it has been killed at least 12 times.
    while (simulating || kills < 12) {
      ship = startShip(["--config", configFile]);
      await waitFor(() => ship?.output().includes("weir ship: shipping") ?? false, 60_000);
      await sleep(1000 + Math.random() * 3000);
      ship.child.kill("SIGKILL");
      await ship.exited;
      kills++;
      complaints.push(...warnings(ship.output()));
      ship = null;
    }
    await simulated;
    const truth = groundTruth(simDir);
    const expected = [...truth.values()].reduce((n, s) => n + s.events + s.dirty, 0);
    assert.ok(expected > 1_000_000, `the simulator wrote ${expected} events`);
    ship ??= startShip(["--config", configFile]);
    // End offsets count transaction markers too: wait until they pass the expected count and then
    // stop moving; kcat below counts the records themselves.
    const deadline = Date.now() + 300_000;
    let have = -1;
    let still = 0;
    while (Date.now() < deadline && still < 5) {
      await sleep(1000);
      const now = await messageCount(all);
      still = now >= expected && now === have ? still + 1 : 0;
      have = now;
    }
    ship.child.kill("SIGTERM");
    const exit = await ship.exited;
    complaints.push(...warnings(ship.output()));
    assert.equal(exit.code, 0, `weir ship exited ${exit.code}/${exit.signal}: ${ship.output().slice(-3000)}`);
    ship = null;

    // Count with kcat, by stream: distinct (file identity, offset) per stream, and copies.
    const seen = new Map<string, Set<string>>();
    let messages = 0;
    let duplicates = 0;
    const note = (file: string, fileId: string, offset: number, kind: "event" | "dead") => {
      const key = `${streamOf(file)}:${kind}`;
      let set = seen.get(key);
      if (!set) {
        set = new Set();
        seen.set(key, set);
      }
      const id = `${fileId}:${offset}`;
      if (set.has(id)) duplicates++;
      else set.add(id);
      messages++;
    };
    for (const [kind, schema] of Object.entries(SCHEMA_OF)) {
      for (const m of await consumeAll(topics[kind as keyof typeof SCHEMA_OF])) {
        const s = shipSourceOf(schema, m.value);
        note(s.file, s.fileId, s.offset, "event");
      }
    }
    const dl = codecFor("DeadLetter");
    const reasons = new Map<string, { n: number; sample: string }>();
    for (const m of await consumeAll(topics.dlq)) {
      const d = dl.decode(m.value);
      note(d.origin.file ?? "?", d.origin.fileId ?? "?", d.origin.fileOffset ?? -1, "dead");
      const r = reasons.get(d.reason) ?? {
        n: 0,
        sample: `${d.origin.file}@${d.origin.fileOffset}: ${d.message.slice(0, 200)} raw=${JSON.stringify(d.raw.subarray(0, 80).toString("latin1"))}`,
      };
      r.n++;
      reasons.set(d.reason, r);
    }

    const problems: string[] = [];
    for (const [stream, t] of truth) {
      const events = seen.get(`${stream}:event`)?.size ?? 0;
      const dead = seen.get(`${stream}:dead`)?.size ?? 0;
      if (events !== t.events) problems.push(`${stream}: ${events} events shipped, the simulator wrote ${t.events}`);
      if (dead !== t.dirty) problems.push(`${stream}: ${dead} dead letters, the simulator wrote ${t.dirty} bad lines`);
    }
    const rate = duplicates / messages;
    const inDoubt = complaints.filter((l) => l.includes("in flight when the shipper stopped"));
    console.log(
      `ship-sigkill: ${expected} events, ${kills} SIGKILLs, ${messages} messages, ${duplicates} duplicates (${(rate * 100).toFixed(4)}%); batches in doubt at a restart: ${inDoubt.length} (${inDoubt.filter((l) => l.includes("had committed")).length} had committed)`,
    );
    if (problems.length > 0) console.log("dead letters by reason:", reasons);
    if (problems.length > 0 || rate >= 0.001) console.log("the shippers' warnings:", complaints.slice(0, 30));
    assert.deepEqual(problems, []);
    assert.ok(rate < 0.001, `${duplicates} duplicates of ${messages} messages (${(rate * 100).toFixed(3)}%)`);
  } finally {
    if (ship) {
      ship.child.kill("SIGKILL");
      await ship.exited;
    }
    await deleteTopics(all);
    rmSync(root, { recursive: true, force: true });
  }
});

function groundTruth(simDir: string): Map<string, StreamTruth> {
  const lines = readFileSync(join(simDir, "ground-truth.jsonl"), "utf8").trim().split("\n");
  const summary = JSON.parse(lines.at(-1) as string) as { kind: string; byStream: Record<string, StreamTruth> };
  assert.equal(summary.kind, "summary");
  return new Map(Object.entries(summary.byStream));
}

function warnings(output: string): string[] {
  return output
    .split("\n")
    .filter(
      (l) => /"level":(40|50|60)/.test(l) || l.startsWith("Error") || l.includes("in flight when the shipper stopped"),
    );
}

async function waitFor(ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await sleep(50);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
