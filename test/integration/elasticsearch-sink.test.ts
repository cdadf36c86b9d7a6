// The Elasticsearch sink, the logs index template and index retention against the local stack's
// real Elasticsearch (8.19 integ-test-zip). Every index and template here starts with a prefix of
// its own (uniqueName) and is deleted in a `finally`.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import type { Client } from "@elastic/elasticsearch";
import pino from "pino";
import {
  accessLogDocument,
  accessLogMapping,
  appLogMapping,
  type LogDocument,
} from "../../pipelines/logs/documents.ts";
import { logsTemplates } from "../../pipelines/logs/template.ts";
import type { AccessLog, AppLog } from "../../schemas/types.generated.ts";
import { DailyIndexNamer } from "../../sinks/elasticsearch/index-name.ts";
import { IndexRetention, IndexRetentionScheduler } from "../../sinks/elasticsearch/retention.ts";
import { ElasticsearchSink } from "../../sinks/elasticsearch/sink.ts";
import { installTemplates, type TemplateSet } from "../../sinks/elasticsearch/templates.ts";
import type { Rec } from "../../stream/types.ts";
import { elasticsearchClient, endpoints, requireStack, uniqueName } from "../support/stack.ts";

const quiet = pino({ level: "silent" });
const DAY1 = Date.UTC(2026, 10, 20, 12, 30);
const DAY2 = Date.UTC(2026, 10, 21, 0, 0, 5);

/** Deletes every index starting with `<prefix>` and the templates named after it. Wildcard deletes are refused (destructive_requires_name). */
async function cleanUp(es: Client, prefix: string, templates?: TemplateSet): Promise<void> {
  const rows = (await es.cat.indices(
    { index: `${prefix}*`, format: "json", h: "index" },
    { ignore: [404] },
  )) as unknown;
  for (const r of Array.isArray(rows) ? (rows as Array<{ index: string }>) : []) {
    await es.indices.delete({ index: r.index, ignore_unavailable: true });
  }
  for (const t of templates?.indexTemplates ?? [])
    await es.indices.deleteIndexTemplate({ name: t.name }, { ignore: [404] });
  for (const c of templates?.components ?? [])
    await es.cluster.deleteComponentTemplate({ name: c.name }, { ignore: [404] });
}

async function countIn(es: Client, index: string, query?: object): Promise<number> {
  await es.indices.refresh({ index, ignore_unavailable: true });
  const r = await es.count({ index, ignore_unavailable: true, ...(query ? { query } : {}) });
  return r.count;
}

async function indexNames(es: Client, pattern: string): Promise<string[]> {
  const rows = (await es.cat.indices(
    { index: pattern, format: "json", h: "index", expand_wildcards: ["open", "closed"] },
    { ignore: [404] },
  )) as unknown;
  return (Array.isArray(rows) ? (rows as Array<{ index: string }>) : []).map((r) => r.index).sort();
}

function appLog(i: number, service: string, ts: number, extra: Partial<AppLog> = {}): AppLog {
  return {
    id: `f-${service}:${i * 100}`,
    ts,
    service,
    host: `${service}-0`,
    level: i % 10 === 0 ? "ERROR" : "INFO",
    message: `handled request ${i}`,
    logger: "http",
    traceId: `trace-${i}`,
    spanId: `span-${i}`,
    error: i % 10 === 0 ? { type: "TimeoutError", message: "upstream timed out", stack: null } : null,
    attributes: { reqId: `q-${i}`, uid: String(100_000 + i) },
    source: { file: `/var/log/${service}/app.log`, fileId: `f-${service}`, offset: i * 100, seq: i },
    ...extra,
  };
}

function accessLog(i: number, service: string, ts: number): AccessLog {
  return {
    id: `q-${i}`,
    ts,
    app: "live",
    system: "gifting",
    service,
    endpoint: "/gift/send",
    method: "POST",
    status: i % 10 === 0 ? 500 : 200,
    latencyUs: 1000 + i,
    bytesIn: 100,
    bytesOut: 200,
    errorCode: null,
    traceId: `trace-${i}`,
    caller: null,
    uid: 100_000 + i,
    deviceId: null,
    clientIp: i % 2 ? "116.228.51.94" : "2001:db8::1",
    roomId: 700_000,
    userAgent: "live-android/8.4.1",
    urlQuery: null,
    referrer: null,
    host: `${service}-1`,
    source: { file: `/var/log/${service}/access.log`, fileId: `a-${service}`, offset: i * 200, seq: i },
  };
}

const rec = <V>(value: V & { ts: number }): Rec<V> => ({ key: null, ts: value.ts, value });

test("the logs template installs once per version and shapes each new daily index", async () => {
  await requireStack();
  const es = elasticsearchClient();
  const prefix = uniqueName("t_es_tpl");
  const set = logsTemplates({ prefix, name: prefix });
  const sink = new ElasticsearchSink<AppLog>({
    node: endpoints.elasticsearchUrl,
    logger: quiet,
    ...appLogMapping(prefix),
  });
  try {
    const first = await installTemplates(es, set, { logger: quiet });
    assert.deepEqual(
      first.map((t) => [t.kind, t.name, t.action]),
      [
        ["component", `${prefix}-settings`, "created"],
        ["component", `${prefix}-mappings`, "created"],
        ["index", prefix, "created"],
      ],
    );
    const again = await installTemplates(es, set, { logger: quiet });
    assert.deepEqual(
      again.map((t) => t.action),
      ["unchanged", "unchanged", "unchanged"],
    );

    // A newer mappings version replaces the installed one; an older one never does.
    const v2 = logsTemplates({ prefix, name: prefix });
    const mappings2 = v2.components[1]?.body;
    assert.ok(mappings2);
    // One past the version the repository ships (infra/elasticsearch), whatever it is now.
    const shipped = Number(mappings2.version ?? 0);
    mappings2.version = shipped + 1;
    const props = (mappings2.template.mappings as { properties: Record<string, unknown> }).properties;
    props.labels = { properties: { team: { type: "keyword" } } };
    const upgraded = await installTemplates(es, v2, { logger: quiet });
    assert.deepEqual(
      upgraded.map((t) => [t.action, t.installed]),
      [
        ["unchanged", set.components[0]?.body.version],
        ["updated", shipped],
        ["unchanged", set.indexTemplates[0]?.body.version],
      ],
    );
    const older = await installTemplates(es, set, { logger: quiet });
    assert.equal(older[1]?.action, "newer-kept");
    const got = await es.cluster.getComponentTemplate({ name: `${prefix}-mappings` });
    assert.equal(got.component_templates[0]?.component_template.version, shipped + 1);

    sink.write(rec(appLog(1, "gift-svc", DAY1)));
    await sink.flush();
    const index = `${prefix}-gift-svc-2026.11.20`;
    const mapping = (await es.indices.getMapping({ index }))[index]?.mappings as {
      dynamic?: string;
      properties: Record<string, { type?: string; properties?: Record<string, { type?: string }> }>;
    };
    assert.equal(String(mapping.dynamic), "false");
    // This server has the flattened type (x-pack-core), so attributes are one flattened field.
    assert.equal(mapping.properties.attributes?.type, "flattened");
    assert.equal(mapping.properties["@timestamp"]?.type, "date");
    assert.equal(mapping.properties.client?.properties?.ip?.type, "ip");
    assert.equal(mapping.properties.labels?.properties?.team?.type, "keyword", "the newer mapping applied");
    const settings = (await es.indices.getSettings({ index }))[index]?.settings?.index as Record<string, unknown>;
    assert.equal(settings.refresh_interval, "1s");
    assert.equal(settings.number_of_shards, "1");
    assert.equal((settings.mapping as { total_fields: { limit: string } }).total_fields.limit, "200");
    // An unmapped field stays in _source and is not searchable: the mapping is closed.
    await es.index({ index, id: "extra", document: { "@timestamp": DAY1, unmapped_field: "x" }, refresh: true });
    assert.equal((await es.indices.getMapping({ index }))[index]?.mappings.properties?.unmapped_field, undefined);
  } finally {
    await sink.close();
    await cleanUp(es, prefix, set);
    await es.close();
  }
});

test("documents land in their service's daily index; replaying the same records adds nothing", async () => {
  await requireStack();
  const es = elasticsearchClient();
  const prefix = uniqueName("t_es_docs");
  const set = logsTemplates({ prefix, name: prefix });
  const common = { node: endpoints.elasticsearchUrl, logger: quiet, flushBytes: 64 * 1024, concurrency: 2 };
  const apps = new ElasticsearchSink<AppLog>({ ...common, name: "es-app", ...appLogMapping(prefix) });
  const access = new ElasticsearchSink<AccessLog>({ ...common, name: "es-access", ...accessLogMapping(prefix) });
  try {
    await installTemplates(es, set, { logger: quiet });
    const appRecs: Array<Rec<AppLog>> = [];
    const accessRecs: Array<Rec<AccessLog>> = [];
    for (let i = 0; i < 600; i++) {
      const service = i % 3 === 0 ? "room-svc" : "Gift-Svc";
      const ts = i < 400 ? DAY1 + i * 10 : DAY2 + i;
      appRecs.push(rec(appLog(i, service, ts)));
      accessRecs.push(rec(accessLog(i, service, ts)));
    }
    for (const r of appRecs) apps.write(r);
    for (const r of accessRecs) access.write(r);
    await Promise.all([apps.flush(), access.flush()]);
    assert.equal(apps.stats.docsIndexed, 600);
    assert.equal(access.stats.docsIndexed, 600);
    assert.ok(apps.stats.requests > 1, "more than one bulk request");

    const expected: Record<string, number> = {};
    for (const r of [...appRecs, ...accessRecs]) {
      const day = r.value.ts < DAY2 ? "2026.11.20" : "2026.11.21";
      const name = `${prefix}-${r.value.service.toLowerCase()}-${day}`;
      expected[name] = (expected[name] ?? 0) + 1;
    }
    assert.deepEqual(await indexNames(es, `${prefix}-*`), Object.keys(expected).sort());
    for (const [index, n] of Object.entries(expected)) assert.equal(await countIn(es, index), n, index);

    // A trace's whole story: its app line and its access line, across datasets.
    const trace = await es.search<LogDocument>({
      index: `${prefix}-*`,
      query: { term: { "trace.id": "trace-30" } },
      sort: [{ "event.dataset": "asc" }],
    });
    assert.deepEqual(
      trace.hits.hits.map((h) => [h._source?.event.dataset, h._source?.log.level, h._id]),
      [
        ["access", "ERROR", "a-room-svc:6000"],
        ["app", "ERROR", "f-room-svc:3000"],
      ],
    );
    // The lines around a hit: the same file, by sequence.
    const around = await es.search<LogDocument>({
      index: `${prefix}-*`,
      query: {
        bool: {
          filter: [
            { term: { "weir.source.file_id": "f-Gift-Svc" } },
            { range: { "weir.source.seq": { gte: 40, lte: 44 } } },
          ],
        },
      },
      sort: [{ "weir.source.seq": "asc" }],
    });
    assert.deepEqual(
      around.hits.hits.map((h) => h._source?.weir?.source?.seq),
      [40, 41, 43, 44],
    );
    assert.equal(
      await countIn(es, `${prefix}-*`, { bool: { filter: [{ term: { "attributes.reqId": "q-7" } }] } }),
      1,
      "flattened attributes are searchable by key",
    );

    // The runtime replays after a crash: same records, same ids, 409s.
    for (const r of appRecs.slice(100, 500)) apps.write(r);
    for (const r of accessRecs) access.write(r);
    await Promise.all([apps.flush(), access.flush()]);
    assert.equal(apps.stats.duplicates, 400);
    assert.equal(access.stats.duplicates, 600);
    assert.equal(apps.stats.docsIndexed + access.stats.docsIndexed, 1200);
    assert.equal(apps.stats.rejected + access.stats.rejected, 0);
    for (const [index, n] of Object.entries(expected))
      assert.equal(await countIn(es, index), n, `${index} after replay`);
  } finally {
    await apps.close();
    await access.close();
    await cleanUp(es, prefix, set);
    await es.close();
  }
});

test("a document the mapping refuses goes to takeRejected with its reason; the rest of its request is indexed", async () => {
  await requireStack();
  const es = elasticsearchClient();
  const prefix = uniqueName("t_es_bad");
  const set = logsTemplates({ prefix, name: prefix });
  const namer = new DailyIndexNamer(prefix);
  const sink = new ElasticsearchSink<AccessLog>({
    node: endpoints.elasticsearchUrl,
    logger: quiet,
    index: (r) => namer.name(r.value.service, r.value.ts),
    id: (r) => `req:${r.value.id}`,
    toDocument: (r) => {
      const doc = accessLogDocument(r.value) as LogDocument & Record<string, unknown>;
      // A type clash: a string where the mapping has a long.
      if (r.value.id === "q-7") (doc.http as { response: { status_code: unknown } }).response.status_code = "OK";
      // An oversized keyword: Lucene refuses terms over 32,766 bytes.
      if (r.value.id === "q-13") doc.trace = { id: "x".repeat(40_000) };
      // Not an IP address.
      if (r.value.id === "q-21") doc.client = { ip: "not-an-ip" };
      return doc;
    },
  });
  try {
    await installTemplates(es, set, { logger: quiet });
    for (let i = 0; i < 50; i++) sink.write(rec(accessLog(i, "gift-svc", DAY1 + i)));
    await sink.flush();
    assert.equal(sink.stats.requests, 1, "one bulk request held all 50");
    const rejected = sink.takeRejected();
    const byId = new Map(rejected.map((r) => [r.rec.value.id, r]));
    assert.deepEqual([...byId.keys()].sort(), ["q-13", "q-21", "q-7"]);
    for (const r of rejected) {
      assert.equal(r.reason, "rejected-by-sink");
      assert.equal(r.status, 400);
    }
    assert.equal(byId.get("q-7")?.errorType, "document_parsing_exception");
    assert.match(
      byId.get("q-7")?.message ?? "",
      /failed to parse field \[http\.response\.status_code\] of type \[long\]/,
    );
    assert.match(byId.get("q-13")?.message ?? "", /trace\.id/);
    assert.match(byId.get("q-21")?.message ?? "", /client\.ip.*of type \[ip\]/);
    assert.equal(sink.stats.rejected, 3);
    assert.equal(sink.stats.docsIndexed, 47);
    assert.equal(await countIn(es, `${prefix}-gift-svc-2026.11.20`), 47);
  } finally {
    await sink.close();
    await cleanUp(es, prefix, set);
    await es.close();
  }
});

/**
 * A proxy in front of the real Elasticsearch: the first `wholeRequests` bulk requests are answered
 * 429 as a whole, the next one has its second half of items answered 429 (its first half is
 * forwarded), everything after is forwarded untouched. The documents land in the real server.
 */
async function overloadedProxy(target: string, wholeRequests: number) {
  const bulkBodies: string[][] = [];
  const readBody = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  const forward = async (req: IncomingMessage, body: Buffer) =>
    fetch(`${target}${req.url}`, {
      method: req.method ?? "GET",
      headers: {
        "content-type": String(req.headers["content-type"] ?? "application/json"),
        accept: String(req.headers.accept ?? "application/json"),
      },
      ...(body.length > 0 ? { body } : {}),
    });
  const server: Server = createServer(async (req, res) => {
    try {
      const body = await readBody(req);
      if (!req.url?.startsWith("/_bulk")) {
        const r = await forward(req, body);
        res.writeHead(r.status, {
          "content-type": r.headers.get("content-type") ?? "application/json",
          "x-elastic-product": "Elasticsearch",
        });
        res.end(Buffer.from(await r.arrayBuffer()));
        return;
      }
      const lines = body.toString("utf8").split("\n").filter(Boolean);
      bulkBodies.push(lines.filter((_, k) => k % 2 === 0).map((l) => JSON.parse(l).create._id as string));
      const n = bulkBodies.length;
      const tooBusy = {
        type: "es_rejected_execution_exception",
        reason:
          "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, max_coordinating_and_primary_bytes=0]",
      };
      if (n <= wholeRequests) {
        res.writeHead(429, { "content-type": "application/json", "x-elastic-product": "Elasticsearch" });
        res.end(JSON.stringify({ error: tooBusy, status: 429 }));
        return;
      }
      if (n === wholeRequests + 1) {
        const items = lines.length / 2;
        const kept = Math.ceil(items / 2);
        const r = await forward(req, Buffer.from(`${lines.slice(0, kept * 2).join("\n")}\n`));
        const answer = (await r.json()) as { errors: boolean; items: unknown[] };
        for (let k = kept; k < items; k++) answer.items.push({ create: { status: 429, error: tooBusy } });
        res.writeHead(200, { "content-type": "application/json", "x-elastic-product": "Elasticsearch" });
        res.end(JSON.stringify({ ...answer, errors: true }));
        return;
      }
      const r = await forward(req, body);
      res.writeHead(r.status, { "content-type": "application/json", "x-elastic-product": "Elasticsearch" });
      res.end(Buffer.from(await r.arrayBuffer()));
    } catch (e) {
      res.writeHead(502);
      res.end(String(e));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bulkBodies,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test("429s, for whole requests and for items, are retried with backoff until every document lands", async () => {
  await requireStack();
  const es = elasticsearchClient();
  const prefix = uniqueName("t_es_busy");
  const set = logsTemplates({ prefix, name: prefix });
  const proxy = await overloadedProxy(endpoints.elasticsearchUrl, 2);
  const sink = new ElasticsearchSink<AppLog>({
    node: proxy.url,
    logger: quiet,
    retries: { max: 5, initialDelay: 50, maxDelay: 400 },
    ...appLogMapping(prefix),
  });
  try {
    await installTemplates(es, set, { logger: quiet });
    for (let i = 0; i < 100; i++) sink.write(rec(appLog(i, "gift-svc", DAY1 + i)));
    await sink.flush();
    assert.equal(sink.pending(), 0);
    const all = Array.from({ length: 100 }, (_, i) => `f-gift-svc:${i * 100}`);
    assert.deepEqual(proxy.bulkBodies, [all, all, all, all.slice(50)], "only the items answered 429 went again");
    assert.equal(sink.stats.retries, 3);
    assert.equal(sink.stats.retriedDocs, 250);
    assert.equal(sink.stats.docsIndexed, 100);
    assert.equal(sink.stats.duplicates, 0);
    assert.equal(await countIn(es, `${prefix}-gift-svc-2026.11.20`), 100);
  } finally {
    await sink.close();
    await proxy.close();
    await cleanUp(es, prefix, set);
    await es.close();
  }
});

test("flush() rejects while Elasticsearch cannot be reached, and a later flush() delivers everything", async () => {
  await requireStack();
  const es = elasticsearchClient();
  const prefix = uniqueName("t_es_down");
  // A port nothing listens on, then the proxy on it once the first flush has failed.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const sink = new ElasticsearchSink<AppLog>({
    node: `http://127.0.0.1:${port}`,
    logger: quiet,
    retries: { max: 2, initialDelay: 10, maxDelay: 20 },
    ...appLogMapping(prefix),
  });
  let proxy: Server | null = null;
  try {
    for (let i = 0; i < 20; i++) sink.write(rec(appLog(i, "gift-svc", DAY1 + i)));
    await assert.rejects(sink.flush(), /20 documents not indexed after 3 attempts/);
    assert.equal(sink.pending(), 20);
    proxy = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const r = await fetch(`${endpoints.elasticsearchUrl}${req.url}`, {
        method: req.method ?? "POST",
        headers: { "content-type": String(req.headers["content-type"]), accept: String(req.headers.accept) },
        body: Buffer.concat(chunks),
      });
      res.writeHead(r.status, { "content-type": "application/json", "x-elastic-product": "Elasticsearch" });
      res.end(Buffer.from(await r.arrayBuffer()));
    });
    await new Promise<void>((resolve) => proxy?.listen(port, "127.0.0.1", resolve));
    await sink.flush();
    assert.equal(sink.pending(), 0);
    assert.equal(await countIn(es, `${prefix}-gift-svc-2026.11.20`), 20);
  } finally {
    await sink.close();
    if (proxy) await new Promise<void>((resolve) => proxy?.close(() => resolve()));
    await cleanUp(es, prefix);
    await es.close();
  }
});

test("retention deletes exactly the expired daily indices of its patterns", async () => {
  await requireStack();
  const es = elasticsearchClient();
  const prefix = uniqueName("t_es_ret");
  const now = Date.UTC(2026, 10, 21, 12); // 2026-11-21 12:00 UTC
  const names = [
    `${prefix}-gift-svc-2026.11.10`, // expired (keep 7d)
    `${prefix}-gift-svc-2026.11.13`, // ends 11-14 00:00, + 7 d = 11-21 00:00: expired
    `${prefix}-gift-svc-2026.11.14`, // kept
    `${prefix}-room-svc-2026.11.21`, // today
    `${prefix}-audit-svc-2026.10.01`, // its own rule keeps 90 d
    `${prefix}-audit-svc-2026.08.01`, // expired under its rule
    `${prefix}-gift-svc-latest`, // no date: never
    `${prefix}-gift-svc-2026.02.30`, // not a date: never
    `${prefix}x-gift-svc-2020.01.01`, // outside the pattern: never
  ];
  try {
    for (const index of names)
      await es.indices.create({ index, settings: { number_of_shards: 1, number_of_replicas: 0 } });
    await es.indices.close({ index: `${prefix}-gift-svc-2026.11.10` }); // closed indices are deleted too
    const rules = [
      { pattern: `${prefix}-audit-*`, keep: "90d" },
      { pattern: `${prefix}-*`, keep: "7d" },
    ];
    const dry = new IndexRetention({ client: es, rules, logger: quiet, dryRun: true });
    const planned = await dry.run(now);
    assert.deepEqual(
      planned.deleted.map((i) => i.index),
      [`${prefix}-audit-svc-2026.08.01`, `${prefix}-gift-svc-2026.11.10`, `${prefix}-gift-svc-2026.11.13`],
    );
    assert.equal(planned.kept, 3);
    assert.deepEqual(await indexNames(es, `${prefix}*`), [...names].sort(), "a dry run deletes nothing");

    const retention = new IndexRetention({ client: es, rules, logger: quiet });
    const run = await retention.run(now);
    assert.deepEqual(
      run.deleted.map((i) => i.index),
      planned.deleted.map((i) => i.index),
    );
    const left = new Set(names);
    for (const i of run.deleted) left.delete(i.index);
    assert.deepEqual(await indexNames(es, `${prefix}*`), [...left].sort());
    assert.deepEqual((await retention.run(now)).deleted, [], "a second run finds nothing more");

    // On its cron schedule (every second here), with the real clock: an index of a day long past goes.
    const old = `${prefix}-gift-svc-2000.01.01`;
    await es.indices.create({ index: old, settings: { number_of_shards: 1, number_of_replicas: 0 } });
    const scheduler = new IndexRetentionScheduler([new IndexRetention({ client: es, rules, logger: quiet })], {
      cron: "* * * * * *",
      logger: quiet,
    });
    try {
      scheduler.start();
      assert.ok(scheduler.nextRun() instanceof Date);
      for (let i = 0; i < 100 && (await indexNames(es, old)).length > 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await scheduler.stop();
    }
    const remaining = await indexNames(es, `${prefix}*`);
    assert.ok(!remaining.includes(old), "the scheduled run deleted it");
    for (const never of [
      `${prefix}-gift-svc-latest`,
      `${prefix}-gift-svc-2026.02.30`,
      `${prefix}x-gift-svc-2020.01.01`,
    ]) {
      assert.ok(remaining.includes(never), `${never} is never deleted`);
    }
  } finally {
    await cleanUp(es, prefix);
    await es.close();
  }
});
