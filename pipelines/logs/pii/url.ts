// PII in a URL or a query string (an access line's urlQuery and referrer). Browsers and clients
// percent-encode parameter values, so a phone number sent as `%2B86%20138%200013%208000` or an email as
// `bob%40example.com` is not what the detector looks for: each parameter's name and value are decoded
// before they are scanned. A parameter holding PII is written back decoded and masked (its token must be
// readable, to be searched), with only the characters that would change the query's meaning escaped; a
// parameter without PII is left exactly as it came.

/** What masks text: the masker's maskText (the same string object back when there was no PII). */
export type TextMasker = { maskText(s: string): string };

/** `s` (a URL, a path with a query, or a bare query string) with every PII in it masked; `s` itself when none. */
export function maskUrl(masker: TextMasker, s: string): string {
  // Nothing encoded: the text as it is is what the detector reads.
  if (s.indexOf("%") === -1 && s.indexOf("+") === -1) return masker.maskText(s);
  const hash = s.indexOf("#");
  const body = hash === -1 ? s : s.slice(0, hash);
  const fragment = hash === -1 ? "" : s.slice(hash);
  const q = body.indexOf("?");
  // A bare query string (from=feed&v=1) has no '?': it is all query. A URL or a path without one has none.
  const isUrl = body.includes("://") || body.startsWith("/");
  const base = q !== -1 ? body.slice(0, q + 1) : isUrl ? body : "";
  const query = q !== -1 ? body.slice(q + 1) : isUrl ? "" : body;
  let changed = false;
  const params = query.split("&").map((p) => {
    const masked = maskParameter(masker, p);
    if (masked !== p) changed = true;
    return masked;
  });
  const maskedBase = masker.maskText(base);
  const maskedFragment = fragment === "" ? "" : masker.maskText(fragment);
  if (!changed && maskedBase === base && maskedFragment === fragment) return s;
  return `${maskedBase}${params.join("&")}${maskedFragment}`;
}

function maskParameter(masker: TextMasker, p: string): string {
  if (p === "") return p;
  const eq = p.indexOf("=");
  const name = eq === -1 ? p : p.slice(0, eq);
  const value = eq === -1 ? null : p.slice(eq + 1);
  const [decodedName, maskedName] = maskDecoded(masker, name);
  const [decodedValue, maskedValue] = value === null ? [null, null] : maskDecoded(masker, value);
  if (maskedName === decodedName && maskedValue === decodedValue) return p;
  const n = maskedName === decodedName ? name : escapeInQuery(maskedName);
  if (maskedValue === null) return n;
  return `${n}=${maskedValue === decodedValue ? value : escapeInQuery(maskedValue)}`;
}

/**
 * A name or value decoded and masked: decoded as forms do (`+` is a space) and, when that finds no PII,
 * with `+` kept as it came, since clients also put a phone's `+86` into a URL unescaped.
 */
function maskDecoded(masker: TextMasker, s: string): [string, string] {
  const form = decode(s, true);
  const masked = masker.maskText(form);
  if (masked !== form || s.indexOf("+") === -1) return [form, masked];
  const plus = decode(s, false);
  return [plus, masker.maskText(plus)];
}

/** Percent-decoding (with `+` as a space when `plusIsSpace`); a malformed escape leaves the text as it came. */
function decode(s: string, plusIsSpace: boolean): string {
  if (s.indexOf("%") === -1 && (!plusIsSpace || s.indexOf("+") === -1)) return s;
  try {
    return decodeURIComponent(plusIsSpace ? s.replaceAll("+", " ") : s);
  } catch {
    return s;
  }
}

/** Only what would change the query's structure: the token stays readable (`138****8000[pii:ph_…]`). */
function escapeInQuery(s: string): string {
  return s.replace(/[%&=#+\s]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}
