// The API's audit line: one per request, who asked (the token's name and scope, never the token), what
// (route, store, the query), and what came of it (status, time, how many results). The query is logged
// as the pipeline stores lines, PII masked: on-call types phone numbers into it, and a log of queries
// must not become the one place that keeps them.
import { PiiDetector } from "../pii/detector.ts";
import type { PiiMasker } from "../pii/masker.ts";
import { displayOf } from "../pii/token.ts";
import type { ServiceScope } from "../search/scope.ts";

export interface AuditRecord {
  route: string;
  status: number;
  ms: number;
  /** The token's name. */
  token: string | null;
  scope: ServiceScope | null;
  store: "elasticsearch" | "clickhouse" | null;
  /** Lines returned (search, trace, context, tail's backlog) or counted (histogram). */
  results: number | null;
  /** `q`, PII masked, cut to QUERY_SHOWN characters. */
  query: string | null;
  /** The limit that refused the request, when one did. */
  limit?: string;
}

/** Characters of a query an audit line keeps. */
export const QUERY_SHOWN = 1024;

const DETECTOR = new PiiDetector();

/**
 * `query` as the logs pipeline would store it: with the pipeline's masker (its key), each value becomes
 * `138****8000[pii:ph_…]`, so the line can be matched with the stored lines; without a key, what a
 * person may see of it, `138****8000`.
 */
export function maskQuery(query: string, masker?: PiiMasker): string {
  // Masked before it is cut: a cut through a phone number would leave digits no detector recognises.
  const masked = masker ? masker.maskText(query) : displayMask(query);
  return masked.length > QUERY_SHOWN ? `${masked.slice(0, QUERY_SHOWN)}…` : masked;
}

function displayMask(query: string): string {
  let out = "";
  let last = 0;
  for (const m of DETECTOR.find(query)) {
    out += query.slice(last, m.start) + displayOf(m.kind, m.value);
    last = m.end;
  }
  return out + query.slice(last);
}
