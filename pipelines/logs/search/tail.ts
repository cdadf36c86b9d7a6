// `weir logs tail`: new lines as they become searchable. Polling for "newer than the last @timestamp
// seen" would miss lines that arrive late: a line's event time can be seconds older than lines already
// indexed (shippers batch, partitions lag, services' clocks differ). So the cursor is not a time but
// the order in which each shard indexed documents: every shard numbers its operations (_seq_no), a
// document's number is final, and one searchable request tells both the newest lines and the highest
// number per index. A poll asks for documents numbered above the cursor of their index and shard, so
// every line indexed after the tail started is printed once, whatever its timestamp.
//
// Shards: _seq_no counts per shard, and weir's daily indices have one (the template's default). For
// indices with more, each poll asks shard k of every index in turn (preference `_shards:k`), with a
// cursor per index and shard; a shard the tail has no cursor for yet is new, so all its lines are.
//
// Indices: the daily indices of yesterday, today and tomorrow (UTC), so a tail runs across midnight;
// a line whose event time is older than yesterday goes to an older index and is not followed.
import type { estypes } from "@elastic/elasticsearch";
import { dailyIndexDay } from "../../../sinks/elasticsearch/index-name.ts";
import type { EsQuery } from "../query/query.ts";
import { type LogHit, type RawHit, toLogHit } from "./hit.ts";
import { checkCount, DEFAULT_SEARCH_LIMITS } from "./limits.ts";
import type { LineFilter, LogSearch } from "./search.ts";

const DAY_MS = 86_400_000;
const PAGE = 1_000;
/** Shard counts are read again after this many polls, so a new index with more shards is found. */
const SETTINGS_EVERY = 20;
/** The lines a tail shows first, like tail(1). */
export const DEFAULT_TAIL_BACKLOG = 10;
export const MAX_TAIL_BACKLOG = DEFAULT_SEARCH_LIMITS.maxResults;
/** How often a tail asks for new lines, ms: about twice per refresh of the index (refresh_interval 1s). */
export const TAIL_POLL_MS = 500;

export interface TailRequest extends LineFilter {
  /** Lines already there to show first (the newest), default 10. */
  backlog?: number;
}

const CURSOR_AGG = {
  every: {
    global: {},
    aggs: { indices: { terms: { field: "_index", size: 10_000 }, aggs: { last: { max: { field: "_seq_no" } } } } },
  },
};

/** Time order for printing: @timestamp, then the line's seq in its file. */
export function byTime(a: LogHit, b: LogHit): number {
  return (
    a.ts - b.ts || (a.source?.seq ?? -1) - (b.source?.seq ?? -1) || (a.index < b.index ? -1 : a.index > b.index ? 1 : 0)
  );
}

export class LogTail {
  /** `<index>#<shard>` -> the highest _seq_no already handled. */
  private readonly cursors = new Map<string, number>();
  private readonly filter: EsQuery[];
  private readonly services: readonly string[] | undefined;
  private shards = 1;
  private polls = 0;
  private started = false;

  /** Compiles the request at once: a bad query or a service outside the scope throws here. */
  constructor(
    private readonly search: LogSearch,
    private readonly request: TailRequest,
    private readonly now: () => number = Date.now,
  ) {
    checkCount(request.backlog ?? DEFAULT_TAIL_BACKLOG, "maxResults", search.limits, "backlog", 0);
    const { filter, services } = search.compileFilter(request);
    this.filter = filter;
    this.services = services;
  }

  /** Takes the cursor and returns the newest `backlog` lines already there, oldest first. */
  async start(): Promise<LogHit[]> {
    if (this.started) throw new Error("LogTail.start() was called twice");
    this.started = true;
    const backlog = this.request.backlog ?? DEFAULT_TAIL_BACKLOG;
    await this.readShardCount();
    const lines: LogHit[] = [];
    for (let k = 0; k < this.shards; k++) {
      const res = await this.search.run({
        index: this.index(),
        ...(this.shards > 1 ? { preference: `_shards:${k}` } : {}),
        query: { bool: { filter: this.filter } },
        sort: [{ "@timestamp": { order: "desc" } }],
        size: backlog,
        track_total_hits: false,
        aggs: CURSOR_AGG,
      });
      this.advanceByAggregation(res, k);
      for (const h of res.hits.hits) lines.push(toLogHit(h as RawHit));
    }
    lines.sort(byTime);
    return lines.slice(Math.max(0, lines.length - backlog));
  }

  /** The lines indexed since the last call (or start), in time order. */
  async poll(): Promise<LogHit[]> {
    if (!this.started) throw new Error("LogTail.poll() before start()");
    if (++this.polls % SETTINGS_EVERY === 0) await this.readShardCount();
    this.forgetOldIndices();
    const lines: LogHit[] = [];
    for (let k = 0; k < this.shards; k++) {
      let after: estypes.SortResults | undefined;
      for (let page = 0; ; page++) {
        const res = await this.search.run({
          index: this.index(),
          ...(this.shards > 1 ? { preference: `_shards:${k}` } : {}),
          query: { bool: { filter: [...this.filter, ...this.newerThanCursor(k)] } },
          // Per index in indexing order, so a page's last hit of an index is its new cursor.
          sort: [{ _index: { order: "asc" } }, { _seq_no: { order: "asc" } }],
          seq_no_primary_term: true,
          size: PAGE,
          track_total_hits: false,
          ...(after ? { search_after: after } : {}),
          ...(page === 0 ? { aggs: CURSOR_AGG } : {}),
        });
        const hits = res.hits.hits;
        for (const h of hits) {
          lines.push(toLogHit(h as RawHit));
          const key = `${h._index}#${k}`;
          if (typeof h._seq_no === "number" && h._seq_no > (this.cursors.get(key) ?? -1))
            this.cursors.set(key, h._seq_no);
        }
        if (hits.length < PAGE) {
          // One page held every new matching line of that searcher: the lines that did not match
          // are behind the cursor too, which keeps the next poll's ranges short.
          if (page === 0) this.advanceByAggregation(res, k);
          break;
        }
        after = hits[hits.length - 1]?.sort;
      }
    }
    lines.sort(byTime);
    return lines;
  }

  /** Polls every `intervalMs` until `signal` aborts, handing each non-empty batch to `onLines`. */
  async follow(
    onLines: (lines: LogHit[]) => void | Promise<void>,
    signal: AbortSignal,
    intervalMs = TAIL_POLL_MS,
  ): Promise<void> {
    while (!signal.aborted) {
      const began = this.now();
      const lines = await this.poll();
      if (lines.length > 0) await onLines(lines);
      const wait = intervalMs - (this.now() - began);
      if (wait > 0 && !signal.aborted) await sleep(wait, signal);
    }
  }

  private index(): string {
    const now = this.now();
    return this.search.indices.forWindow(now - DAY_MS, now + DAY_MS, this.services);
  }

  private newerThanCursor(k: number): EsQuery[] {
    const known: string[] = [];
    const newer: EsQuery[] = [];
    const suffix = `#${k}`;
    for (const [key, seq] of this.cursors) {
      if (!key.endsWith(suffix)) continue;
      const index = key.slice(0, -suffix.length);
      known.push(index);
      newer.push({ bool: { filter: [{ term: { _index: index } }, { range: { _seq_no: { gt: seq } } }] } });
    }
    if (known.length === 0) return [];
    newer.push({ bool: { must_not: [{ terms: { _index: known } }] } });
    return [{ bool: { should: newer, minimum_should_match: 1 } }];
  }

  private advanceByAggregation(res: estypes.SearchResponse, k: number): void {
    const every = res.aggregations?.every as { indices?: estypes.AggregationsStringTermsAggregate } | undefined;
    const buckets = (every?.indices?.buckets ?? []) as Array<{ key: string; last?: { value: number | null } }>;
    for (const b of buckets) {
      const last = b.last?.value;
      if (typeof last !== "number") continue;
      const key = `${b.key}#${k}`;
      if (last > (this.cursors.get(key) ?? -1)) this.cursors.set(key, last);
    }
  }

  private async readShardCount(): Promise<void> {
    const settings = (await this.search.call(() =>
      this.search.client.indices.getSettings({
        index: this.index(),
        ignore_unavailable: true,
        allow_no_indices: true,
        filter_path: "*.settings.index.number_of_shards",
      }),
    )) as Record<string, { settings?: { index?: { number_of_shards?: string } } }>;
    let most = 1;
    for (const v of Object.values(settings ?? {}))
      most = Math.max(most, Number(v.settings?.index?.number_of_shards ?? 1));
    this.shards = most;
  }

  /** Cursors of indices the tail no longer reads (days gone by) would only lengthen its queries. */
  private forgetOldIndices(): void {
    const oldest = this.now() - 2 * DAY_MS;
    for (const key of this.cursors.keys()) {
      const day = dailyIndexDay(key.slice(0, key.lastIndexOf("#")));
      if (day !== null && day < oldest) this.cursors.delete(key);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
