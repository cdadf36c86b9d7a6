// The fraud benchmark's rule sets: n rules drawn from 20 templates, a realistic mix of what a risk
// team writes (predicates, named lists, regular expressions, velocity counts and sums, distinct counts,
// sequences, an absence, rules joining the device report and the registration), keyed by uid, device,
// streamer, room and /24 network, so every stage of the pipeline works. Each rule has fixtures (the
// compiler requires them) and `weir rules test` passes on every set this writes.
//
// Rule i is template TEMPLATE_ORDER[i % 20] with variant floor(i / 20) % 5 of its parameters (another
// threshold, window, pattern or event type); past 100 rules the variants repeat under new ids, each
// with state of its own. The first 10 rules cover every kind.
//
//   node --import tsx bench/fraud/rules.ts --rules 100 --out /tmp/bench-rules
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";

const REPO_RULES = fileURLToPath(new URL("../../rules", import.meta.url));

type Ev = Record<string, unknown>;
interface Template {
  name: string;
  kind: string;
  rule(v: number): Record<string, unknown>;
  hit(v: number): Ev[];
  miss(v: number): Ev[];
}

const b = (at: string, type: string, extra: Ev = {}): Ev => ({ stream: "behavior", at, type, ...extra });
const c = (at: string, type: string, extra: Ev = {}): Ev => ({ stream: "coin", at, type, ...extra });
const d = (at: string, extra: Ev = {}): Ev => ({ stream: "device", at, ...extra });
const times = (n: number, f: (i: number) => Ev): Ev[] => Array.from({ length: n }, (_, i) => f(i));
const pick = <T>(xs: readonly T[], v: number): T => xs[v % xs.length] as T;

const METHODS = ["sms", "password", "wechat", "qq", "apple"];
const PATTERNS = ["(wx|vx)[_:：]?[0-9a-z_]{5,}", "qq[_:：]?[0-9]{5,}", "1[3-9][0-9]{9}", "https?://", "(加|\\+)v"];
const PATTERN_HITS = ["加我 wx_abc123 有福利", "qq:1234567", "电话 13812345678", "see http://x.cn", "加v 私聊"];
const DC_TYPES = ["LOGIN", "REGISTER", "FOLLOW", "ROOM_ENTER", "CHAT"];
const ROOT_SIGNS = [
  ["event.root.packages.exists(p, p in @root_packages)", { root: { packages: ["com.topjohnwu.magisk"] } }],
  ['event.root.suPaths.exists(p, p.matches("(^|/)su$"))', { root: { suPaths: ["/system/xbin/su"] } }],
  ["event.root.testKeys", { root: { testKeys: true } }],
  ["event.root.writableSystem", { root: { writableSystem: true } }],
  ["event.root.hookFrameworks.size() > 0", { root: { hookFrameworks: ["frida"] } }],
] as const;

const TEMPLATES: Record<string, Template> = {
  register_virtual: {
    name: "register_virtual",
    kind: "predicate + prefix list",
    rule: (v) => ({
      stream: "behavior",
      when: `is_register && virtual_number && event.method == "${pick(METHODS, v)}"`,
      entity: { type: "USER", field: "event.uid" },
    }),
    hit: (v) => [b("0s", "REGISTER", { phone: "+86 170 1234 5678", method: pick(METHODS, v) })],
    miss: (v) => [b("0s", "REGISTER", { phone: "13812345678", method: pick(METHODS, v) })],
  },
  chat_regex: {
    name: "chat_regex",
    kind: "regular expression",
    rule: (v) => ({
      stream: "behavior",
      when: `event.type == "CHAT" && event.text != null && fold(event.text).matches("${pick(PATTERNS, v).replaceAll("\\", "\\\\")}")`,
      entity: { type: "USER", field: "event.uid" },
    }),
    hit: (v) => [b("0s", "CHAT", { roomId: 700001, text: pick(PATTERN_HITS, v) })],
    miss: () => [b("0s", "CHAT", { roomId: 700001, text: "主播唱一首吧" })],
  },
  device_emulator: {
    name: "device_emulator",
    kind: "predicate + set list (device stream)",
    rule: (v) => ({
      stream: "device",
      when: `event.build.hardware in @emulator_hardware && size(event.sensors) <= ${2 + v}`,
      entity: { type: "DEVICE", field: "event.deviceId" },
    }),
    hit: () => [d("0s", { deviceId: "d-emu", build: { hardware: "goldfish" }, sensors: ["a", "b"] })],
    miss: () => [d("0s", { deviceId: "d-phone" })],
  },
  room_hops: {
    name: "room_hops",
    kind: "velocity (count by uid)",
    rule: (v) => ({
      stream: "behavior",
      when: 'event.type == "ROOM_ENTER"',
      aggregates: { enters: { fn: "count", by: "event.uid", within: "10m" } },
      condition: `enters >= ${20 + 5 * v}`,
      entity: { type: "USER", field: "event.uid" },
    }),
    hit: (v) => times(20 + 5 * v, (i) => b(`${i * 5}s`, "ROOM_ENTER", { roomId: 700000 + i })),
    miss: (v) => times(19 + 5 * v, (i) => b(`${i * 5}s`, "ROOM_ENTER", { roomId: 700000 + i })),
  },
  follow_burst: {
    name: "follow_burst",
    kind: "velocity (count by streamer)",
    rule: (v) => ({
      stream: "behavior",
      when: 'event.type == "FOLLOW" && event.targetUid != null',
      aggregates: { follows: { fn: "count", by: "event.targetUid", within: "10m" } },
      condition: `follows >= ${10 + 5 * v}`,
      entity: { type: "STREAMER", field: "event.targetUid" },
    }),
    hit: (v) => times(10 + 5 * v, (i) => b(`${i * 5}s`, "FOLLOW", { uid: 100000300 + i, targetUid: 100000007 })),
    miss: (v) => times(9 + 5 * v, (i) => b(`${i * 5}s`, "FOLLOW", { uid: 100000300 + i, targetUid: 100000007 })),
  },
  accounts_per_device: {
    name: "accounts_per_device",
    kind: "distinct count by device",
    rule: (v) => ({
      stream: "behavior",
      when: 'event.type == "LOGIN" || event.type == "REGISTER"',
      aggregates: { accounts: { fn: "distinct_count", of: "event.uid", by: "event.deviceId", within: "1h" } },
      condition: `accounts >= ${3 + v}`,
      entity: { type: "DEVICE", field: "event.deviceId" },
    }),
    hit: (v) => times(3 + v, (i) => b(`${i}m`, "LOGIN", { uid: 100000200 + i, deviceId: "d-farm" })),
    miss: (v) => times(3 + v, (i) => b(`${i}m`, "LOGIN", { uid: 100000200, deviceId: "d-home" })),
  },
  cards_per_uid: {
    name: "cards_per_uid",
    kind: "distinct count by uid",
    rule: (v) => ({
      stream: "coin",
      when: "is_recharge && event.cardToken != null",
      aggregates: { cards: { fn: "distinct_count", of: "event.cardToken", by: "event.uid", within: "24h" } },
      condition: `cards >= ${3 + v}`,
      entity: { type: "USER", field: "event.uid" },
    }),
    hit: (v) => times(3 + v, (i) => c(`${i * 10}m`, "RECHARGE", { cardToken: `card_${i}`, fiatAmountCents: 6480 })),
    miss: (v) => times(3 + v, (i) => c(`${i * 10}m`, "RECHARGE", { cardToken: "card_0", fiatAmountCents: 6480 })),
  },
  recharge_then_gift: {
    name: "recharge_then_gift",
    kind: "sequence by uid (one stream)",
    rule: (v) => ({
      sequence: {
        by: "event.uid",
        maxspan: "30m",
        steps: [
          { name: "recharge", stream: "coin", when: `is_recharge && event.amount >= ${1000 * (v + 1)}` },
          { name: "gift", stream: "coin", when: "is_gift && event.amount * 10 >= recharge.amount * 9" },
        ],
      },
      entity: { type: "USER", field: "event.uid" },
    }),
    hit: (v) => [
      c("0s", "RECHARGE", { amount: 1000 * (v + 1), balanceAfter: 1000 * (v + 1) }),
      c("5m", "GIFT", { amount: 1000 * (v + 1), balanceAfter: 0, counterpartUid: 100000462 }),
    ],
    miss: (v) => [
      c("0s", "RECHARGE", { amount: 1000 * (v + 1), balanceAfter: 1000 * (v + 1) }),
      c("45m", "GIFT", { amount: 1000 * (v + 1), balanceAfter: 0, counterpartUid: 100000462 }),
    ],
  },
  register_then_silent: {
    name: "register_then_silent",
    kind: "absence by uid",
    rule: (v) => ({
      absence: {
        by: "event.uid",
        within: `${5 + 5 * v}m`,
        after: { stream: "behavior", when: "is_register" },
        missing: { stream: "behavior", when: 'event.type == "ROOM_ENTER" || event.type == "CHAT"' },
      },
      entity: { type: "USER", field: "event.uid" },
    }),
    hit: () => [b("0s", "REGISTER", { uid: 100000600 })],
    miss: () => [b("0s", "REGISTER", { uid: 100000601 }), b("1m", "ROOM_ENTER", { uid: 100000601, roomId: 700001 })],
  },
  emulator_gift: {
    name: "emulator_gift",
    kind: "join: the device report",
    rule: (v) => ({
      stream: "coin",
      when: `is_gift && event.amount >= ${100 * (v + 1)} && device.build.hardware in @emulator_hardware`,
      entity: { type: "USER", field: "event.uid" },
    }),
    hit: (v) => [
      d("0s", { deviceId: "d-emu-9", build: { hardware: "ranchu" } }),
      c("1m", "GIFT", { deviceId: "d-emu-9", amount: 100 * (v + 1), counterpartUid: 100000462 }),
    ],
    miss: (v) => [
      d("0s", { deviceId: "d-phone-9" }),
      c("1m", "GIFT", { deviceId: "d-phone-9", amount: 100 * (v + 1), counterpartUid: 100000462 }),
    ],
  },
  chat_words: {
    name: "chat_words",
    kind: "word list (Aho-Corasick)",
    rule: (v) => ({
      stream: "behavior",
      when: `event.type == "CHAT" && event.text != null && size(event.text) >= ${2 + v} && fold(event.text) in @contact_words`,
      entity: { type: "USER", field: "event.uid" },
      cooldown: "10m",
    }),
    hit: () => [b("0s", "CHAT", { roomId: 700001, text: "主播好 加Ｖ 领福利" })],
    miss: () => [b("0s", "CHAT", { roomId: 700001, text: "主播唱一首吧 好听" })],
  },
  datacenter: {
    name: "datacenter",
    kind: "predicate + CIDR list",
    rule: (v) => ({
      stream: "behavior",
      when: `event.type == "${pick(DC_TYPES, v)}" && from_datacenter`,
      entity: { type: "USER", field: "event.uid" },
      cooldown: "1h",
    }),
    hit: (v) => [b("0s", pick(DC_TYPES, v), { ip: "47.100.3.7", roomId: 700001, targetUid: 100000007, text: "hi" })],
    miss: (v) => [b("0s", pick(DC_TYPES, v), { ip: "111.200.5.1", roomId: 700001, targetUid: 100000007, text: "hi" })],
  },
  device_root: {
    name: "device_root",
    kind: "predicate + comprehension (device stream)",
    rule: (v) => ({
      stream: "device",
      when: pick(ROOT_SIGNS, v)[0],
      entity: { type: "DEVICE", field: "event.deviceId" },
    }),
    hit: (v) => [d("0s", { deviceId: "d-root", ...pick(ROOT_SIGNS, v)[1] })],
    miss: () => [d("0s", { deviceId: "d-clean" })],
  },
  recharge_sum: {
    name: "recharge_sum",
    kind: "velocity (sum by uid)",
    rule: (v) => ({
      stream: "coin",
      when: "is_recharge && event.fiatAmountCents != null",
      aggregates: { cents: { fn: "sum", of: "event.fiatAmountCents", by: "event.uid", within: "1h" } },
      condition: `cents >= ${100000 * (v + 1)}`,
      entity: { type: "USER", field: "event.uid" },
    }),
    hit: (v) => times(2 * (v + 1), (i) => c(`${i}m`, "RECHARGE", { fiatAmountCents: 50000 })),
    miss: (v) => times(2 * (v + 1) - 1, (i) => c(`${i}m`, "RECHARGE", { fiatAmountCents: 50000 })),
  },
  room_chat_flood: {
    name: "room_chat_flood",
    kind: "velocity (count by room)",
    rule: (v) => ({
      stream: "behavior",
      when: 'event.type == "CHAT" && event.roomId != null && from_datacenter',
      aggregates: { chats: { fn: "count", by: "event.roomId", within: "1m" } },
      condition: `chats >= ${10 + 5 * v}`,
      entity: { type: "ROOM", field: "event.roomId" },
    }),
    hit: (v) =>
      times(10 + 5 * v, (i) =>
        b(`${i}s`, "CHAT", { uid: 100000800 + i, roomId: 700009, ip: "47.100.3.7", text: "hi" }),
      ),
    miss: (v) =>
      times(10 + 5 * v, (i) =>
        b(`${i}s`, "CHAT", { uid: 100000800 + i, roomId: 700009, ip: "111.200.5.1", text: "hi" }),
      ),
  },
  accounts_per_network: {
    name: "accounts_per_network",
    kind: "distinct count by /24",
    rule: (v) => ({
      stream: "behavior",
      when: "is_register",
      aggregates: {
        accounts: { fn: "distinct_count", of: "event.uid", by: "ipNetwork(event.ip, 24)", within: "1h" },
      },
      condition: `accounts >= ${5 + 2 * v}`,
      entity: { type: "IP", field: "ipNetwork(event.ip, 24)" },
    }),
    hit: (v) => times(5 + 2 * v, (i) => b(`${i}m`, "REGISTER", { uid: 100000900 + i, ip: `47.100.3.${10 + i}` })),
    miss: (v) => times(5 + 2 * v, (i) => b(`${i}m`, "REGISTER", { uid: 100000900 + i, ip: `111.${i}.5.1` })),
  },
  gifters_per_streamer: {
    name: "gifters_per_streamer",
    kind: "distinct count by streamer",
    rule: (v) => ({
      stream: "coin",
      when: "is_gift",
      aggregates: {
        gifters: { fn: "distinct_count", of: "event.uid", by: "event.counterpartUid", within: "10m" },
      },
      condition: `gifters >= ${15 + 5 * v}`,
      entity: { type: "STREAMER", field: "event.counterpartUid" },
    }),
    hit: (v) => times(15 + 5 * v, (i) => c(`${i * 10}s`, "GIFT", { uid: 100001000 + i, counterpartUid: 100000462 })),
    miss: (v) => times(15 + 5 * v, (i) => c(`${i * 10}s`, "GIFT", { uid: 100001000, counterpartUid: 100000462 })),
  },
  register_then_gift: {
    name: "register_then_gift",
    kind: "sequence by uid (two streams)",
    rule: (v) => ({
      sequence: {
        by: "event.uid",
        maxspan: "1h",
        steps: [
          { name: "register", stream: "behavior", when: "is_register" },
          { name: "gift", stream: "coin", when: `is_gift && event.amount >= ${500 * (v + 1)}` },
        ],
      },
      entity: { type: "USER", field: "event.uid" },
    }),
    hit: (v) => [b("0s", "REGISTER"), c("10m", "GIFT", { amount: 500 * (v + 1), counterpartUid: 100000462 })],
    miss: (v) => [b("0s", "REGISTER"), c("2h", "GIFT", { amount: 500 * (v + 1), counterpartUid: 100000462 })],
  },
  fresh_account_gift: {
    name: "fresh_account_gift",
    kind: "join: the registration",
    rule: (v) => ({
      stream: "coin",
      when: `is_gift && event.amount >= 500 && event.ts - registration.ts < ${3600000 * (v + 1)} && registration.phonePrefix in @virtual_prefixes`,
      entity: { type: "USER", field: "event.uid" },
    }),
    hit: () => [
      b("0s", "REGISTER", { phone: "17012345678" }),
      c("30m", "GIFT", { amount: 800, counterpartUid: 100000462 }),
    ],
    miss: () => [
      b("0s", "REGISTER", { phone: "13812345678" }),
      c("30m", "GIFT", { amount: 800, counterpartUid: 100000462 }),
    ],
  },
  emulator_gifts_to_streamer: {
    name: "emulator_gifts_to_streamer",
    kind: "join: the device report, counted by streamer",
    rule: (v) => ({
      stream: "coin",
      when: "is_gift && device.build.hardware in @emulator_hardware",
      aggregates: { gifts: { fn: "count", by: "event.counterpartUid", within: "1h" } },
      condition: `gifts >= ${3 + v}`,
      entity: { type: "STREAMER", field: "event.counterpartUid" },
    }),
    hit: (v) => [
      d("0s", { deviceId: "d-emu-1", build: { hardware: "ranchu" } }),
      ...times(3 + v, (i) =>
        c(`${1 + i}m`, "GIFT", { uid: 100001100 + i, deviceId: "d-emu-1", counterpartUid: 100000462 }),
      ),
    ],
    miss: (v) => [
      d("0s", { deviceId: "d-phone-1" }),
      ...times(3 + v, (i) =>
        c(`${1 + i}m`, "GIFT", { uid: 100001100 + i, deviceId: "d-phone-1", counterpartUid: 100000462 }),
      ),
    ],
  },
};

/** Template order: the first ten cover every kind of rule. */
export const TEMPLATE_ORDER = [
  "register_virtual",
  "chat_regex",
  "device_emulator",
  "room_hops",
  "follow_burst",
  "accounts_per_device",
  "cards_per_uid",
  "recharge_then_gift",
  "register_then_silent",
  "emulator_gift",
  "chat_words",
  "datacenter",
  "device_root",
  "recharge_sum",
  "room_chat_flood",
  "accounts_per_network",
  "gifters_per_streamer",
  "register_then_gift",
  "fresh_account_gift",
  "emulator_gifts_to_streamer",
];

/** The id of rule i of a benchmark set, and its template and variant. */
export function benchRule(i: number): { id: string; template: string; variant: number } {
  const template = TEMPLATE_ORDER[i % TEMPLATE_ORDER.length] as string;
  const variant = Math.floor(i / TEMPLATE_ORDER.length) % 5;
  const copy = Math.floor(i / (TEMPLATE_ORDER.length * 5));
  return { id: `bench.${template}.v${variant}${copy > 0 ? `.c${copy}` : ""}`, template, variant };
}

/** The YAML of a rule set of n rules (one file), with the repository's lists and macros beside it. */
export function writeBenchRules(dir: string, n: number): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(join(REPO_RULES, "lists"), join(dir, "lists"), { recursive: true });
  cpSync(join(REPO_RULES, "macros.yaml"), join(dir, "macros.yaml"));
  const rules = Array.from({ length: n }, (_, i) => {
    const { id, template, variant } = benchRule(i);
    const t = TEMPLATES[template] as Template;
    return {
      id,
      version: 1,
      category: "bench",
      owner: "bench",
      status: "active",
      severity: "MEDIUM",
      score: 50,
      action: "REVIEW",
      description: `${t.kind}, variant ${variant}`,
      ...t.rule(variant),
      explanation: `${t.name} v${variant} fired`,
      falsepositives: ["a benchmark rule"],
      fixtures: [
        { name: "fires", expect: "hit", events: t.hit(variant) },
        { name: "does not fire", expect: "no_hit", events: t.miss(variant) },
      ],
    };
  });
  // At most 200 rules a file (the compiler's limit).
  for (let f = 0; f * 200 < rules.length; f++)
    writeFileSync(
      join(dir, `bench-${f}.yaml`),
      stringify({ rules: rules.slice(f * 200, f * 200 + 200) }, { lineWidth: 0 }),
    );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string, dflt: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? (process.argv[i + 1] as string) : dflt;
  };
  const dir = arg("out", "/tmp/weir-bench-rules");
  const n = Number(arg("rules", "100"));
  writeBenchRules(dir, n);
  console.log(`${n} rules in ${dir}`);
}
