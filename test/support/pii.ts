// Scanning what the stores hold for personal data the logs pipeline should have masked. Only phone
// and ID numbers: they are what the tests write, and the detector's other kinds find look-alikes in
// random identifiers (a 16-digit span id that passes the bank-card checksum) that nobody wrote.
import { ID_CARD, PHONE, PiiDetector, PiiMatches } from "../../pipelines/logs/pii/detector.ts";

const detector = new PiiDetector({});
const matches = new PiiMatches();

/** Each phone or ID number in any string of `v`, with where it was (masked values are tokens, not found). */
export function unmaskedPii(v: unknown, out: string[] = []): string[] {
  if (typeof v === "string") {
    detector.scan(v, matches);
    for (let k = 0; k < matches.length; k++) {
      const kind = matches.kinds[k];
      if (kind === PHONE || kind === ID_CARD) out.push(`${matches.values[k]} in ${v.slice(0, 200)}`);
    }
  } else if (Array.isArray(v)) for (const x of v) unmaskedPii(x, out);
  else if (v && typeof v === "object") for (const x of Object.values(v)) unmaskedPii(x, out);
  return out;
}

/** The phone and ID-number tokens in a text. */
export function piiTokens(text: string): number {
  return text.match(/\[pii:(ph|id)_[0-9a-f]{16}\]/g)?.length ?? 0;
}
