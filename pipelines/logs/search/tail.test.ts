// The tail's cursor bookkeeping, with a stand-in for Elasticsearch that answers from a list of
// documents the way a search with these filters would. The real server is in
// test/integration/logs-search.test.ts; this covers what it cannot set up: more shards than one.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { estypes } from "@elastic/elasticsearch";
import { LogIndices } from "./indices.ts";
import { DEFAULT_SEARCH_LIMITS } from "./limits.ts";
import type { LogSearch } from "./search.ts";
import { LogTail } from "./tail.ts";

const NOW = Date.UTC(2026, 10, 20, 12);
const INDEX = "logs-gift-svc-2026.11.20";

interface Doc {
  index: string;
  shard: number;
  seq: number;
  ts: number;
}

type Query = {
  bool?: { filter?: Query[]; should?: Query[]; must_not?: Query[] };
  term?: { _index: string };
  terms?: { _index: string[] };
  range?: { _seq_no: { gt: number } };
};

/** Whether a document passes the cursor clauses of a tail's query (the only clauses these tests use). */
function matches(d: Doc, q: Query): boolean {
  if (q.term) return d.index === q.term._index;
  if (q.terms) return q.terms._index.includes(d.index);
  if (q.range) return d.seq > q.range._seq_no.gt;
  const b = q.bool ?? {};
  return (
    (b.filter ?? []).every((c) => matches(d, c)) &&
    (b.must_not ?? []).every((c) => !matches(d, c)) &&
    (b.should === undefined || b.should.some((c) => matches(d, c)))
  );
}

class FakeElasticsearch {
  docs: Doc[] = [];
  shards = 1;
  requests: estypes.SearchRequest[] = [];

  search(): LogSearch {
    return {
      indices: new LogIndices("logs"),
      limits: DEFAULT_SEARCH_LIMITS,
      compileFilter: () => ({ filter: [], services: undefined }),
      call: async () => ({ [INDEX]: { settings: { index: { number_of_shards: String(this.shards) } } } }),
      client: { indices: { getSettings: async () => ({}) } },
      run: async (req: estypes.SearchRequest) => this.run(req),
    } as unknown as LogSearch;
  }

  run(req: estypes.SearchRequest): estypes.SearchResponse {
    this.requests.push(req);
    const shard = req.preference ? Number(req.preference.replace("_shards:", "")) : 0;
    const onShard = this.docs.filter((d) => d.shard === shard);
    const query = req.query as Query;
    let hits = onShard.filter((d) => matches(d, query));
    const byTime = JSON.stringify(req.sort).includes("@timestamp");
    hits.sort((a, b) => (byTime ? b.ts - a.ts : a.index.localeCompare(b.index) || a.seq - b.seq));
    if (req.search_after) {
      const [index, seq] = req.search_after as [string, number];
      hits = hits.filter((d) => d.index > index || (d.index === index && d.seq > seq));
    }
    hits = hits.slice(0, req.size ?? 10);
    const buckets = new Map<string, number>();
    for (const d of onShard) buckets.set(d.index, Math.max(buckets.get(d.index) ?? -1, d.seq));
    return {
      took: 1,
      timed_out: false,
      _shards: { total: 1, successful: 1, failed: 0 },
      hits: {
        hits: hits.map((d) => ({
          _index: d.index,
          _id: `${d.index}/${d.shard}/${d.seq}`,
          _seq_no: d.seq,
          sort: [d.index, d.seq],
          _source: { "@timestamp": d.ts, service: { name: "gift-svc" }, message: `${d.shard}/${d.seq}` },
        })),
      },
      ...(req.aggs
        ? {
            aggregations: {
              every: {
                doc_count: onShard.length,
                indices: { buckets: [...buckets].map(([key, seq]) => ({ key, doc_count: 1, last: { value: seq } })) },
              },
            },
          }
        : {}),
    } as unknown as estypes.SearchResponse;
  }
}

const messages = (hits: Array<{ message: string }>) => hits.map((h) => h.message);

test("start: the newest lines and the cursor; a poll: only what was indexed since, whatever its time", async () => {
  const es = new FakeElasticsearch();
  for (let seq = 0; seq < 5; seq++) es.docs.push({ index: INDEX, shard: 0, seq, ts: NOW - 1000 + seq });
  const tail = new LogTail(es.search(), { backlog: 2 }, () => NOW);
  assert.deepEqual(messages(await tail.start()), ["0/3", "0/4"]);
  assert.deepEqual(await tail.poll(), []);
  // Indexed later with an older event time, and a line of a new index: both are new.
  es.docs.push({ index: INDEX, shard: 0, seq: 5, ts: NOW - 60_000 });
  es.docs.push({ index: "logs-pay-svc-2026.11.20", shard: 0, seq: 0, ts: NOW });
  // In time order: the late line (a minute old) first.
  assert.deepEqual(messages(await tail.poll()), ["0/5", "0/0"]);
  assert.deepEqual(await tail.poll(), []);
  // The poll names the known indices' cursors and lets unknown indices through.
  const last = JSON.stringify(es.requests[es.requests.length - 1]?.query);
  assert.match(last, /"term":\{"_index":"logs-gift-svc-2026.11.20"\}\},\{"range":\{"_seq_no":\{"gt":5\}\}\}/);
  assert.match(
    last,
    /"must_not":\[\{"terms":\{"_index":\["logs-gift-svc-2026.11.20","logs-pay-svc-2026.11.20"\]\}\}\]/,
  );
});

test("a poll with more new lines than a page pages through them, each once", async () => {
  const es = new FakeElasticsearch();
  const tail = new LogTail(es.search(), { backlog: 0 }, () => NOW);
  await tail.start();
  for (let seq = 0; seq < 2500; seq++) es.docs.push({ index: INDEX, shard: 0, seq, ts: NOW + seq });
  const lines = await tail.poll();
  assert.equal(lines.length, 2500);
  assert.equal(new Set(messages(lines)).size, 2500);
  assert.deepEqual(await tail.poll(), []);
});

test("indices of more than one shard: a cursor per shard, each shard asked in turn", async () => {
  const es = new FakeElasticsearch();
  es.shards = 2;
  es.docs.push({ index: INDEX, shard: 0, seq: 7, ts: NOW }, { index: INDEX, shard: 1, seq: 2, ts: NOW });
  const tail = new LogTail(es.search(), { backlog: 0 }, () => NOW);
  await tail.start();
  // Shard 1 numbers its own operations: its seq 3 is new although shard 0 is at 7.
  es.docs.push({ index: INDEX, shard: 1, seq: 3, ts: NOW + 1 });
  assert.deepEqual(messages(await tail.poll()), ["1/3"]);
  assert.deepEqual(
    es.requests.slice(-2).map((r) => r.preference),
    ["_shards:0", "_shards:1"],
  );
});
