// Finds PII in a log line in one pass over its characters: runs of digits (with the spaces and dashes
// people group them with) are tried as ID card, bank card and mobile numbers, an `@` as the middle of
// an email. Only what passes the validators is reported, with its normalised value, so a rejected
// candidate (a timestamp, an order id, an IP) costs a few comparisons and no allocation.
//
// Extra patterns from the configuration are regular expressions compiled once, run after the scan.
import type { PiiConfig, PiiConfigInput } from "./config.ts";
import { BUILTIN_KINDS, parsePiiConfig } from "./config.ts";
import { idCard15To18, isIdCard15, isIdCard18, knownCardPrefix, luhnValid } from "./validators.ts";

/** Kind indexes of the built-in kinds; extra patterns follow from EXTRA_BASE on. */
export const PHONE = 0;
export const ID_CARD = 1;
export const EMAIL = 2;
export const CARD = 3;
const EXTRA_BASE = 4;

/** A number is tried from each of at most this many groups (`6222 0212 3456 7890 123` has 5). */
const MAX_PATTERN_GROUPS = 5;
/** Groups collected at once; a longer run of grouped digits is taken in overlapping windows. */
const MAX_GROUPS = 8;

/**
 * What every built-in number contains somewhere: 11 digits in a row, or a digit, a space or dash, and
 * four digits (phone 3-4-4, ID 6-8-4, card 4-4-4-4 and 4-6-5 groupings all have one). A line without
 * it and without an @, which is most lines, is done after these two tests: V8's regular expression
 * engine and indexOf skip through a line several times faster than a loop over its characters.
 */
const MAYBE_NUMBER = /\d(?:\d{10}|[ -]\d{4})/;

/**
 * Characters written for a digit in a mobile number dodging a word filter: ASCII and full-width digits,
 * Chinese numerals (with 幺 for 1 and 〇 or 零 for 0, as numbers are read aloud).
 */
const DIGIT_LIKE = "0-9\uff10-\uff19\u3007\u96f6\u4e00\u4e8c\u4e09\u56db\u4e94\u516d\u4e03\u516b\u4e5d\u5e7a";
/** What goes between the digits of such a number: spaces (full-width too), dashes, dots. */
const PHONE_SEPARATOR = " \\-.\u3000\uff0d\uff0e";
/** Most separator characters between two digits of a disguised number (`138 - 0013`). */
const MAX_SEPARATORS = 3;
/**
 * A mobile number however it is written: 1, 3-9, then nine more digits, each of them ASCII, full-width
 * or a Chinese numeral, with up to three separators between any two. The separators and digits are
 * disjoint classes, so a failed try backtracks at most a few steps per digit: linear time.
 */
const MAYBE_DISGUISED_PHONE = new RegExp(
  `[1\uff11\u4e00\u5e7a][${PHONE_SEPARATOR}]{0,${MAX_SEPARATORS}}[3-9\uff13-\uff19\u4e09\u56db\u4e94\u516d\u4e03\u516b\u4e5d](?:[${PHONE_SEPARATOR}]{0,${MAX_SEPARATORS}}[${DIGIT_LIKE}]){9}`,
  "g",
);
/** Digit values of the Chinese numerals in DIGIT_LIKE. */
const CHINESE_DIGITS = new Map<number, number>([
  [0x3007, 0], // 〇
  [0x96f6, 0], // 零
  [0x4e00, 1], // 一
  [0x5e7a, 1], // 幺
  [0x4e8c, 2], // 二
  [0x4e09, 3], // 三
  [0x56db, 4], // 四
  [0x4e94, 5], // 五
  [0x516d, 6], // 六
  [0x4e03, 7], // 七
  [0x516b, 8], // 八
  [0x4e5d, 9], // 九
]);
/** Numerals that are no digits but make a number of the digits beside them (十 百 千 万 亿 两). */
const NUMBER_WORDS = new Set([0x5341, 0x767e, 0x5343, 0x4e07, 0x4ebf, 0x4e24]);

/** A token as masking writes it, `[pii:ph_3f9a0c1d2e3f4a5b]`, where it stands (sticky: tested at lastIndex). */
const TOKEN_AT = /\[pii:[a-z][a-z0-9]{1,15}_[0-9a-f]{16}\]/y;

export interface PiiMatch {
  start: number;
  end: number;
  kind: string;
  /** The value the token is computed over: digits only for numbers, lowercase for emails. */
  value: string;
}

/** Matches of one scan, in parallel arrays reused from line to line. */
export class PiiMatches {
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  readonly kinds: number[] = [];
  readonly values: string[] = [];
  length = 0;

  push(start: number, end: number, kind: number, value: string): void {
    const i = this.length++;
    this.starts[i] = start;
    this.ends[i] = end;
    this.kinds[i] = kind;
    this.values[i] = value;
  }

  lastEnd(): number {
    return this.length === 0 ? 0 : (this.ends[this.length - 1] as number);
  }
}

/** A check an extra pattern's match must pass, given in code rather than in YAML. */
export type PiiValidator = (match: string) => boolean;

export interface PiiDetectorOptions {
  /** Latest birth year an ID number may carry; default the current year. */
  maxBirthYear?: number;
  /** Validators for extra patterns, by pattern name, on top of the configured one. */
  validators?: Record<string, PiiValidator>;
}

interface ExtraMatcher {
  kind: number;
  regex: RegExp;
  luhn: boolean;
  validator: PiiValidator | undefined;
  normalise: (match: string) => string;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isAsciiLetter(c: number): boolean {
  return (c | 0x20) >= 97 && (c | 0x20) <= 122;
}

/** Characters of an email's local part (the common subset of RFC 5322's). */
function isLocalChar(c: number): boolean {
  return isDigit(c) || isAsciiLetter(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
}

export function normaliseDigits(s: string): string {
  return s.replace(/\D+/g, "");
}

/** The value of a character written for a digit (ASCII, full-width, Chinese numeral), or -1. */
export function digitValue(c: number): number {
  if (c <= 57) return c >= 48 ? c - 48 : -1;
  if (c >= 0xff10 && c <= 0xff19) return c - 0xff10;
  if (c < 0x3007) return -1;
  return CHINESE_DIGITS.get(c) ?? -1;
}

/** `s` with full-width digits and Chinese numerals written as ASCII digits: `一三八 ００１３` -> `138 0013`. */
export function foldDigits(s: string): string {
  let out = "";
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x3007) continue;
    const v = digitValue(c);
    if (v < 0) continue;
    out += s.slice(last, i) + String(v);
    last = i + 1;
  }
  return last === 0 ? s : out + s.slice(last);
}

function isPhoneSeparator(c: number): boolean {
  return c === 32 || c === 45 || c === 46 || c === 0x3000 || c === 0xff0d || c === 0xff0e;
}

/** A character that would make a disguised number part of a word or a bigger number beside it. */
function joinsNumber(c: number): boolean {
  return (
    digitValue(c) >= 0 ||
    isAsciiLetter(c) ||
    (c >= 0xff21 && c <= 0xff3a) ||
    (c >= 0xff41 && c <= 0xff5a) ||
    NUMBER_WORDS.has(c)
  );
}

export class PiiDetector {
  /** Kind names by index: phone, idCard, email, card, then the extra patterns. */
  readonly kinds: readonly string[];
  /** Token codes by kind index: ph, id, em, bc, then the extra patterns' names. */
  readonly codes: readonly string[];
  readonly config: PiiConfig;
  private readonly phone: boolean;
  private readonly idCard: boolean;
  private readonly legacyId: boolean;
  private readonly email: boolean;
  private readonly card: boolean;
  private readonly anyIin: boolean;
  private readonly numbers: boolean;
  private readonly maxBirthYear: number;
  private readonly extras: ExtraMatcher[];
  // group bounds of the digit run being tried (reused: the scan allocates nothing for rejected candidates)
  private readonly gs = new Int32Array(MAX_GROUPS);
  private readonly ge = new Int32Array(MAX_GROUPS);
  private groups = 0;

  constructor(config: PiiConfigInput | PiiConfig = {}, options: PiiDetectorOptions = {}) {
    const c = parsePiiConfig(config);
    this.config = c;
    this.phone = c.phone;
    this.idCard = c.idCard.enabled;
    this.legacyId = c.idCard.enabled && c.idCard.legacy15;
    this.email = c.email;
    this.card = c.card.enabled;
    this.anyIin = c.card.iin === "any";
    this.numbers = this.phone || this.idCard || this.card;
    this.maxBirthYear = options.maxBirthYear ?? new Date().getUTCFullYear();
    this.kinds = ["phone", "idCard", "email", "card", ...c.extra.map((p) => p.name)];
    this.codes = [
      BUILTIN_KINDS.phone,
      BUILTIN_KINDS.idCard,
      BUILTIN_KINDS.email,
      BUILTIN_KINDS.card,
      ...c.extra.map((p) => p.name),
    ];
    for (const name of Object.keys(options.validators ?? {})) {
      if (!c.extra.some((p) => p.name === name))
        throw new Error(`a validator is given for "${name}", which is no extra pattern`);
    }
    this.extras = c.extra.map((p, i) => ({
      kind: EXTRA_BASE + i,
      regex: new RegExp(p.pattern, `g${p.flags}`),
      luhn: p.validator === "luhn",
      validator: options.validators?.[p.name],
      normalise: normaliserOf(p.normalise),
    }));
  }

  /** Index of a kind name, or -1. */
  kindIndex(kind: string): number {
    return this.kinds.indexOf(kind);
  }

  /** Every PII in `s`, in order, into `out` (cleared first). */
  scan(s: string, out: PiiMatches): void {
    out.length = 0;
    if (s.indexOf("@") >= 0 || MAYBE_NUMBER.test(s)) this.scanBuiltins(s, out);
    if (this.phone) this.scanDisguisedPhones(s, out);
    if (this.extras.length > 0) this.scanExtras(s, out);
  }

  private scanBuiltins(s: string, out: PiiMatches): void {
    const n = s.length;
    let i = 0;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c <= 57) {
        if (c >= 48) {
          if (this.numbers) i = this.scanNumber(s, i, out);
          else while (++i < n && isDigit(s.charCodeAt(i)));
          continue;
        }
      } else if (c === 64) {
        i = this.email ? this.scanEmail(s, i, out) : i + 1;
        continue;
      } else if (c === 91) {
        // A token of an earlier masking: masking twice changes nothing. Only a well-formed one, so
        // that writing "[pii:" before a number does not hide it.
        TOKEN_AT.lastIndex = i;
        if (TOKEN_AT.test(s)) {
          i = TOKEN_AT.lastIndex;
          continue;
        }
      }
      i++;
    }
  }

  /** Every PII in `s` (allocates; for queries and tests, not for the pipeline's hot path). */
  find(s: string): PiiMatch[] {
    const out = new PiiMatches();
    this.scan(s, out);
    const found: PiiMatch[] = [];
    for (let k = 0; k < out.length; k++) {
      found.push({
        start: out.starts[k] as number,
        end: out.ends[k] as number,
        kind: this.kinds[out.kinds[k] as number] as string,
        value: out.values[k] as string,
      });
    }
    return found;
  }

  /** The kind of `s` when all of it (ignoring surrounding spaces) is one PII value; undefined otherwise. */
  classify(s: string): PiiMatch | undefined {
    const found = this.find(s);
    if (found.length !== 1) return undefined;
    const m = found[0] as PiiMatch;
    return s.slice(0, m.start).trim() === "" && s.slice(m.end).trim() === "" ? m : undefined;
  }

  // ---- numbers ------------------------------------------------------------------------------------

  /** Tries the digit run at `i` (and the groups that follow it); returns where scanning goes on. */
  private scanNumber(s: string, i: number, out: PiiMatches): number {
    const n = s.length;
    const gs = this.gs;
    const ge = this.ge;
    let count = 0;
    let p = i;
    for (;;) {
      let e = p + 1;
      while (e < n && isDigit(s.charCodeAt(e))) e++;
      gs[count] = p;
      ge[count] = e;
      count++;
      if (count === MAX_GROUPS || e + 1 >= n) break;
      const sep = s.charCodeAt(e);
      if ((sep === 32 || sep === 45) && isDigit(s.charCodeAt(e + 1))) p = e + 1;
      else break;
    }
    this.groups = count;
    // With the window full, a number may go on past it: try only starts whose longest form fits, then
    // collect again from the next start.
    const truncated = count === MAX_GROUPS;
    const lastStart = truncated ? count - MAX_PATTERN_GROUPS : count - 1;
    const plus = i > 0 && s.charCodeAt(i - 1) === 43;
    for (let j = 0; j <= lastStart; j++) {
      if (j === 0 && !leftBoundary(s, plus ? i - 1 : i)) continue;
      const idEnd = this.idCard ? this.idAt(s, j, out) : -1;
      if (idEnd > 0) return idEnd;
      const cardEnd = this.card ? this.cardAt(s, j, out) : -1;
      if (cardEnd > 0) return cardEnd;
      const phoneEnd = this.phone ? this.phoneAt(s, j, plus && j === 0, out) : -1;
      if (phoneEnd > 0) return phoneEnd;
    }
    return truncated ? (gs[lastStart + 1] as number) : (ge[count - 1] as number);
  }

  private len(k: number): number {
    return k < this.groups ? (this.ge[k] as number) - (this.gs[k] as number) : 0;
  }

  private idAt(s: string, j: number, out: PiiMatches): number {
    const a = this.gs[j] as number;
    const e = this.ge[j] as number;
    const L = e - a;
    if (L === 18) {
      if (isIdCard18(s, a, this.maxBirthYear) && rightBoundary(s, e))
        return this.add(out, a, e, ID_CARD, s.slice(a, e));
    } else if (L === 17) {
      const x = s.charCodeAt(e) | 0x20;
      if (x === 0x78 && isIdCard18(s, a, this.maxBirthYear) && rightBoundary(s, e + 1)) {
        return this.add(out, a, e + 1, ID_CARD, `${s.slice(a, e)}X`);
      }
    } else if (L === 6 && this.len(j + 1) === 8) {
      // 6-8-4 grouping: region, birth date, sequence and check
      const last = this.len(j + 2);
      const lastEnd = this.ge[j + 2] as number;
      const withX = last === 3 && (s.charCodeAt(lastEnd) | 0x20) === 0x78;
      if (last === 4 || withX) {
        const end = withX ? lastEnd + 1 : lastEnd;
        const compact = `${s.slice(a, e)}${s.slice(this.gs[j + 1] as number, this.ge[j + 1] as number)}${s.slice(this.gs[j + 2] as number, lastEnd)}${withX ? "X" : ""}`;
        if (isIdCard18(compact, 0, this.maxBirthYear) && rightBoundary(s, end))
          return this.add(out, a, end, ID_CARD, compact);
      }
    } else if (L === 15 && this.legacyId) {
      if (isIdCard15(s, a) && rightBoundary(s, e)) return this.add(out, a, e, ID_CARD, idCard15To18(s.slice(a, e)));
    }
    return -1;
  }

  private cardAt(s: string, j: number, out: PiiMatches): number {
    const a = this.gs[j] as number;
    const L = this.len(j);
    if (L >= 13 && L <= 19) {
      const e = this.ge[j] as number;
      if (!this.anyIin && !knownCardPrefix(firstFour(s, a), L)) return -1;
      if (!luhnAt(s, a, L) || !rightBoundary(s, e)) return -1;
      return this.add(out, a, e, CARD, s.slice(a, e));
    }
    if (L !== 4) return -1;
    if (!this.anyIin) {
      // No issuer starts this way at any length (every prefix allowed at 17 or 18 is at 16 or 19 too):
      // skip the grouping work. This is what passes over dates like 2026-11-20 at once.
      const f = firstFour(s, a);
      if (!knownCardPrefix(f, 14) && !knownCardPrefix(f, 15) && !knownCardPrefix(f, 16) && !knownCardPrefix(f, 19)) {
        return -1;
      }
    }
    // 4-4-4-4(-1..3): the longest grouping that is a card
    let k = j + 1;
    let total = 4;
    while (k < this.groups && this.len(k) === 4 && total + 4 <= 19) {
      total += 4;
      k++;
    }
    const tail = this.len(k);
    if (k < this.groups && tail >= 1 && tail <= 3 && total + tail <= 19) {
      const end = this.tryGroupedCard(s, j, k, total + tail, out);
      if (end > 0) return end;
    }
    for (let last = k - 1; last >= j + 2 && total >= 13; last--, total -= 4) {
      const end = this.tryGroupedCard(s, j, last, total, out);
      if (end > 0) return end;
    }
    // 4-6-5 (American Express) and 4-6-4 (Diners Club)
    if (this.len(j + 1) === 6 && (this.len(j + 2) === 5 || this.len(j + 2) === 4)) {
      const end = this.tryGroupedCard(s, j, j + 2, 10 + this.len(j + 2), out);
      if (end > 0) return end;
    }
    return -1;
  }

  private tryGroupedCard(s: string, j: number, last: number, total: number, out: PiiMatches): number {
    if (total < 13 || total > 19) return -1;
    const a = this.gs[j] as number;
    if (!this.anyIin && !knownCardPrefix(firstFour(s, a), total)) return -1;
    const end = this.ge[last] as number;
    if (!rightBoundary(s, end)) return -1;
    let digits = "";
    for (let k = j; k <= last; k++) digits += s.slice(this.gs[k] as number, this.ge[k] as number);
    if (!luhnValid(digits)) return -1;
    return this.add(out, a, end, CARD, digits);
  }

  private phoneAt(s: string, j: number, plus: boolean, out: PiiMatches): number {
    const a = this.gs[j] as number;
    const e = this.ge[j] as number;
    const L = e - a;
    if (L === 11) {
      if (mobileAt(s, a) && rightBoundary(s, e)) return this.add(out, a, e, PHONE, s.slice(a, e));
      return -1;
    }
    if (L === 13 && plus && s.charCodeAt(a) === 56 && s.charCodeAt(a + 1) === 54 && mobileAt(s, a + 2)) {
      if (rightBoundary(s, e)) return this.add(out, a - 1, e, PHONE, s.slice(a + 2, e));
      return -1;
    }
    if (L === 15 && s.startsWith("0086", a) && mobileAt(s, a + 4)) {
      if (rightBoundary(s, e)) return this.add(out, a, e, PHONE, s.slice(a + 4, e));
      return -1;
    }
    if ((L === 2 && s.startsWith("86", a)) || (L === 4 && s.startsWith("0086", a))) {
      // +86 138 0013 8000, 0086-13800138000, 86 138-0013-8000
      const start = plus ? a - 1 : a;
      const b = this.gs[j + 1] as number;
      if (this.len(j + 1) === 11 && mobileAt(s, b)) {
        const end = this.ge[j + 1] as number;
        if (rightBoundary(s, end)) return this.add(out, start, end, PHONE, s.slice(b, end));
        return -1;
      }
      const end = this.threeFourFour(s, j + 1);
      if (end > 0) return this.add(out, start, end, PHONE, this.joined(s, j + 1, j + 3));
      return -1;
    }
    if (L === 3) {
      const end = this.threeFourFour(s, j);
      if (end > 0) return this.add(out, a, end, PHONE, this.joined(s, j, j + 2));
    }
    return -1;
  }

  /** End of a 3-4-4 mobile number whose first group is `j`, or -1. */
  private threeFourFour(s: string, j: number): number {
    if (this.len(j) !== 3 || this.len(j + 1) !== 4 || this.len(j + 2) !== 4) return -1;
    if (!mobileAt(s, this.gs[j] as number)) return -1;
    const end = this.ge[j + 2] as number;
    return rightBoundary(s, end) ? end : -1;
  }

  private joined(s: string, from: number, to: number): string {
    let digits = "";
    for (let k = from; k <= to; k++) digits += s.slice(this.gs[k] as number, this.ge[k] as number);
    return digits;
  }

  private add(out: PiiMatches, start: number, end: number, kind: number, value: string): number {
    out.push(start, end, kind, value);
    return end;
  }

  // ---- disguised mobile numbers ------------------------------------------------------------------

  /**
   * Mobile numbers written to dodge a word filter (`一三八 零零一三 八零零零`, `１３８－００１３－８０００`,
   * `1 3 8 0 0 1 3 8 0 0 0`, `+八六 幺三八…`), which the digit scan does not take: each hit of
   * MAYBE_DISGUISED_PHONE is widened to its whole run of digits and separators, and the run is a phone
   * when it holds exactly 11 digits of a mobile number (13 with 86 before them, 15 with 0086). The
   * value is the 11 ASCII digits, so the token is the one the plain number gets. Each character is
   * looked at a bounded number of times: a run is walked once, and the search goes on after it.
   */
  private scanDisguisedPhones(s: string, out: PiiMatches): void {
    const re = MAYBE_DISGUISED_PHONE;
    re.lastIndex = 0;
    const found = out.length;
    const n = s.length;
    let k = 0; // the first match of the digit scan not yet passed
    let floor = 0; // where the last run (or skipped match) ended
    let added = false;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      const hit = m.index;
      // A run does not reach back into what the digit scan found (`13800138000 1 3 9 …` is two numbers).
      while (k < found && (out.ends[k] as number) <= hit) floor = Math.max(floor, out.ends[k++] as number);
      if (k < found && (out.starts[k] as number) <= hit) {
        floor = re.lastIndex = out.ends[k] as number;
        continue;
      }
      let start = hit;
      while (start > floor) {
        const c = s.charCodeAt(start - 1);
        if (digitValue(c) >= 0 || isPhoneSeparator(c)) start--;
        else break;
      }
      while (digitValue(s.charCodeAt(start)) < 0) start++;
      let digits = "";
      let count = 0;
      let apart = false; // the first two digits (86?) stand apart from the rest
      let end = start;
      let p = start;
      while (p < n) {
        const v = digitValue(s.charCodeAt(p));
        if (v >= 0) {
          if (count < 16) digits += String(v);
          count++;
          end = ++p;
          continue;
        }
        let q = p;
        while (q < n && q - p < MAX_SEPARATORS && isPhoneSeparator(s.charCodeAt(q))) q++;
        if (q > p && q < n && digitValue(s.charCodeAt(q)) >= 0) {
          if (count === 2) apart = true;
          p = q;
        } else break;
      }
      floor = re.lastIndex = end;
      if (k < found && (out.starts[k] as number) < end) continue; // overlaps what the digit scan found
      const before = s.charCodeAt(start - 1);
      const plus = before === 43 || before === 0xff0b; // +86, ＋８６
      let value: string | undefined;
      if (count === 11) value = digits;
      // 86 and 11 digits in one run is a phone after a + or with the 86 set apart, as the digit scan reads it
      else if (count === 13 && digits.startsWith("86") && (plus || apart)) value = digits.slice(2);
      else if (count === 15 && digits.startsWith("0086")) value = digits.slice(4);
      if (value === undefined || !mobileAt(value, 0)) continue;
      const from = count > 11 && plus ? start - 1 : start;
      if (from > 0 && joinsNumber(s.charCodeAt(from - 1))) continue;
      if (from >= 2 && s.charCodeAt(from - 1) === 46 && digitValue(s.charCodeAt(from - 2)) >= 0) continue;
      if (end < n && (joinsNumber(s.charCodeAt(end)) || s.charCodeAt(end) === 64)) continue;
      if (insideToken(s, from)) continue;
      // 183.192.247.56 holds 11 digits that read as a mobile number: an IPv4 address is not one
      if (count === 11 && isIpv4(s, start, end)) continue;
      out.push(from, end, PHONE, value);
      added = true;
    }
    if (added) sortMatches(out);
  }

  // ---- email --------------------------------------------------------------------------------------

  /** The email around the `@` at `at`, if there is one; returns where scanning goes on. */
  private scanEmail(s: string, at: number, out: PiiMatches): number {
    const n = s.length;
    const floor = out.lastEnd();
    let start = at;
    while (start > floor && isLocalChar(s.charCodeAt(start - 1))) start--;
    while (start < at && s.charCodeAt(start) === 46) start++; // a local part does not start with a dot
    if (start === at) return at + 1;
    let end = at + 1;
    while (end < n) {
      const c = s.charCodeAt(end);
      if (isDigit(c) || isAsciiLetter(c) || c === 45) end++;
      else if (c === 46 && s.charCodeAt(end - 1) !== 46 && end > at + 1) end++;
      else break;
    }
    while (end > at + 1 && (s.charCodeAt(end - 1) === 46 || s.charCodeAt(end - 1) === 45)) end--;
    const dot = s.lastIndexOf(".", end - 1);
    if (dot <= at + 1 || end - dot - 1 < 2) return at + 1;
    for (let k = dot + 1; k < end; k++) if (!isAsciiLetter(s.charCodeAt(k))) return at + 1;
    out.push(start, end, EMAIL, s.slice(start, end).toLowerCase());
    return end;
  }

  // ---- extra patterns -----------------------------------------------------------------------------

  private scanExtras(s: string, out: PiiMatches): void {
    const builtIn = out.length;
    for (const x of this.extras) {
      x.regex.lastIndex = 0;
      for (let m = x.regex.exec(s); m !== null; m = x.regex.exec(s)) {
        const text = m[0];
        if (text.length === 0) {
          x.regex.lastIndex++;
          continue;
        }
        const start = m.index;
        const end = start + text.length;
        if (overlaps(out, start, end) || insideToken(s, start)) continue;
        if (x.luhn && !luhnValid(normaliseDigits(text))) continue;
        if (x.validator && !x.validator(text)) continue;
        out.push(start, end, x.kind, x.normalise(text));
      }
    }
    if (out.length > builtIn) sortMatches(out);
  }
}

export function normaliserOf(mode: "none" | "digits" | "lowercase"): (s: string) => string {
  if (mode === "digits") return normaliseDigits;
  if (mode === "lowercase") return (s) => s.trim().toLowerCase();
  return (s) => s.trim();
}

function firstFour(s: string, a: number): number {
  return (
    (s.charCodeAt(a) - 48) * 1000 +
    (s.charCodeAt(a + 1) - 48) * 100 +
    (s.charCodeAt(a + 2) - 48) * 10 +
    (s.charCodeAt(a + 3) - 48)
  );
}

/** `s[start, end)` is a dotted-quad IPv4 address: four groups of 1 to 3 ASCII digits, each at most 255. */
function isIpv4(s: string, start: number, end: number): boolean {
  let groups = 0;
  let value = 0;
  let width = 0;
  for (let k = start; k <= end; k++) {
    const c = k < end ? s.charCodeAt(k) : 46;
    if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      if (++width > 3 || value > 255) return false;
    } else if (c === 46 && width > 0) {
      groups++;
      value = 0;
      width = 0;
    } else return false;
  }
  return groups === 4;
}

function luhnAt(s: string, from: number, len: number): boolean {
  let sum = 0;
  let double = false;
  for (let i = from + len - 1; i >= from; i--) {
    let d = s.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** 1 then 3-9: a mainland mobile number's first two digits. */
function mobileAt(s: string, a: number): boolean {
  const second = s.charCodeAt(a + 1);
  return s.charCodeAt(a) === 49 && second >= 51 && second <= 57;
}

/**
 * A number may start at `start` unless it continues a word or a number: a letter or digit before it
 * (`uid13800138000`, `0x…`, a hex id), or a decimal point after a digit (`3.13800138000`, an IP).
 */
function leftBoundary(s: string, start: number): boolean {
  if (start === 0) return true;
  const c = s.charCodeAt(start - 1);
  if (isDigit(c) || isAsciiLetter(c)) return false;
  return !(c === 46 && start >= 2 && isDigit(s.charCodeAt(start - 2)));
}

/** And may end at `end` unless a letter follows, a decimal part, or an `@` (then it is an email's local part). */
function rightBoundary(s: string, end: number): boolean {
  if (end >= s.length) return true;
  const c = s.charCodeAt(end);
  if (isDigit(c) || isAsciiLetter(c) || c === 64) return false;
  return !(c === 46 && isDigit(s.charCodeAt(end + 1)));
}

function overlaps(out: PiiMatches, start: number, end: number): boolean {
  for (let k = 0; k < out.length; k++) {
    if (start < (out.ends[k] as number) && end > (out.starts[k] as number)) return true;
  }
  return false;
}

function insideToken(s: string, at: number): boolean {
  const open = s.lastIndexOf("[pii:", at);
  if (open < 0) return false;
  TOKEN_AT.lastIndex = open;
  return TOKEN_AT.test(s) && TOKEN_AT.lastIndex > at;
}

function sortMatches(out: PiiMatches): void {
  for (let i = 1; i < out.length; i++) {
    for (let k = i; k > 0 && (out.starts[k - 1] as number) > (out.starts[k] as number); k--) {
      swap(out.starts, k);
      swap(out.ends, k);
      swap(out.kinds, k);
      swap(out.values, k);
    }
  }
}

function swap<T>(a: T[], k: number): void {
  const t = a[k] as T;
  a[k] = a[k - 1] as T;
  a[k - 1] = t;
}
