// The console end to end in a real browser (playwright-core driving Debian's chromium) against the real
// stack: `weir console` as `npm start` runs it, over a logs fixture in Elasticsearch (indices of the
// run's own), and the health pipeline in this process over a topic of the run's own, writing to a
// ClickHouse database of the run's own. It searches and opens a hit's context, watches a live tail
// receive a new line, sees an injected incident's alert arrive on the Alerts page within 5 s of the
// pipeline writing it, acknowledges it, and checks that a token limited to one service sees only that
// service's logs, health and alerts on every page and API behind them. It takes the screenshots of
// docs/console.md.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Admin, Consumer } from "kafkajs";
import pino from "pino";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import type { HealthAlert } from "../../pipelines/health/alerts.ts";
import { alertRow, metricRow } from "../../pipelines/health/pipeline.ts";
import type { HealthMetric } from "../../pipelines/health/rows.ts";
import { DEFAULT_SLO_FILE, SloConfig } from "../../pipelines/health/slo.ts";
import { buildHealthApp } from "../../pipelines/health/topology.ts";
import { hashToken, newToken, TokenStore } from "../../pipelines/logs/api/tokens.ts";
import { accessLogDocument } from "../../pipelines/logs/documents.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { AccessLog } from "../../schemas/types.generated.ts";
import { splitStatements } from "../../sinks/clickhouse/migrate.ts";
import { ClickHouseSink } from "../../sinks/clickhouse/sink.ts";
import { DailyIndexNamer } from "../../sinks/elasticsearch/index-name.ts";
import { KafkajsStreamClient } from "../../stream/kafka/client.ts";
import { StreamWorker } from "../../stream/runtime/worker.ts";
import { type RunningConsole, startConsole } from "../../web/server/start.ts";
import { createLogsFixture, type LogsFixture } from "../support/logs-fixture.ts";
import {
  clickhouseClient,
  elasticsearchClient,
  endpoints,
  kafkaClient,
  requireStack,
  uniqueName,
} from "../support/stack.ts";

// What the page's own code (run by page.evaluate and waitForFunction) finds in the browser; this
// project's types are Node's.
// biome-ignore lint/suspicious/noExplicitAny: the browser's globals, typed in the browser
declare const document: any;
// biome-ignore lint/suspicious/noExplicitAny: as above
declare const window: any;

export const CHROMIUM = process.env.WEIR_CHROMIUM ?? "/usr/bin/chromium";
/** Flags that keep chromium from reaching Google's hosts (and from needing a sandbox as root). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const SCREENSHOTS = new URL("../../docs/console/", import.meta.url).pathname;

const es = elasticsearchClient();
const ch = clickhouseClient();
const kafka = kafkaClient("weir-console-test");
const database = uniqueName("t_console");
const appId = uniqueName("t-console").replaceAll("_", "-");
const input = `${appId}.access`;
const alertsTopic = `${appId}.alerts`;
/** The console's log lines (its audit lines among them). */
const logged: Array<Record<string, unknown>> = [];
const logger = pino({ level: "info" }, { write: (line: string) => void logged.push(JSON.parse(line)) });
const all = newToken();
const gifting = newToken();
const burst = newToken();
const userData = mkdtempSync(join(tmpdir(), "weir-console-chromium-"));

let admin: Admin;
let fixture: LogsFixture;
let running: RunningConsole;
let worker: StreamWorker;
let context: BrowserContext;
let base: string;

before(async () => {
  await requireStack();
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [
      { topic: input, numPartitions: 1 },
      { topic: alertsTopic, numPartitions: 1 },
    ],
    waitForLeaders: true,
  });
  for (const file of ["001_health.sql", "004_alert_actions.sql"]) {
    const ddl = readFileSync(new URL(`../../infra/clickhouse/${file}`, import.meta.url), "utf8")
      .replaceAll("CREATE DATABASE IF NOT EXISTS weir", `CREATE DATABASE IF NOT EXISTS ${database}`)
      .replaceAll("weir.", `${database}.`);
    for (const stmt of splitStatements(ddl)) await ch.command({ query: stmt });
  }
  fixture = await createLogsFixture(es, ch, 40);

  // The health pipeline, as `weir run health` runs it, on the run's own topics and database.
  const slo = SloConfig.load(DEFAULT_SLO_FILE);
  const common = { url: endpoints.clickhouseUrl, database, logger };
  const app = buildHealthApp({
    slo,
    appId,
    input,
    alertsTopic,
    metricsTopic: null,
    metricsSink: new ClickHouseSink<HealthMetric>({
      ...common,
      name: "t-metrics",
      table: "health_metrics",
      toRow: metricRow,
    }),
    alertsSink: new ClickHouseSink<HealthAlert>({
      ...common,
      name: "t-alerts",
      table: "health_alerts",
      toRow: alertRow,
    }),
  });
  worker = new StreamWorker(app, {
    kafka: new KafkajsStreamClient({ brokers: endpoints.kafkaBrokers, clientId: appId, logger }),
    logger,
  });
  await worker.start();

  const tokens = new TokenStore([
    { name: "sre", sha256: hashToken(all), services: "*" },
    { name: "oncall-gifting", sha256: hashToken(gifting), services: ["gift-svc"] },
    { name: "script", sha256: hashToken(burst), services: "*" },
  ]);
  running = await startConsole(
    { port: "0", host: "127.0.0.1", prefix: fixture.prefix, database, alertsTopic, notify: false },
    tokens,
    logger,
    { ...process.env, WEIR_ENV: "development" },
  );
  base = running.console.url;
  // A fresh profile of the run's own (playwright passes it as --user-data-dir).
  context = await chromium.launchPersistentContext(userData, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 900 },
  });
});

after(async () => {
  await context?.close().catch(() => {});
  await running?.stop().catch(() => {});
  await worker?.stop().catch(() => {});
  await fixture?.drop().catch(() => {});
  await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => {});
  if (!admin) return;
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(appId));
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => {});
  await admin.deleteGroups([appId]).catch(() => {});
  await admin.disconnect();
  await Promise.all([es.close(), ch.close()]);
  rmSync(userData, { recursive: true, force: true });
});

async function open(path: string, token = all): Promise<Page> {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${base}${path}#token=${token}`);
  await page.waitForSelector("main[data-ready]");
  return page;
}

async function api(path: string, token: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });
}

test("logs: a search shows hits with the matched words marked; a hit opens as JSON and its context loads more lines", async () => {
  const page = await open("/logs?q=timeout&since=1h");
  await page.waitForSelector('[data-testid="hit"]');
  const hits = await page.locator('[data-testid="hit"]').count();
  assert.ok(hits > 0);
  assert.ok((await page.locator('[data-testid="hit"] mark').count()) > 0, "matched words are marked");
  await page.waitForSelector('[data-testid="histogram"] canvas');
  await page.screenshot({ path: join(SCREENSHOTS, "logs.png") });
  await page.locator('[data-testid="hit"]').first().click();
  const json = JSON.parse((await page.locator('[data-testid="json"]').first().textContent()) ?? "{}");
  assert.equal(typeof json.id, "string");
  await page.locator('[data-testid="open-context"]').first().click();
  await page.waitForSelector('[data-testid="context"] tr.hit.marked');
  const before = await page.locator('[data-testid="context"] tr.hit').count();
  await page.locator('[data-testid="more-before"]').click();
  await page
    .waitForFunction((n) => document.querySelectorAll('[data-testid="context"] tr.hit').length > n, before, {
      timeout: 10_000,
    })
    .catch(() => {});
  const more = await page.locator('[data-testid="context"] tr.hit').count();
  // The fixture's files hold 40 lines a service: the context grows until the file's start.
  assert.ok(more >= before, `${more} lines after asking for more, ${before} before`);
  await page.screenshot({ path: join(SCREENSHOTS, "logs-context.png") });
  await page.close();
});

test("logs: a live tail receives a line indexed after it started", async () => {
  const page = await open("/logs?q=&since=15m");
  await page.locator('[data-testid="live-toggle"]').check();
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="tail-status"]')?.textContent?.includes("following"),
  );
  const marker = `tailmarker${Date.now()}`;
  const now = Date.now();
  const line: AccessLog = {
    id: `tail-${marker}`,
    ts: now,
    app: "live",
    system: "gifting",
    service: "gift-svc",
    endpoint: `/gift/${marker}`,
    method: "POST",
    status: 200,
    latencyUs: 1234,
    bytesIn: 10,
    bytesOut: 20,
    errorCode: null,
    traceId: null,
    caller: null,
    uid: null,
    deviceId: null,
    clientIp: "10.0.0.2",
    roomId: null,
    userAgent: null,
    host: "gift-svc-9",
    source: null,
  };
  // Give the tail a moment to take its cursor, then index the line.
  await new Promise((r) => setTimeout(r, 1500));
  await es.index({
    index: new DailyIndexNamer(fixture.prefix).name("gift-svc", now),
    id: line.id,
    document: accessLogDocument(line),
    refresh: true,
  });
  await page.waitForFunction(
    (m) => [...document.querySelectorAll('[data-testid="tail-line"]')].some((e) => e.textContent?.includes(m)),
    marker,
    { timeout: 15_000 },
  );
  await page.screenshot({ path: join(SCREENSHOTS, "logs-tail.png") });
  await page.close();
});

/** Access events of `services`: 40 a second each for `seconds`, every other one a 503 from `errorsFrom` on. */
function traffic(start: number, seconds: number, errorsFrom: number, services: string[]): AccessLog[] {
  const out: AccessLog[] = [];
  for (let s = 0; s < seconds; s++) {
    for (const service of services) {
      for (let i = 0; i < 40; i++) {
        const failing = s >= errorsFrom && i % 2 === 0;
        out.push({
          id: `${service}-${s}-${i}`,
          ts: start + s * 1000 + i * 20,
          app: "live",
          system: service === "gift-svc" ? "gifting" : "room",
          service,
          endpoint: service === "gift-svc" ? "/gift/send" : "/room/list",
          method: "POST",
          status: failing ? 503 : 200,
          latencyUs: 5000 + i * 100,
          bytesIn: 100,
          bytesOut: 200,
          errorCode: failing ? "UPSTREAM_TIMEOUT" : null,
          traceId: null,
          caller: null,
          uid: null,
          deviceId: null,
          clientIp: "10.0.0.3",
          roomId: null,
          userAgent: null,
          host: `${service}-1`,
          source: null,
        });
      }
    }
  }
  return out;
}

test("alerts: an injected incident's alert arrives on the Alerts page within 5 s of the pipeline writing it; acknowledged, it shows on the timeline", async () => {
  const page = await open("/alerts");
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="board-status"]')?.textContent?.includes("live"),
  );
  // Stamps in the page the moment each alert card appears.
  // (A string: tsx would wrap a function's inner functions in a helper the page does not have.)
  await page.evaluate(`(() => {
    const seen = (window.alertSeenAt = {});
    const note = () => {
      for (const e of document.querySelectorAll('[data-testid="alert"]')) seen[e.getAttribute("data-id")] ??= Date.now();
    };
    new MutationObserver(note).observe(document.body, { childList: true, subtree: true });
  })()`);
  // Our own reader of the alerts topic: when the pipeline's FIRING record became readable (its Kafka
  // timestamp is the event time of the second that fired, not when it was written).
  const consumer: Consumer = kafka.consumer({ groupId: `${appId}-probe` });
  const written = new Map<string, { at: number; alert: HealthAlert }>();
  await consumer.connect();
  await consumer.subscribe({ topic: alertsTopic, fromBeginning: true });
  const codec = codecFor("HealthAlert");
  await consumer.run({
    eachMessage: async ({ message }) => {
      const a = codec.decode(message.value as Buffer);
      if (a.state === "FIRING" && !written.has(a.id)) written.set(a.id, { at: Date.now(), alert: a });
    },
  });
  try {
    const producer = kafka.producer();
    await producer.connect();
    const encode = codecFor("AccessLog");
    // 40 s of traffic ending now: healthy for 25 s, then half the requests of both services fail.
    const events = traffic(Date.now() - 40_000, 40, 25, ["gift-svc", "room-svc"]);
    await producer.send({
      topic: input,
      messages: events.map((e) => ({ key: e.service, value: encode.encode(e), timestamp: String(e.ts) })),
    });
    // A trickle of later seconds moves the watermark past the incident, so its seconds close.
    for (let k = 0; k < 12 && written.size < 2; k++) {
      await producer.send({
        topic: input,
        messages: traffic(Date.now(), 1, 0, ["gift-svc", "room-svc"]).map((e) => ({
          key: e.service,
          value: encode.encode(e),
        })),
      });
      await new Promise((r) => setTimeout(r, 1000));
    }
    await producer.disconnect();
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && ![...written.values()].some((w) => w.alert.service === "gift-svc")) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const gift = [...written.values()].find((w) => w.alert.service === "gift-svc");
    assert.ok(gift, "the health pipeline fired an alert for gift-svc");
    await page.waitForSelector(`[data-testid="alert"][data-id="${gift.alert.id}"]`, { timeout: 10_000 });
    const seenAt = await page.evaluate(
      (id) => (window as unknown as { alertSeenAt: Record<string, number> }).alertSeenAt[id],
      gift.alert.id,
    );
    const delay = (seenAt ?? Number.POSITIVE_INFINITY) - gift.at;
    assert.ok(delay <= 5000, `the alert showed ${delay} ms after the pipeline wrote it`);
    console.log(`alert on the page ${delay} ms after the pipeline wrote it`);

    page.once("dialog", (d) => void d.accept("looking at the gift-svc upstream"));
    const card = page.locator(`[data-testid="alert"][data-id="${gift.alert.id}"]`);
    await card.locator('[data-testid="ack"]').click();
    await page.waitForSelector(`[data-testid="alert"][data-id="${gift.alert.id}"][data-status="acknowledged"]`);
    await card.locator('[data-testid="timeline-toggle"]').click();
    const timeline = (await card.locator('[data-testid="timeline"]').textContent()) ?? "";
    assert.match(timeline, /fired/);
    assert.match(timeline, /acknowledged by sre: looking at the gift-svc upstream/);
    assert.match(
      (await page.locator('[data-scene="gifting"] [data-testid="on-duty"]').textContent()) ?? "",
      /Chen Jing/,
    );
    await page.screenshot({ path: join(SCREENSHOTS, "alerts.png") });

    await page.goto(`${base}/alerts?tab=report&since=1h`);
    await page.waitForSelector('[data-testid="alert-report"] table');
    assert.match((await page.locator('[data-testid="alert-report"]').textContent()) ?? "", /gifting/);
    await page.screenshot({ path: join(SCREENSHOTS, "alerts-report.png") });
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([`${appId}-probe`]).catch(() => {});
    await page.close();
  }
});

test("health: the tree shows each node's availability, level, budget and burn; a service's charts mark its alert", async () => {
  const page = await open("/health?since=15m");
  await page.waitForSelector('[data-testid="tree-node"][data-level="SERVICE"]', { timeout: 20_000 });
  const names = await page
    .locator('[data-testid="tree-node"]')
    .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-name")));
  assert.ok(names.includes("gift-svc") && names.includes("room-svc") && names.includes("live"), names.join(", "));
  await page.goto(`${base}/health?since=15m&service=gift-svc`);
  await page.waitForSelector('[data-testid="chart-qps"] canvas');
  await page.screenshot({ path: join(SCREENSHOTS, "health.png") });
  await page.goto(`${base}/health?tab=report&day=${new Date().toISOString().slice(0, 10)}`);
  await page.waitForSelector('[data-testid="daily-report"] h4');
  await page.screenshot({ path: join(SCREENSHOTS, "health-report.png") });
  await page.close();
});

test("a token limited to gift-svc sees only gift-svc's logs, health and alerts, on every page and API", async () => {
  const page = await open("/logs?q=&since=1h", gifting);
  await page.waitForSelector('[data-testid="hit"]');
  const services = await page.locator('[data-testid="hit"] td:nth-child(3)').allTextContents();
  assert.ok(services.length > 0 && services.every((s) => s === "gift-svc"), services.join(","));
  await page.goto(`${base}/health?since=15m`);
  await page.waitForSelector('[data-testid="tree-node"]', { timeout: 20_000 });
  const nodes = await page
    .locator('[data-testid="tree-node"]')
    .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-name") ?? ""));
  assert.ok(nodes.length > 0 && nodes.every((n) => n.startsWith("gift-svc")), nodes.join(", "));
  await page.goto(`${base}/alerts`);
  await page.waitForSelector('[data-testid="alert"]');
  const alerted = await page
    .locator('[data-testid="alert"]')
    .evaluateAll((cards) => cards.map((c) => c.getAttribute("data-service")));
  assert.ok(
    alerted.every((s) => s === "gift-svc"),
    alerted.join(","),
  );
  await page.close();

  // The APIs behind the pages.
  assert.equal((await api("/v1/logs/search?service=room-svc", gifting)).status, 403);
  const search = (await (await api("/v1/logs/search?since=1h&limit=500", gifting)).json()) as {
    hits: Array<{ service: string }>;
  };
  assert.ok(search.hits.every((h) => h.service === "gift-svc"));
  assert.equal((await api("/v1/health/series?service=room-svc", gifting)).status, 403);
  const tree = (await (await api("/v1/health/tree?since=15m", gifting)).json()) as {
    roots: Array<{ service: string }>;
  };
  assert.ok(tree.roots.length > 0 && tree.roots.every((n) => n.service === "gift-svc"));
  const report = (await (
    await api(`/v1/health/report?day=${new Date().toISOString().slice(0, 10)}`, gifting)
  ).json()) as {
    app: unknown[];
    services: Array<{ service: string }>;
  };
  assert.equal(report.app.length, 0);
  assert.ok(report.services.every((s) => s.service === "gift-svc"));
  const board = (await (await api("/v1/alerts", all)).json()) as { alerts: Array<{ id: string; service: string }> };
  const room = board.alerts.find((a) => a.service === "room-svc");
  assert.ok(room, "the incident alerted room-svc too");
  assert.equal((await api(`/v1/alerts/${encodeURIComponent(room.id)}`, gifting)).status, 404);
  assert.equal((await api(`/v1/alerts/${encodeURIComponent(room.id)}/ack`, gifting, { method: "POST" })).status, 404);
  const scoped = (await (await api("/v1/alerts", gifting)).json()) as { alerts: Array<{ service: string }> };
  assert.ok(scoped.alerts.every((a) => a.service === "gift-svc"));
  const reportOfAlerts = (await (await api("/v1/alerts/report?since=1h", gifting)).json()) as {
    alerts: Array<{ target: string }>;
  };
  assert.ok(reportOfAlerts.alerts.every((a) => a.target.startsWith("gift-svc")));
});

test("the console's own routes under hostile input: 400s naming the limit, 401, 404, 405, 429 with Retry-After, never a 500; an audit line per request", async () => {
  const expect = async (path: string, status: number, init: RequestInit = {}, token: string | null = all) => {
    const res = token === null ? await fetch(`${base}${path}`, init) : await api(path, token, init);
    const body = (await res.json()) as { error?: { code: string; limit?: string; message: string } };
    assert.equal(res.status, status, `${path}: ${JSON.stringify(body)}`);
    return body.error;
  };
  await expect("/v1/health/tree", 401, {}, null);
  await expect("/v1/health/tree", 401, {}, "wlt_not-a-token");
  await expect("/v1/health/tree", 405, { method: "POST" });
  await expect("/v1/nothing", 404);
  assert.equal((await expect("/v1/health/tree?since=40d", 400))?.limit, "maxWindow");
  assert.equal((await expect("/v1/health/series?service=gift-svc&points=100000", 400))?.limit, "maxPoints");
  await expect("/v1/health/tree?since=yesterday", 400);
  await expect(`/v1/health/tree?since=${"9".repeat(5000)}`, 400);
  await expect("/v1/health/series", 400);
  await expect("/v1/health/report?day=2026-02-30", 400);
  await expect("/v1/alerts/%ZZ", 400);
  await expect(`/v1/alerts/${"x".repeat(600)}`, 400);
  await expect("/v1/alerts/no-such-alert/ack", 404, { method: "POST" });
  const board = (await (await api("/v1/alerts", all)).json()) as { alerts: Array<{ id: string }> };
  const id = encodeURIComponent(board.alerts[0]?.id ?? "");
  const json = { "content-type": "application/json" };
  assert.equal(
    (
      await expect(`/v1/alerts/${id}/note`, 400, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ note: "x".repeat(5000) }),
      })
    )?.limit,
    "maxBodyBytes",
  );
  assert.equal(
    (
      await expect(`/v1/alerts/${id}/note`, 400, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ note: "x".repeat(1001) }),
      })
    )?.limit,
    "maxNoteChars",
  );
  await expect(`/v1/alerts/${id}/note`, 400, { method: "POST", headers: json, body: "{not json" });
  await expect(`/v1/alerts/${id}/note`, 400, { method: "POST", headers: json, body: "[1]" });
  await expect(`/v1/alerts/${id}/note`, 400, { method: "POST", headers: json, body: JSON.stringify({ note: 5 }) });
  await expect(`/v1/alerts/${id}/note`, 400, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ note: "a", by: "x" }),
  });
  await expect(`/v1/alerts/${id}/note`, 400, {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: "hello",
  });
  await expect(`/v1/alerts/${id}/note`, 200, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ note: "checked the upstream" }),
  });
  const audit = logged.find((l) => l.msg === "request" && l.route === "alert-note" && l.status === 200);
  assert.ok(audit, "an audit line for the note");
  assert.equal(audit.token, "sre");
  assert.equal(audit.alert, decodeURIComponent(id));
  assert.ok(!JSON.stringify(logged).includes(all), "no token in the log");

  // One token's burst: past it, 429 with Retry-After, and the other tokens are not held back.
  const statuses = await Promise.all(
    Array.from({ length: 40 }, () =>
      api("/v1/me", burst).then((r) => [r.status, r.headers.get("retry-after")] as const),
    ),
  );
  assert.ok(
    statuses.some(([s]) => s === 429),
    statuses.map(([s]) => s).join(","),
  );
  assert.ok(statuses.filter(([s]) => s === 429).every(([, after]) => Number(after) >= 1));
  assert.equal((await api("/v1/me", all)).status, 200);
  assert.ok(!logged.some((l) => l.msg === "request" && l.status === 500), "no 500");
});
