// The CEL environment of one rule-set snapshot: the event types of the streams (from their Avro
// schemas), the enrichment types, the named lists as constants, the functions a rule may call, and
// RE2 in place of JavaScript regular expressions. Built once per snapshot; each rule's variables go
// into a clone (`ruleEnvironment`).
import { Environment } from "@marcbachmann/cel-js";
import { schemaRegistry } from "../../../schemas/registry.ts";
import type { SchemaName } from "../../../schemas/types.generated.ts";
import { CidrSet, type NamedList, networkOf, PrefixTable, StringSet, WordList } from "../lists/matchers.ts";
import { phoneDigits } from "../normalize.ts";
import { celRecordTypes } from "./avro-types.ts";
import type { PatternTable } from "./regex.ts";

/** The streams a rule can read, with their topic and record schema. */
export const STREAMS = {
  behavior: { topic: "events.behavior", schema: "BehaviorEvent" },
  coin: { topic: "events.coin", schema: "CoinTxn" },
  device: { topic: "events.device", schema: "DeviceReport" },
  access: { topic: "logs.access", schema: "AccessLog" },
} as const satisfies Record<string, { topic: string; schema: SchemaName }>;
export type StreamName = keyof typeof STREAMS;
export const STREAM_NAMES = Object.keys(STREAMS) as StreamName[];

/**
 * What the registration table holds per uid (from the user's REGISTER event): never the phone
 * number itself, only its operator prefix and a keyed hash.
 */
export class RegistrationFacts {
  constructor(
    readonly uid: number,
    /** When the account was registered (event time, ms). */
    readonly ts: number,
    /** The number's first digits after normalisation (e.g. 170), "" when none was given. */
    readonly phonePrefix: string,
    /** A keyed hash of the normalised number: the same number gives the same hash. */
    readonly phoneHash: string,
    readonly deviceId: string,
    readonly ip: string,
    /** The registering address's network: /24 for IPv4, /64 for IPv6. */
    readonly ipNetwork: string,
    readonly method: string,
  ) {}
}

export const REGISTRATION_FIELDS: Record<keyof RegistrationFacts, string> = {
  uid: "double",
  ts: "double",
  phonePrefix: "string",
  phoneHash: "string",
  deviceId: "string",
  ip: "string",
  ipNetwork: "string",
  method: "string",
};

/** Structural limits of an expression, applied while parsing (before any evaluation). */
export const EXPRESSION_LIMITS = {
  maxAstNodes: 2000,
  maxDepth: 48,
  maxListElements: 256,
  maxMapEntries: 64,
  maxCallArguments: 8,
};

/** The CEL type name of each stream's event record. */
export function eventTypeName(stream: StreamName): string {
  return STREAMS[stream].schema;
}

export const LIST_TYPE: Record<NamedList["kind"], string> = {
  set: "StringSet",
  prefix: "PrefixTable",
  cidr: "CidrSet",
  words: "WordList",
};

/** The name a list `@name` has inside CEL: same length, so positions in errors stay exact. */
export function listIdentifier(name: string): string {
  return `_${name}`;
}

/** The function every `matches` is routed to (same length as `matches`, for the same reason). */
export const RE2_FUNCTION = "re2Test";

/** The record types a rule can read (the streams' events and what they nest), each once. */
function streamRecordTypes() {
  const registry = schemaRegistry();
  const seen = new Map<string, ReturnType<typeof celRecordTypes>[number]>();
  for (const { schema } of Object.values(STREAMS))
    for (const t of celRecordTypes(registry.current(schema).type)) if (!seen.has(t.name)) seen.set(t.name, t);
  return [...seen.values()];
}

/** The constructor of each record type of the environment, by its CEL name (for cel/closure.ts). */
export function recordConstructors(): Map<string, unknown> {
  const out = new Map<string, unknown>(streamRecordTypes().map((t) => [t.name, t.ctor]));
  out.set("Registration", RegistrationFacts);
  return out;
}

export function snapshotEnvironment(lists: Iterable<NamedList>, patterns: PatternTable): Environment {
  const env = new Environment({
    limits: EXPRESSION_LIMITS,
    homogeneousAggregateLiterals: false,
  });
  for (const t of streamRecordTypes()) env.registerType(t.name, { ctor: t.ctor as never, fields: t.fields as never });
  env.registerType("Registration", { ctor: RegistrationFacts as never, fields: REGISTRATION_FIELDS as never });

  // Numbers from events are doubles; literals in rules are ints. CEL refuses to mix them; an analyst
  // writing `event.uid == 100` or `event.amount * 10` means the obvious thing.
  const num = (v: number | bigint) => Number(v);
  env.registerOperator("double == int", (a: number, b: bigint) => a === num(b));
  for (const [op, f] of [
    ["+", (a: number, b: number) => a + b],
    ["-", (a: number, b: number) => a - b],
    ["*", (a: number, b: number) => a * b],
    ["/", (a: number, b: number) => a / b],
  ] as const) {
    env.registerOperator(`double ${op} int`, (a: number, b: bigint) => f(a, num(b)));
    env.registerOperator(`int ${op} double`, (a: bigint, b: number) => f(num(a), b));
  }
  env.registerOperator("double in list<int>", (a: number, list: bigint[]) => list.some((b) => num(b) === a));

  // Named lists.
  env.registerType("StringSet", StringSet as never);
  env.registerType("PrefixTable", PrefixTable as never);
  env.registerType("CidrSet", CidrSet as never);
  env.registerType("WordList", WordList as never);
  env.registerOperator("string in StringSet", (v: string, s: StringSet) => s.has(v));
  env.registerOperator("double in StringSet", (v: number, s: StringSet) => s.has(v));
  env.registerOperator("string in PrefixTable", (v: string, t: PrefixTable) => t.has(v));
  env.registerOperator("string in CidrSet", (v: string, t: CidrSet) => t.has(v));
  env.registerOperator("string in WordList", (v: string, t: WordList) => t.has(v));
  env.registerFunction("PrefixTable.label(string): string", (t: PrefixTable, v: string) => t.label(v));
  env.registerFunction("PrefixTable.longest(string): string", (t: PrefixTable, v: string) => t.longest(v) ?? "");
  env.registerFunction("CidrSet.label(string): string", (t: CidrSet, v: string) => t.label(v));
  env.registerFunction("WordList.find(string): list<string>", (t: WordList, v: string) => t.find(v));
  for (const list of lists) env.registerConstant(listIdentifier(list.name), LIST_TYPE[list.kind], list);

  // Normalising functions the packs need.
  env.registerFunction("phoneDigits(string): string", (s: string) => phoneDigits(s));
  env.registerFunction("ipNetwork(string, int): string", (ip: string, bits: bigint) => networkOf(ip, Number(bits)));
  env.registerFunction("fold(string): string", (s: string) => foldText(s));

  // RE2 for `matches`.
  env.registerFunction(`string.${RE2_FUNCTION}(string): bool`, (s: string, p: string) => patterns.test(s, p));
  env.registerFunction(`${RE2_FUNCTION}(string, string): bool`, (s: string, p: string) => patterns.test(s, p));
  return env;
}

/**
 * NFKC (full-width letters and digits to ASCII), lower case, no white space: how spam is compared.
 * The last text and its folding are kept: the rules of a pack fold the same chat line one after the
 * other (a word list and several patterns), and folding allocates three strings.
 */
export function foldText(s: string): string {
  if (s === lastFolded) return lastFolding;
  const out = s.normalize("NFKC").toLowerCase().replace(/\s+/gu, "");
  lastFolded = s;
  lastFolding = out;
  return out;
}
let lastFolded: string | null = null;
let lastFolding = "";
