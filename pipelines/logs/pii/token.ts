// The token that replaces a PII value: `pii:<code>_<16 hex>`, the first 64 bits of
// HMAC-SHA256(key, "<code>:<normalised value>"). The same value gives the same token in every process
// and after restarts (as long as the key stays), so an engineer who has the value can find the lines
// that held it, and nobody without the key can go from a token back to a value, even by trying every
// phone number (there are only 10^10 of them: a plain hash would be reversed in minutes).
//
// A masked value reads `<what a human may see>[pii:<code>_<hash>]`, e.g. `138****8000[pii:ph_3f9a0c1d2e3f4a5b]`.
import { createHmac } from "node:crypto";
import { BUILTIN_KINDS, type BuiltinKind } from "./config.ts";
import { foldDigits, normaliseDigits } from "./detector.ts";
import type { PiiKey } from "./key.ts";
import { idCard15To18 } from "./validators.ts";

export const TOKEN_HEX = 16;
/** `pii:ph_3f9a0c1d2e3f4a5b`: what an engineer searches for. */
export const TOKEN_PATTERN = /^pii:([a-z][a-z0-9]{1,15})_([0-9a-f]{16})$/;

/** Tokens by normalised value, for the values a busy pipeline sees again and again. */
export class PiiTokenizer {
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly key: PiiKey,
    private readonly cacheSize = 8192,
  ) {}

  /** `pii:<code>_<hash>` of an already normalised value. */
  token(code: string, normalised: string): string {
    const input = `${code}:${normalised}`;
    let token = this.cache.get(input);
    if (token === undefined) {
      token = hmacToken(this.key, code, normalised);
      // Wholesale clearing keeps this a plain Map; a miss costs one HMAC, about a microsecond.
      if (this.cache.size >= this.cacheSize) this.cache.clear();
      this.cache.set(input, token);
    }
    return token;
  }
}

function hmacToken(key: PiiKey, code: string, normalised: string): string {
  const hash = createHmac("sha256", key.bytes()).update(`${code}:${normalised}`, "utf8").digest("hex");
  return `pii:${code}_${hash.slice(0, TOKEN_HEX)}`;
}

/** The canonical form of a built-in kind's value as anyone may write it: `+86 138-0013-8000`, `一三八零零一三八零零零` -> `13800138000`. */
export function normaliseBuiltin(kind: BuiltinKind, raw: string): string {
  switch (kind) {
    case "phone": {
      // Full-width digits and Chinese numerals too: `一三八 ００１３ ８０００` is 13800138000, and its token is that one's.
      const d = normaliseDigits(foldDigits(raw));
      if (d.length === 13 && d.startsWith("86")) return d.slice(2);
      if (d.length === 15 && d.startsWith("0086")) return d.slice(4);
      return d;
    }
    case "idCard": {
      const v = raw.replace(/[\s-]+/g, "").toUpperCase();
      return /^\d{15}$/.test(v) ? idCard15To18(v) : v;
    }
    case "email":
      return raw.trim().toLowerCase();
    case "card":
      return normaliseDigits(raw);
  }
}

/**
 * What a human may still see of a value: a phone's operator prefix and last four digits, an ID
 * number's region (where it was issued, never the birth date), an email's first letter and domain,
 * a card's last four digits; of other kinds, `keepLast` characters.
 */
export function displayOf(kind: string, normalised: string, keepLast = 0): string {
  switch (kind) {
    case "phone":
      return normalised.length === 11 ? `${normalised.slice(0, 3)}****${normalised.slice(7)}` : "****";
    case "idCard":
      return normalised.length === 18 ? `${normalised.slice(0, 6)}************` : "******";
    case "email": {
      const at = normalised.lastIndexOf("@");
      return at > 0 ? `${normalised[0]}***${normalised.slice(at)}` : "***";
    }
    case "card":
      return normalised.length >= 13 ? `****${normalised.slice(-4)}` : "****";
    default:
      return keepLast > 0 && normalised.length > keepLast ? `***${normalised.slice(-keepLast)}` : "";
  }
}

/**
 * The token of a value of a built-in kind, as typed by anyone (`+86 138-0013-8000`, `User@Example.com`):
 * what the search side looks for. Extra patterns' tokens come from `PiiMasker.token`, which knows
 * their normalisation.
 */
export function piiToken(kind: BuiltinKind, rawValue: string, key: PiiKey): string {
  return hmacToken(key, BUILTIN_KINDS[kind], normaliseBuiltin(kind, rawValue));
}
