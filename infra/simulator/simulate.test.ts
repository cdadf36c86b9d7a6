// A simulated run read back in full: every line is accounted for across rotations, every dirty line
// is where the ground truth says and bad the way it says, every valid line is a record of its
// schema, and the incidents, hot event and fraud campaigns are really in the data.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { codecFor } from "../../schemas/codec.ts";
import { schemaRegistry } from "../../schemas/registry.ts";
import type { SchemaName } from "../../schemas/types.generated.ts";
import type { TruthRecord } from "./ground-truth.ts";
import { isVirtualNumber } from "./population.ts";
import { SIMULATE_DEFAULTS, type SimulateOptions, type SimulateResult, simulate } from "./simulate.ts";

const BASE: SimulateOptions = {
  ...SIMULATE_DEFAULTS,
  seed: 11,
  durationMs: 40_000,
  rate: 3000,
  users: 50_000,
  streamers: 1000,
  dirty: 0.003,
  oversizeBytes: 300_000,
  rotateBytes: 512 * 1024,
  rotation: "mixed",
};

function run(overrides: Partial<SimulateOptions> = {}): Promise<SimulateResult & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "weir-sim-"));
  return simulate({ ...BASE, out: dir, ...overrides }).then((r) => ({ ...r, dir }));
}

/** A stream's bytes in write order: the oldest rotated file (.N) first, the live file last. */
function streamBytes(dir: string, name: string): Buffer {
  const base = join(dir, `${name}.log`);
  const parts: Buffer[] = [];
  let n = 1;
  while (existsSync(`${base}.${n}`)) n++;
  for (let i = n - 1; i >= 1; i--) parts.push(readFileSync(`${base}.${i}`));
  parts.push(readFileSync(base));
  return Buffer.concat(parts);
}

function splitLines(buf: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, start)) {
    lines.push(buf.subarray(start, i));
    start = i + 1;
  }
  assert.equal(start, buf.length, "every line ends with a newline");
  return lines;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const SCHEMA_OF: Record<string, SchemaName> = {
  access: "AccessLog",
  coin: "CoinTxn",
  behavior: "BehaviorEvent",
  device: "DeviceReport",
};

/** A JSON line as the record it stands for: missing fields take their schema default (null, true). */
function asRecord(schema: SchemaName, line: Record<string, unknown>): Record<string, unknown> {
  const fields = (schemaRegistry().current(schema).schema as { fields: { name: string; default?: unknown }[] }).fields;
  const out: Record<string, unknown> = {};
  for (const f of fields) out[f.name] = line[f.name] !== undefined ? line[f.name] : f.default;
  return out;
}

type Manifest = {
  streams: {
    name: string;
    kind: string;
    format: string;
    events: number;
    lines: number;
    dirty: number;
    rotations: number;
    bytes: number;
  }[];
};

describe("a default run", () => {
  let r: SimulateResult & { dir: string };
  let truth: TruthRecord[];
  let manifest: Manifest;
  const records: Record<string, Record<string, unknown>[]> = {};

  before(async () => {
    r = await run();
    truth = readFileSync(join(r.dir, "ground-truth.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    manifest = JSON.parse(readFileSync(join(r.dir, "manifest.json"), "utf8"));
  });

  test("every line is where the manifest and the ground truth say; every dirty line is bad the way it says", () => {
    const dirtyAt = new Map<string, string>();
    for (const t of truth) if (t.kind === "dirty") dirtyAt.set(`${t.stream}:${t.line}`, t.reason);
    let dirtySeen = 0;
    for (const s of manifest.streams) {
      const lines = splitLines(streamBytes(r.dir, s.name));
      assert.equal(lines.length, s.lines, `${s.name} lines`);
      const valid: Record<string, unknown>[] = [];
      lines.forEach((buf, i) => {
        const reason = dirtyAt.get(`${s.name}:${i + 1}`);
        if (reason) {
          dirtySeen++;
          if (reason === "invalid-utf8") assert.throws(() => utf8.decode(buf), `${s.name}:${i + 1}`);
          else if (reason === "oversized") assert.ok(buf.length >= BASE.oversizeBytes, `${s.name}:${i + 1}`);
          else if (reason === "malformed-json") assert.throws(() => JSON.parse(buf.toString()), `${s.name}:${i + 1}`);
          else if (reason === "wrong-type") {
            const o = JSON.parse(buf.toString());
            const t = o.ts ?? o.time ?? o["@timestamp"];
            assert.ok(
              typeof t !== "number" && !(typeof t === "string" && !Number.isNaN(Date.parse(t))),
              `${s.name}:${i + 1}`,
            );
          } else assert.fail(`unknown reason ${reason}`);
          return;
        }
        const text = utf8.decode(buf);
        if (s.format === "text") return;
        valid.push(JSON.parse(text));
      });
      if (s.format !== "text") assert.equal(valid.length, s.events, `${s.name} records`);
      records[s.name] = valid;
    }
    assert.equal(dirtySeen, truth.filter((t) => t.kind === "dirty").length);
    assert.ok(dirtySeen > 100, `${dirtySeen} dirty lines`);
    const reasons = new Set(truth.flatMap((t) => (t.kind === "dirty" ? [t.reason] : [])));
    assert.deepEqual([...reasons].sort(), ["invalid-utf8", "malformed-json", "oversized", "wrong-type"]);
  });

  test("access, coin, behavior and device lines are records of their schemas", () => {
    for (const s of manifest.streams) {
      const schema = SCHEMA_OF[s.kind];
      if (!schema) continue;
      const codec = codecFor(schema);
      for (const line of records[s.name] ?? []) {
        const rec = asRecord(schema, line);
        assert.deepEqual(
          JSON.parse(JSON.stringify(codec.decode(codec.encode(rec as never)))),
          JSON.parse(JSON.stringify(rec)),
          s.name,
        );
      }
    }
  });

  test("app logs carry what AppLog needs in each service's format; the text log has multi-line stack traces", () => {
    for (const s of manifest.streams.filter((x) => x.kind === "app" && x.format !== "text")) {
      for (const o of records[s.name] ?? []) {
        if (s.format === "json")
          assert.ok(
            typeof o.ts === "number" &&
              ["INFO", "WARN", "ERROR"].includes(o.level as string) &&
              typeof o.message === "string",
          );
        if (s.format === "pino")
          assert.ok(
            typeof o.time === "number" && [30, 40, 50].includes(o.level as number) && typeof o.msg === "string",
          );
        if (s.format === "logback")
          assert.match(o["@timestamp"] as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00$/);
      }
    }
    const text = streamBytes(r.dir, "pay-svc/app").toString("utf8");
    // An oversized dirty line starts as a real line does: not an event.
    const events = text
      .split("\n")
      .filter((l) => l.length < BASE.oversizeBytes && /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} /.test(l));
    assert.equal(events.length, manifest.streams.find((s) => s.name === "pay-svc/app")?.events);
    assert.match(text, /\n\tat com\.live\.pay\./, "stack frames on their own lines");
  });

  test("each stream is in time order, and traces cross services", () => {
    for (const [name, recs] of Object.entries(records)) {
      let last = 0;
      for (const o of recs) {
        const ts = (o.ts ?? o.time ?? Date.parse(o["@timestamp"] as string)) as number;
        assert.ok(ts >= last, `${name}: ${ts} after ${last}`);
        last = ts;
      }
    }
    const debits = new Map(
      (records["pay-svc/access"] ?? []).filter((a) => a.endpoint === "/wallet/debit").map((a) => [a.traceId, a]),
    );
    const gifts = (records["gift-svc/access"] ?? []).filter((a) => a.endpoint === "/gift/send" && a.status === 200);
    assert.ok(gifts.length > 100);
    for (const g of gifts) {
      const d = debits.get(g.traceId);
      assert.ok(d, `gift ${g.id} has its wallet debit`);
      assert.equal(d.caller, "gift-svc");
      assert.ok((d.ts as number) <= (g.ts as number));
    }
  });

  test("rotation: both modes rotated files, none much larger than the limit", () => {
    const rotated = manifest.streams.filter((s) => s.rotations > 0);
    assert.ok(rotated.length >= 4, `${rotated.length} streams rotated`);
    for (const s of rotated) {
      for (let i = 1; i <= s.rotations; i++) {
        const size = statSync(join(r.dir, `${s.name}.log.${i}`)).size;
        assert.ok(size <= BASE.rotateBytes + BASE.oversizeBytes + 4096, `${s.name}.log.${i}: ${size}`);
      }
    }
  });

  const windowOf = (id: string) => truth.find((t) => "id" in t && t.id === id) as { start: number; end: number };
  const inWindow = (o: Record<string, unknown>, w: { start: number; end: number }) =>
    (o.ts as number) >= w.start && (o.ts as number) < w.end;
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

  test("incidents are in the data: latency spike, error burst, a slowdown spreading to callers", () => {
    const access = [...(records["gift-svc/access"] ?? []), ...(records["room-svc/access"] ?? [])];
    const spike = windowOf("incident-1");
    const sends = access.filter((a) => a.endpoint === "/gift/send");
    const during = median(sends.filter((a) => inWindow(a, spike)).map((a) => a.latencyUs as number));
    const outside = median(sends.filter((a) => (a.ts as number) < spike.start).map((a) => a.latencyUs as number));
    assert.ok(during > outside * 4, `gift/send p50 ${during} vs ${outside}`);

    const burst = windowOf("incident-2");
    const enters = access.filter((a) => a.endpoint === "/room/{id}/enter");
    const share5xx = (xs: Record<string, unknown>[]) =>
      xs.filter((a) => (a.status as number) >= 500).length / Math.max(1, xs.length);
    assert.ok(share5xx(enters.filter((a) => inWindow(a, burst))) > 0.2);
    assert.ok(share5xx(enters.filter((a) => (a.ts as number) < burst.start)) < 0.01);

    const slow = windowOf("incident-3");
    const timeouts = sends.filter((a) => inWindow(a, slow) && a.errorCode === "UPSTREAM_TIMEOUT").length;
    assert.ok(
      timeouts / Math.max(1, sends.filter((a) => inWindow(a, slow)).length) > 0.5,
      `${timeouts} upstream timeouts`,
    );
    assert.deepEqual(
      (truth.find((t) => "id" in t && t.id === "incident-3") as { affects: { endpoint: string }[] }).affects
        .map((a) => a.endpoint)
        .includes("/gift/send"),
      true,
    );
  });

  test("the hot event: one room takes over room traffic within its ramp", () => {
    const hot = truth.find((t) => t.kind === "hot_event") as {
      roomId: number;
      fullAt: number;
      end: number;
      start: number;
      normalShare: number;
    };
    const enters = (records["room-svc/access"] ?? []).filter((a) => a.roomId !== undefined);
    const share = (from: number, to: number) => {
      const xs = enters.filter((a) => (a.ts as number) >= from && (a.ts as number) < to);
      return xs.filter((a) => a.roomId === hot.roomId).length / Math.max(1, xs.length);
    };
    assert.ok(share(BASE.durationMs ? hot.start - 8000 : 0, hot.start) < 0.05);
    assert.ok(share(hot.fullAt, hot.end) > 0.4, `share at full strength ${share(hot.fullAt, hot.end)}`);
  });

  test("fraud campaigns are in the data, with every entity the ground truth names", () => {
    const fraud = Object.fromEntries(truth.flatMap((t) => (t.kind === "fraud" ? [[t.campaign, t]] : []))) as Record<
      string,
      Extract<TruthRecord, { kind: "fraud" }>
    >;
    assert.deepEqual(Object.keys(fraud).sort(), [
      "chat_spam",
      "coin_brushing",
      "emulator_farm",
      "fake_followers",
      "rooted_devices",
      "virtual_phone_registration",
    ]);
    const behavior = [
      ...(records["user-svc/behavior"] ?? []),
      ...(records["social-svc/behavior"] ?? []),
      ...(records["im-svc/behavior"] ?? []),
    ];
    const devices = records["device-svc/device"] ?? [];
    const coins = [...(records["pay-svc/coin"] ?? []), ...(records["gift-svc/coin"] ?? [])];

    const vp = fraud.virtual_phone_registration as Extract<TruthRecord, { kind: "fraud" }>;
    for (const p of vp.entities.phone ?? []) assert.ok(isVirtualNumber(String(p)), String(p));
    const regs = behavior.filter((b) => b.type === "REGISTER" && (vp.entities.uid ?? []).includes(b.uid as number));
    // A failed registration is retried (up to 3 times), so nearly every account has one that succeeded.
    const registered = new Set(regs.filter((r) => r.success !== false).map((r) => r.uid));
    assert.ok(registered.size >= (vp.entities.uid?.length ?? 0) * 0.95, `${registered.size} registered`);
    assert.ok((vp.entities.phone?.length ?? 0) < regs.length, "an SMS farm reuses its numbers");
    for (const reg of regs)
      assert.ok(
        (vp.entities.phone ?? []).includes(String(reg.phone).replace(/\D/g, "").replace(/^86/, "")),
        String(reg.phone),
      );

    const farm = fraud.emulator_farm as Extract<TruthRecord, { kind: "fraud" }>;
    const farmReports = devices.filter((d) => (farm.entities.device ?? []).includes(d.deviceId as string));
    assert.ok(farmReports.length > 0);
    // Not every emulator shows every sign, but each shows some: its build or its sensors, and its
    // telephony or its battery (one imitating a real build and sensors drives several accounts).
    for (const d of farmReports) {
      const build = /^(ranchu|goldfish|vbox86|mumu|android_x86)$/.test((d.build as { hardware: string }).hardware);
      const sensors = (d.sensors as string[]).some((x) => x.startsWith("Goldfish"));
      const noSim = (d.telephony as { imeiPresent: boolean }).imeiPresent === false;
      const battery = (d.battery as { temperatureDeciC: number }).temperatureDeciC === 250;
      assert.ok(noSim || battery, `${d.deviceId} shows neither its telephony nor its battery`);
      if (!build && !sensors) {
        const accounts = new Set(behavior.filter((b) => b.deviceId === d.deviceId).map((b) => b.uid));
        assert.ok(accounts.size >= 4, `${d.deviceId} hides its build and sensors but drives ${accounts.size} accounts`);
      }
    }
    assert.ok(
      farmReports.some(
        (d) => !/^(ranchu|goldfish|vbox86|mumu|android_x86)$/.test((d.build as { hardware: string }).hardware),
      ) || farmReports.some((d) => (d.telephony as { imeiPresent: boolean }).imeiPresent),
      "some emulators hide a sign",
    );
    assert.ok(
      (farm.entities.uid?.length ?? 0) >= 2 * (farm.entities.device?.length ?? 0),
      "several accounts per emulator",
    );

    // Each rooted device reports root or jailbreak indicators once rooted (its earlier reports are clean).
    const rooted = fraud.rooted_devices as Extract<TruthRecord, { kind: "fraud" }>;
    for (const id of rooted.entities.device ?? []) {
      const indicators = devices
        .filter((d) => d.deviceId === id)
        .map(
          (d) =>
            d.root as { suPaths: string[]; packages: string[]; jailbreakPaths: string[]; hookFrameworks: string[] },
        )
        .some(
          (root) =>
            root.suPaths.length + root.packages.length + root.jailbreakPaths.length + root.hookFrameworks.length > 0,
        );
      assert.ok(indicators, `${id} never reported its root`);
    }

    const brush = fraud.coin_brushing as Extract<TruthRecord, { kind: "fraud" }>;
    const streamer = brush.entities.streamer?.[0];
    for (const uid of brush.entities.uid ?? []) {
      const mine = coins.filter((c) => c.uid === uid);
      const cards = new Set(mine.filter((c) => c.type === "RECHARGE").map((c) => c.cardToken));
      assert.ok(cards.size >= 2, `${uid} recharged with ${cards.size} cards`);
      const recharged = mine.filter((c) => c.type === "RECHARGE").reduce((n, c) => n + (c.amount as number), 0);
      const gifted = mine
        .filter((c) => c.type === "GIFT" && c.counterpartUid === streamer)
        .reduce((n, c) => n + (c.amount as number), 0);
      assert.ok(gifted >= recharged * 0.7, `${uid} gifted ${gifted} of ${recharged}`);
    }

    const ff = fraud.fake_followers as Extract<TruthRecord, { kind: "fraud" }>;
    const follows = behavior.filter(
      (b) =>
        b.type === "FOLLOW" &&
        b.targetUid === ff.entities.streamer?.[0] &&
        (ff.entities.uid ?? []).includes(b.uid as number),
    );
    assert.ok(follows.length >= (ff.entities.uid?.length ?? 0) * 0.8, `${follows.length} fake follows`);
    assert.ok(new Set(follows.map((f) => f.deviceId)).size <= (ff.entities.device?.length ?? 0));

    const spam = fraud.chat_spam as Extract<TruthRecord, { kind: "fraud" }>;
    const spamChats = behavior.filter((b) => b.type === "CHAT" && (spam.entities.uid ?? []).includes(b.uid as number));
    assert.ok(spamChats.length > 0);
    // Contact details, links, forbidden trades, disguised (full-width, spaced digits, Chinese numerals,
    // circled or Roman letters, 加V): undone by NFKC, the words still show.
    for (const c of spamChats)
      assert.match(
        (c.text as string).normalize("NFKC").replace(/\s/g, ""),
        /wx_|vx:|QQ|http:\/\/|\d[ -]?\d{2}[ -]?\d{4}|[零一二三四五六七八九]{7}|博彩|裸聊|办证|刷单|代充|加V|薇|V信/i,
      );
    const forms = new Set(
      spamChats.map((c) => ((c.text as string).normalize("NFKC") === c.text ? "plain" : "disguised")),
    );
    assert.deepEqual([...forms].sort(), ["disguised", "plain"]);

    // Every category has its positives and its look-alikes.
    const positives = truth.flatMap((t) => (t.kind === "positives" ? [t] : []));
    for (const p of positives) assert.ok(p.ids.length > 0, `no ${p.category} positives`);
    const looks = new Set(truth.flatMap((t) => (t.kind === "lookalike" ? [t.look] : [])));
    for (const l of [
      "whale_one_card",
      "campus_nat",
      "cheap_device",
      "busybox_stock_rom",
      "contact_once",
      "virtual_number_user",
    ])
      assert.ok(looks.has(l), `no ${l} look-alike`);
  });
});

test("the same seed writes byte-identical files; another seed does not", async () => {
  const small = { durationMs: 8000, dirty: 0.01, rotateBytes: 64 * 1024 };
  const hashes = async (o: Partial<SimulateOptions>) => {
    const { dir } = await run({ ...small, ...o });
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else files.push(join(d, e.name));
      }
    };
    walk(dir);
    return files
      .sort()
      .map((f) => `${f.slice(dir.length)} ${createHash("sha256").update(readFileSync(f)).digest("hex")}`)
      .join("\n");
  };
  const a = await hashes({});
  assert.equal(await hashes({}), a);
  assert.notEqual(await hashes({ seed: 12 }), a);
});

test("--dirty changes nothing in the valid traffic", async () => {
  const clean = await run({ durationMs: 5000, dirty: 0 });
  const dirty = await run({ durationMs: 5000, dirty: 0.05 });
  assert.equal(dirty.records, clean.records);
  // Whole streams (dirty lines shift where files rotate), compared by digest: a diff of
  // thousands of lines would take assert minutes to print.
  const validDigest = (dir: string, stream: string) => {
    const valid = splitLines(streamBytes(dir, stream)).filter((l) => {
      try {
        return typeof JSON.parse(utf8.decode(l)).ts === "number" && !l.includes('"blob"');
      } catch {
        return false;
      }
    });
    return `${valid.length} ${createHash("sha256").update(Buffer.concat(valid)).digest("hex")}`;
  };
  for (const stream of ["gift-svc/access", "room-svc/behavior", "device-svc/device"]) {
    assert.equal(validDigest(dirty.dir, stream), validDigest(clean.dir, stream), stream);
  }
});

test("the calm scenario injects nothing; keep=1 keeps one rotated file; --events stops near its count", async () => {
  const r = await run({
    scenario: "calm",
    durationMs: 20_000,
    dirty: 0,
    rotateBytes: 128 * 1024,
    rotation: "rename",
    keep: 1,
    events: 30_000,
  });
  const truth = readFileSync(join(r.dir, "ground-truth.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).kind);
  assert.deepEqual([...new Set(truth)], ["run", "summary"]);
  assert.ok(r.records >= 30_000 && r.records < 30_000 + 2000, `${r.records} records`);
  assert.ok(existsSync(join(r.dir, "room-svc", "access.log.1")));
  assert.ok(!existsSync(join(r.dir, "room-svc", "access.log.2")));
});
