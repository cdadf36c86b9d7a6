// Index names for time-based indices: `<prefix>-<key>-YYYY.MM.DD`, one index per key (a service)
// and UTC day of the event time. Daily indices are what retention deletes whole (retention.ts), and
// per-key indices keep one noisy service from making every other one's searches slower.
//
// Elasticsearch's rules for an index name: lowercase; none of \ / * ? " < > | , # : or a space; not
// starting with -, _ or +; not . or ..; at most 255 bytes. A key comes from the data (a service name
// a service chose), so it is made to fit; a prefix comes from configuration, so it is checked.

const DAY_MS = 86_400_000;
/** Characters Elasticsearch refuses anywhere in an index name. */
const INVALID_CHARS = /[\\/*?"<>|,#: ]/g;
/** A key's longest part of a name, in UTF-8 bytes: the whole name must stay within 255. */
export const MAX_KEY_BYTES = 100;
const MAX_PREFIX_BYTES = 100;
/** Distinct keys whose sanitized form is remembered; past this the cache starts over. */
const KEY_CACHE_SIZE = 10_000;

export class IndexNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IndexNameError";
  }
}

/** A key (e.g. a service name) as a part of an index name: lowercased, refused characters as `_`, never empty. */
export function sanitizeIndexPart(part: string): string {
  let s = part.toLowerCase().replace(INVALID_CHARS, "_");
  if (Buffer.byteLength(s) > MAX_KEY_BYTES) {
    // Cut on a code point, not a byte: a name must stay valid UTF-8.
    const points = Array.from(s);
    while (Buffer.byteLength(s) > MAX_KEY_BYTES) {
      points.pop();
      s = points.join("");
    }
  }
  return s === "" || s === "." || s === ".." ? "_unknown" : s;
}

/** Why a configured prefix cannot start index names, or null when it can. */
export function prefixProblem(prefix: string): string | null {
  if (prefix === "") return "it is empty";
  if (prefix !== prefix.toLowerCase()) return "it has uppercase letters";
  if (/[\\/*?"<>|,#: ]/.test(prefix)) return 'it has one of \\ / * ? " < > | , # : or a space';
  if (/^[-_+.]/.test(prefix)) return "it starts with -, _, + or .";
  if (Buffer.byteLength(prefix) > MAX_PREFIX_BYTES) return `it is longer than ${MAX_PREFIX_BYTES} bytes`;
  return null;
}

/** The UTC day of `ts` (ms since the epoch) as YYYY.MM.DD. */
export function utcDay(ts: number): string {
  const d = new Date(ts);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + 1;
  const day = d.getUTCDate();
  return `${y}.${m < 10 ? "0" : ""}${m}.${day < 10 ? "0" : ""}${day}`;
}

const DATE_SUFFIX = /-(\d{4})\.(\d{2})\.(\d{2})$/;

/** Start (ms, UTC) of the day a daily index name ends with (`...-2026.11.20`), or null when it ends with no real date. */
export function dailyIndexDay(name: string): number | null {
  const m = DATE_SUFFIX.exec(name);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = Date.UTC(y, mo - 1, d);
  const back = new Date(t);
  return back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d ? t : null;
}

/**
 * Names daily indices `<prefix>-<key>-YYYY.MM.DD`. Called once per document, so the sanitized keys
 * and the current day's text are remembered: most documents of a stream fall on the same day.
 */
export class DailyIndexNamer {
  private readonly keys = new Map<string, string>();
  private dayStart = Number.NaN;
  private dayText = "";

  constructor(readonly prefix: string) {
    const problem = prefixProblem(prefix);
    if (problem) {
      throw new IndexNameError(
        `index prefix ${JSON.stringify(prefix)} cannot start an Elasticsearch index name: ${problem} (e.g. "logs")`,
      );
    }
  }

  /** The index of `key`'s documents on the UTC day of `ts`. Throws for a time that is not a number. */
  name(key: string, ts: number): string {
    let part = this.keys.get(key);
    if (part === undefined) {
      if (this.keys.size >= KEY_CACHE_SIZE) this.keys.clear();
      part = sanitizeIndexPart(key);
      this.keys.set(key, part);
    }
    return `${this.prefix}-${part}-${this.day(ts)}`;
  }

  /** The pattern matching every index this namer makes: `<prefix>-*`. */
  get pattern(): string {
    return `${this.prefix}-*`;
  }

  private day(ts: number): string {
    if (ts >= this.dayStart && ts < this.dayStart + DAY_MS) return this.dayText;
    if (!Number.isFinite(ts)) throw new IndexNameError(`event time ${ts} is not a time: no daily index for it`);
    this.dayStart = ts - (((ts % DAY_MS) + DAY_MS) % DAY_MS);
    this.dayText = utcDay(ts);
    return this.dayText;
  }
}
