// The four kinds of named list a rule can test a value against (`x in @name`): a set of exact values,
// a prefix table (longest prefix wins, with its label), CIDR ranges (IPv4 and IPv6, with their
// labels), and a word list matched with Aho-Corasick. Each is built once per rule-set snapshot and
// answers in time bounded by the value's length, never by the list's size.
import AhoCorasick from "modern-ahocorasick";

export type ListKind = "set" | "prefix" | "cidr" | "words";

/** A set of exact strings. Numbers are matched by their decimal form (uid lists). */
export class StringSet {
  readonly kind = "set";
  private readonly values: Set<string>;
  constructor(
    readonly name: string,
    values: Iterable<string>,
  ) {
    this.values = new Set(values);
  }
  get size(): number {
    return this.values.size;
  }
  has(value: string | number): boolean {
    return this.values.has(typeof value === "number" ? String(value) : value);
  }
}

/** Longest-prefix match over strings (phone-number ranges, user agents, package names). */
export class PrefixTable {
  readonly kind = "prefix";
  private readonly byPrefix = new Map<string, string>();
  /** The distinct prefix lengths, longest first: a lookup tries each once. */
  private readonly lengths: number[];
  constructor(
    readonly name: string,
    entries: Iterable<readonly [prefix: string, label: string]>,
  ) {
    for (const [prefix, label] of entries) this.byPrefix.set(prefix, label);
    this.lengths = [...new Set([...this.byPrefix.keys()].map((p) => p.length))].sort((a, b) => b - a);
  }
  get size(): number {
    return this.byPrefix.size;
  }
  /** The longest prefix of `value` in the table, or undefined. */
  longest(value: string): string | undefined {
    for (const n of this.lengths) {
      if (n > value.length) continue;
      const p = value.slice(0, n);
      if (this.byPrefix.has(p)) return p;
    }
    return undefined;
  }
  has(value: string): boolean {
    return this.longest(value) !== undefined;
  }
  /** The label of the longest matching prefix, "" when none matches. */
  label(value: string): string {
    const p = this.longest(value);
    return p === undefined ? "" : (this.byPrefix.get(p) as string);
  }
}

/** IPv4 and IPv6 ranges. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is looked up as IPv4. */
export class CidrSet {
  readonly kind = "cidr";
  private readonly v4 = new Map<number, Map<number, string>>();
  private readonly v6 = new Map<number, Map<bigint, string>>();
  private readonly v4Lengths: number[];
  private readonly v6Lengths: number[];
  private count = 0;
  constructor(
    readonly name: string,
    entries: Iterable<readonly [cidr: string, label: string]>,
  ) {
    for (const [cidr, label] of entries) {
      const parsed = parseCidr(cidr);
      if (!parsed) throw new Error(`not a CIDR range: ${cidr}`);
      if (parsed.v === 4) {
        const byNet = this.v4.get(parsed.bits) ?? new Map<number, string>();
        byNet.set(parsed.net as number, label);
        this.v4.set(parsed.bits, byNet);
      } else {
        const byNet = this.v6.get(parsed.bits) ?? new Map<bigint, string>();
        byNet.set(parsed.net as bigint, label);
        this.v6.set(parsed.bits, byNet);
      }
      this.count++;
    }
    this.v4Lengths = [...this.v4.keys()].sort((a, b) => b - a);
    this.v6Lengths = [...this.v6.keys()].sort((a, b) => b - a);
  }
  get size(): number {
    return this.count;
  }
  /** The label of the most specific range holding `address`; undefined when none does or it is no address. */
  lookup(address: string): string | undefined {
    const a = parseAddress(address);
    if (!a) return undefined;
    if (a.v === 4) {
      for (const bits of this.v4Lengths) {
        const hit = this.v4.get(bits)?.get(maskV4(a.value as number, bits));
        if (hit !== undefined) return hit;
      }
      return undefined;
    }
    for (const bits of this.v6Lengths) {
      const hit = this.v6.get(bits)?.get(maskV6(a.value as bigint, bits));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
  has(address: string): boolean {
    return this.lookup(address) !== undefined;
  }
  label(address: string): string {
    return this.lookup(address) ?? "";
  }
}

/** Words found anywhere in a text (Aho-Corasick: one pass over the text, whatever the list's size). */
export class WordList {
  readonly kind = "words";
  private readonly matcher: AhoCorasick;
  private readonly words: string[];
  constructor(
    readonly name: string,
    words: Iterable<string>,
  ) {
    this.words = [...new Set(words)];
    this.matcher = new AhoCorasick(this.words);
  }
  get size(): number {
    return this.words.length;
  }
  has(text: string): boolean {
    return this.words.length > 0 && this.matcher.match(text);
  }
  /** The distinct words found in `text`, in order of first appearance. */
  find(text: string): string[] {
    if (this.words.length === 0) return [];
    const seen = new Set<string>();
    for (const m of this.matcher.search(text)) seen.add(m.pattern);
    return [...seen];
  }
}

export type NamedList = StringSet | PrefixTable | CidrSet | WordList;

// Addresses ----------------------------------------------------------------------------------------

interface Address {
  v: 4 | 6;
  value: number | bigint;
}

export function parseAddress(text: string): Address | undefined {
  if (text.length > 64) return undefined;
  const v4 = parseV4(text);
  if (v4 !== undefined) return { v: 4, value: v4 };
  const v6 = parseV6(text);
  if (v6 === undefined) return undefined;
  // ::ffff:a.b.c.d is an IPv4 address
  if (v6 >> 32n === 0xffffn) return { v: 4, value: Number(v6 & 0xffffffffn) };
  return { v: 6, value: v6 };
}

function parseV4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255 || (p.length > 1 && p[0] === "0")) return undefined;
    value = value * 256 + n;
  }
  return value;
}

function parseV6(text: string): bigint | undefined {
  const zone = text.indexOf("%");
  const s = zone >= 0 ? text.slice(0, zone) : text;
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string): number[] | undefined => {
    if (h === "") return [];
    const out: number[] = [];
    const parts = h.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] as string;
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseV4(p);
        if (v4 === undefined) return undefined;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(Number.parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0] as string);
  const tail = halves.length === 2 ? groups(halves[1] as string) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  let value = 0n;
  for (const g of all) value = (value << 16n) | BigInt(g);
  return value;
}

function maskV4(value: number, bits: number): number {
  if (bits === 0) return 0;
  const keep = 2 ** 32 - 2 ** (32 - bits);
  // >>> 0 keeps it unsigned
  return ((value & keep) >>> 0) as number;
}

function maskV6(value: bigint, bits: number): bigint {
  if (bits === 0) return 0n;
  const keep = ((1n << BigInt(bits)) - 1n) << BigInt(128 - bits);
  return value & keep;
}

/** `a.b.c.d/n` or `x::y/n`; a bare address is its own /32 or /128. Host bits must be zero. */
export function parseCidr(text: string): { v: 4 | 6; net: number | bigint; bits: number } | undefined {
  const slash = text.indexOf("/");
  const addr = parseAddress(slash >= 0 ? text.slice(0, slash) : text);
  if (!addr) return undefined;
  // An IPv4-mapped range is written as IPv4, so its bits count from the IPv4 address.
  const max = addr.v === 4 ? 32 : 128;
  const bitsText = slash >= 0 ? text.slice(slash + 1) : String(max);
  if (!/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  if (bits > max) return undefined;
  if (addr.v === 4) {
    const net = maskV4(addr.value as number, bits);
    return net === addr.value ? { v: 4, net, bits } : undefined;
  }
  const net = maskV6(addr.value as bigint, bits);
  return net === addr.value ? { v: 6, net, bits } : undefined;
}

/** The network of `address` with `bits` bits kept, as text (`47.100.3.0/24`); "" for no address. */
export function networkOf(address: string, bits: number): string {
  const a = parseAddress(address);
  if (!a) return "";
  if (a.v === 4) {
    const b = Math.max(0, Math.min(32, bits));
    const n = maskV4(a.value as number, b);
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${b}`;
  }
  const b = Math.max(0, Math.min(128, bits));
  const n = maskV6(a.value as bigint, b);
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  return `${compressV6(groups)}/${b}`;
}

function compressV6(groups: string[]): string {
  // the longest run of zero groups becomes "::"
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}
