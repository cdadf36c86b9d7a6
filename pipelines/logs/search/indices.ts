// Which indices a search reads. The logs pipeline writes `<prefix>-<service>-YYYY.MM.DD` (one index
// per service and UTC day, sinks/elasticsearch/index-name.ts); a search names the days of its window,
// and the services when it has a few, so Elasticsearch opens only the shards that can hold its lines.
//
// Index names only narrow: a service's part of a name is sanitised (lowercased, some characters
// replaced), so two services can share a name, and `logs-gift-*` also matches `logs-gift-svc-...`.
// Every search that narrows by service therefore also filters on service.name.
import { prefixProblem, sanitizeIndexPart, utcDay } from "../../../sinks/elasticsearch/index-name.ts";
import { LOGS_INDEX_PREFIX } from "../template.ts";
import { SearchError } from "./errors.ts";

/** The variable naming the index prefix the logs pipeline writes with; default `logs`. */
export const INDEX_PREFIX_ENV = "WEIR_LOGS_INDEX_PREFIX";

const DAY_MS = 86_400_000;
/** Past this many days a window reads `<prefix>-*` and lets the @timestamp range skip shards. */
const MAX_LISTED_DAYS = 62;
/**
 * The index expression goes into the request line, which Elasticsearch caps at 4 KiB
 * (http.max_initial_line_length); past this a coarser expression is used.
 */
const MAX_EXPRESSION_CHARS = 2000;

/** The index prefix from WEIR_LOGS_INDEX_PREFIX, or `logs`; checked the way index names use it. */
export function logsIndexPrefix(env: NodeJS.ProcessEnv = process.env): string {
  const prefix = env[INDEX_PREFIX_ENV] || LOGS_INDEX_PREFIX;
  checkPrefix(prefix, INDEX_PREFIX_ENV);
  return prefix;
}

function checkPrefix(prefix: string, where: string): void {
  const problem = prefixProblem(prefix);
  if (problem) {
    throw new SearchError(
      "bad-request",
      `index prefix ${JSON.stringify(prefix)} (${where}) cannot start an index name: ${problem}`,
      `use the prefix the logs pipeline writes with, e.g. ${LOGS_INDEX_PREFIX}`,
    );
  }
}

/** The UTC days (YYYY.MM.DD) from the day of `from` to the day of `to`, oldest first. */
export function utcDaysBetween(from: number, to: number): string[] {
  const days: string[] = [];
  for (let d = Math.floor(from / DAY_MS) * DAY_MS; d <= to; d += DAY_MS) days.push(utcDay(d));
  return days;
}

export class LogIndices {
  constructor(readonly prefix: string) {
    checkPrefix(prefix, "index prefix");
  }

  /** Every log index: `<prefix>-*`. */
  get all(): string {
    return `${this.prefix}-*`;
  }

  /** Every index one service's lines can be in (and maybe a few of others: filter on service.name too). */
  ofService(service: string): string {
    return `${this.prefix}-${sanitizeIndexPart(service)}-*`;
  }

  /**
   * The indices lines of `services` (all: undefined) between `from` and `to` can be in: exact names
   * when there are few, one pattern per day when there are many services, `<prefix>-*` for long windows.
   */
  forWindow(from: number, to: number, services?: readonly string[]): string {
    const days = utcDaysBetween(from, to);
    if (days.length > MAX_LISTED_DAYS) return services ? this.joinOr(services.map((s) => this.ofService(s))) : this.all;
    if (services) {
      const parts = [...new Set(services.map(sanitizeIndexPart))];
      const names = parts.flatMap((p) => days.map((d) => `${this.prefix}-${p}-${d}`));
      const exact = names.join(",");
      if (exact.length <= MAX_EXPRESSION_CHARS) return exact;
    }
    return this.joinOr(days.map((d) => `${this.prefix}-*-${d}`));
  }

  private joinOr(patterns: string[]): string {
    const joined = patterns.join(",");
    return joined.length <= MAX_EXPRESSION_CHARS ? joined : this.all;
  }
}
