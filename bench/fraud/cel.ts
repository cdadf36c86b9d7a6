// The two CEL libraries for JavaScript, measured on the fraud rules' predicates over the simulator's
// events: compile time per predicate, evaluation time per event, bytes allocated per evaluation, and
// the regular-expression engines behind `matches()` (JS RegExp, re2js, the `re2` native module) on a
// realistic chat pattern and on a catastrophic one. Every predicate's result is checked to be the
// same in both libraries on every event.
//
//   weir simulate --seed 1 --duration 60s --out /tmp/fraud-sim
//   node --expose-gc --max-semi-space-size=256 --import tsx bench/fraud/cel.ts --sim /tmp/fraud-sim
//
// --expose-gc and a large young generation let the allocation figure be read as the heap's growth
// over a batch in which no collection runs (checked: a batch with a collection is measured again).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { parse as bufParse, plan as bufPlan, celEnv, isCelError } from "@bufbuild/cel";
import { Environment } from "@marcbachmann/cel-js";
import { RE2JS } from "re2js";
import { EXPRESSION_LIMITS, RE2_FUNCTION, snapshotEnvironment } from "../../pipelines/fraud/cel/environment.ts";
import { PatternTable } from "../../pipelines/fraud/cel/regex.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { SchemaName } from "../../schemas/types.generated.ts";
import { benchFlags } from "../support/flags.ts";

const { flag, num } = benchFlags();
const simDir = flag("sim") ?? "/tmp/fraud-sim";
const rounds = num("rounds", 5);

type Stream = "behavior" | "coin" | "device";
const FILES: Record<Stream, { files: string[]; schema: SchemaName }> = {
  behavior: {
    files: ["user-svc/behavior.log", "room-svc/behavior.log", "im-svc/behavior.log", "social-svc/behavior.log"],
    schema: "BehaviorEvent",
  },
  coin: { files: ["gift-svc/coin.log", "pay-svc/coin.log"], schema: "CoinTxn" },
  device: { files: ["device-svc/device.log"], schema: "DeviceReport" },
};

// Records as the pipeline sees them: decoded from Avro, so optional fields are present as null.
function load(stream: Stream): object[] {
  const { files, schema } = FILES[stream];
  const codec = codecFor(schema);
  const out: object[] = [];
  for (const f of files) {
    for (const line of readFileSync(join(simDir, f), "utf8").split("\n")) {
      if (line === "") continue;
      try {
        out.push(codec.decode(codec.encode(JSON.parse(line))) as object);
      } catch {
        // the simulator's bad lines (--dirty) are not events
      }
    }
  }
  return out;
}

const PREDICATES: Array<{ name: string; stream: Stream; cel: string }> = [
  {
    name: "virtual-phone register (regex)",
    stream: "behavior",
    cel: String.raw`event.type == "REGISTER" && event.phone != null && event.phone.matches("^(\\+?86[- ]?)?1(70|71|62|65|67)")`,
  },
  {
    name: "contact details in chat (regex)",
    stream: "behavior",
    cel: String.raw`event.type == "CHAT" && event.text != null && event.text.matches("(wx|vx|微信|[qQ]{2})[_:： ]?[0-9a-zA-Z_]{5,}|1[3-9][0-9]{9}|https?://")`,
  },
  {
    name: "emulator build",
    stream: "device",
    cel: `event.build.hardware in ["goldfish", "ranchu", "vbox86"] || event.build.product.startsWith("sdk_gphone") || (size(event.sensors) < 4 && !event.telephony.imeiPresent)`,
  },
  {
    name: "root packages (comprehension)",
    stream: "device",
    cel: `event.root.packages.exists(p, p in ["com.topjohnwu.magisk", "eu.chainfire.supersu", "me.weishu.kernelsu"]) || event.root.suPaths.exists(p, !p.endsWith("/busybox"))`,
  },
  {
    name: "emulator score (arithmetic)",
    stream: "device",
    cel: `(event.battery.level == 100 && event.battery.charging ? 1 : 0) + (event.telephony.imsiPresent ? 0 : 1) + (size(event.sensors) < 6 ? 1 : 0) >= 2`,
  },
  {
    name: "big card recharge",
    stream: "coin",
    cel: `event.type == "RECHARGE" && event.paymentChannel == "card" && event.fiatAmountCents > 50000`,
  },
  {
    name: "gift of nearly all coins",
    stream: "coin",
    cel: `event.type == "GIFT" && event.amount >= 100 && event.balanceAfter * 10.0 < event.amount`,
  },
];

// A caching RE2 for @bufbuild/cel, which otherwise compiles the pattern on every call.
const re2jsCache = new Map<string, RE2JS>();
const cachedRe2 = {
  compile(pattern: string) {
    let re = re2jsCache.get(pattern);
    if (!re) {
      re = RE2JS.compile(pattern);
      re2jsCache.set(pattern, re);
    }
    const compiled = re;
    return { test: (s: string) => compiled.test(s) };
  },
};

interface Compiled {
  run(ctx: { event: object }): unknown;
  /** Reads plain objects only (not avsc's record instances): fed a JSON copy of each event. */
  plain?: boolean;
}

// cel-js as the fraud engine builds it: the events' Avro record types registered (the decoded
// records are read as they are), mixed int/double numbers, lists, and RE2 behind matches().
const patterns = new PatternTable();
const snapshot = snapshotEnvironment([], patterns);
const typedEnv: Record<Stream, Environment> = {
  behavior: snapshot.clone().registerVariable("event", "BehaviorEvent"),
  coin: snapshot.clone().registerVariable("event", "CoinTxn"),
  device: snapshot.clone().registerVariable("event", "DeviceReport"),
};
const streamOf = new Map(PREDICATES.map((p) => [p.cel, p.stream]));

function celJs(env: (src: string) => Environment, rewrite: (src: string) => string, plain = false) {
  return {
    compile(src: string): Compiled {
      const text = rewrite(src);
      const f = env(src).parse(text);
      const checked = f.check();
      if (!checked.valid) throw checked.error;
      return { run: (ctx) => f(ctx), plain };
    },
  };
}
const toRe2 = (src: string) => {
  for (const m of src.matchAll(/\.matches\("((?:[^"\\]|\\.)*)"\)/g)) patterns.add(JSON.parse(`"${m[1]}"`));
  return src.replaceAll(".matches(", `.${RE2_FUNCTION}(`);
};

const ENGINES: Record<string, { compile(src: string): Compiled }> = {
  "cel-js (map, JS RegExp)": celJs(
    () => new Environment({ limits: EXPRESSION_LIMITS }).registerVariable("event", "map"),
    (s) => s,
    true,
  ),
  "cel-js (typed, RE2)": celJs((src) => typedEnv[streamOf.get(src) as Stream], toRe2),
  "bufbuild/cel": {
    compile(src) {
      const p = bufPlan(celEnv(), bufParse(src));
      return {
        run(ctx) {
          const r = p(ctx as never);
          if (isCelError(r)) throw new Error(r.message);
          return r;
        },
        plain: true,
      };
    },
  },
  "bufbuild/cel + cached re2": {
    compile(src) {
      const p = bufPlan(celEnv({ re2: cachedRe2 }), bufParse(src));
      return {
        run(ctx) {
          const r = p(ctx as never);
          if (isCelError(r)) throw new Error(r.message);
          return r;
        },
        plain: true,
      };
    },
  },
};

const gc = (globalThis as { gc?: () => void }).gc;
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function compileTime(engine: { compile(src: string): Compiled }, src: string): number {
  const n = 200;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) engine.compile(src);
  return Number(process.hrtime.bigint() - t0) / n / 1000; // µs
}

/** ns per evaluation and bytes allocated per evaluation, over `records`. */
function evalCost(c: Compiled, records: object[], reps: number): { ns: number; bytes: number } {
  const ctx = { event: records[0] as object };
  const times: number[] = [];
  const bytes: number[] = [];
  for (let r = 0; r < rounds; r++) {
    gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < reps; k++) {
      for (const rec of records) {
        ctx.event = rec;
        c.run(ctx);
      }
    }
    const dt = Number(process.hrtime.bigint() - t0);
    const heap1 = process.memoryUsage().heapUsed;
    const n = reps * records.length;
    times.push(dt / n);
    // A scavenge during the batch makes the growth an underestimate: then it is not reported.
    if (heap1 > heap0) bytes.push((heap1 - heap0) / n);
  }
  return { ns: median(times), bytes: bytes.length > 0 ? median(bytes) : Number.NaN };
}

const data: Record<Stream, object[]> = { behavior: load("behavior"), coin: load("coin"), device: load("device") };
const plainData = Object.fromEntries(
  Object.entries(data).map(([k, v]) => [k, v.map((r) => JSON.parse(JSON.stringify(r)))]),
) as Record<Stream, object[]>;
console.log(
  `events: behavior ${data.behavior.length}, coin ${data.coin.length}, device ${data.device.length} (${simDir})`,
);

// 1. Same results.
for (const p of PREDICATES) {
  const compiled = Object.entries(ENGINES).map(([name, e]) => [name, e.compile(p.cel)] as const);
  let hits = 0;
  for (const [i, rec] of data[p.stream].entries()) {
    const results = compiled.map(([, c]) => c.run({ event: c.plain ? (plainData[p.stream][i] as object) : rec }));
    if (new Set(results).size !== 1)
      throw new Error(`${p.name}: results differ on ${JSON.stringify(rec)}: ${results.join(" / ")}`);
    if (results[0] === true) hits++;
  }
  console.log(`same results: ${p.name}: ${hits} hits of ${data[p.stream].length}`);
}

// 2. Compile and evaluation cost.
console.log("\n| predicate | library | compile µs | eval ns/event | bytes/event |\n|---|---|---:|---:|---:|");
for (const p of PREDICATES) {
  for (const [name, e] of Object.entries(ENGINES)) {
    const compile = compileTime(e, p.cel);
    const c = e.compile(p.cel);
    const records = (c.plain ? plainData : data)[p.stream];
    const reps = Math.max(1, Math.round(200_000 / records.length));
    evalCost(c, records, 1); // warm-up
    const { ns, bytes } = evalCost(c, records, reps);
    console.log(
      `| ${p.name} | ${name} | ${compile.toFixed(1)} | ${ns.toFixed(0)} | ${Number.isNaN(bytes) ? "n/a" : bytes.toFixed(0)} |`,
    );
  }
}

// 3. Regular-expression engines.
const require = createRequire(import.meta.url);
let NativeRE2: (new (p: string) => { test(s: string): boolean }) | undefined;
try {
  NativeRE2 = require("re2");
} catch {
  // the native module is optional: it needs a compiler to install (see bench/results/fraud-cel.md)
}
const chat = data.behavior.flatMap((r) => ((r as { text?: string | null }).text ? [(r as { text: string }).text] : []));
const chatPattern = String.raw`(wx|vx|微信|[qQ]{2})[_:： ]?[0-9a-zA-Z_]{5,}|1[3-9][0-9]{9}|https?://`;
const regexEngines: Array<[string, (p: string) => { test(s: string): boolean }]> = [
  ["JS RegExp (backtracking)", (p) => new RegExp(p)],
  ["re2js", (p) => RE2JS.compile(p)],
  ...(NativeRE2
    ? ([["re2 (native)", (p: string) => new (NativeRE2 as never as new (p: string) => RegExp)(p)]] as never)
    : []),
];
console.log(
  `\n| regex engine | chat pattern ns/text (${chat.length} texts) | (a+)+$ on 'a'x28+'!' ms |\n|---|---:|---:|`,
);
for (const [name, make] of regexEngines) {
  const re = make(chatPattern);
  const reps = Math.max(1, Math.round(100_000 / chat.length));
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < reps; k++) for (const s of chat) re.test(s);
  const ns = Number(process.hrtime.bigint() - t0) / (reps * chat.length);
  const evil = make("(a+)+$");
  const t1 = process.hrtime.bigint();
  evil.test(`${"a".repeat(28)}!`);
  const ms = Number(process.hrtime.bigint() - t1) / 1e6;
  console.log(`| ${name} | ${ns.toFixed(0)} | ${ms.toFixed(2)} |`);
}
