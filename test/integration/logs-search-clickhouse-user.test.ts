// The search's read-only ClickHouse user as `weir stack up` makes it, on a private ClickHouse of this
// test's own (its own folder and ports, the stack's code to configure and start it): present from a
// fresh server's first start; added to a running server without a restart; and why weir's depth limit
// is needed at all: ClickHouse 18.16's parser dies on nesting, whoever sends it. Nothing here touches
// the shared stack's ClickHouse.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ClickHouseService } from "../../infra/stack/clickhouse.ts";
import { resolveStackConfig } from "../../infra/stack/config.ts";
import { ensureRunAs } from "../../infra/stack/prerequisites.ts";
import type { ServiceContext } from "../../infra/stack/service.ts";
import { ServiceProcess } from "../../infra/stack/service-process.ts";
import { loadPiiKey } from "../../pipelines/logs/pii/key.ts";
import { PiiMasker } from "../../pipelines/logs/pii/masker.ts";
import { QueryLimitError } from "../../pipelines/logs/query/query.ts";
import { ClickHouseLogHistogram } from "../../pipelines/logs/search/clickhouse-histogram.ts";
import { SEARCH_QUERY_SETTINGS, SEARCH_USER } from "../../pipelines/logs/search/clickhouse-search-user.ts";
import { requireStack, stackConfig } from "../support/stack.ts";

const dir = mkdtempSync(join(tmpdir(), "weir-ch-search-user-"));
chmodSync(dir, 0o755); // the server's unprivileged user must reach it
let service: ClickHouseService;
let proc: ServiceProcess;
let ctx: ServiceContext;
let url: string;
const said: string[] = [];

async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  for (let i = 0; i < n; i++) {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    servers.push(s);
  }
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** A query over HTTP as `user` (default: the default user), with `settings`; the answer's text, or the error's. */
async function sql(query: string, user?: string, settings: Record<string, string | number> = {}): Promise<string> {
  const params = new URLSearchParams();
  if (user) params.set("user", user);
  for (const [k, v] of Object.entries(settings)) params.set(k, String(v));
  try {
    const res = await fetch(`${url}/?${params}`, { method: "POST", body: query, signal: AbortSignal.timeout(20_000) });
    return (await res.text()).trim();
  } catch (e) {
    return `no answer: ${(e as Error).message}`;
  }
}

async function uptime(): Promise<number> {
  return Number(await sql("SELECT uptime()"));
}

before(async () => {
  await requireStack();
  const [http, tcp] = await freePorts(2);
  const cfg = resolveStackConfig({
    ...process.env,
    WEIR_STACK_CONFIG: "",
    WEIR_STACK_DIR: dir,
    WEIR_STACK_DOWNLOADS: stackConfig.paths.downloads,
    WEIR_CH_HTTP_PORT: String(http),
    WEIR_CH_TCP_PORT: String(tcp),
  });
  service = new ClickHouseService(cfg);
  url = service.endpoint();
  const runAs = await ensureRunAs(cfg.user, () => {});
  ctx = { cfg, runAs, java: undefined as never, log: (line) => said.push(line) };
  const version = await service.install(ctx);
  proc = new ServiceProcess("clickhouse", cfg.paths.run);
  proc.start(await service.launch(ctx), { version, ports: service.ports(), user: runAs.name });
  for (let i = 0; !(await service.probe()).ok; i++) {
    assert.ok(i < 120 && proc.running(), "the private ClickHouse did not start");
    await new Promise((r) => setTimeout(r, 500));
  }
});

after(async () => {
  await proc?.stop(30_000);
  rmSync(dir, { recursive: true, force: true });
});

test("a fresh server has the search user from its first start: read-only, its limits fixed, every limit a query carries", async () => {
  await service.reconcile(ctx);
  assert.deepEqual(said, [], "nothing to apply: launch wrote it");
  const changed = await sql(
    "SELECT name, value FROM system.settings WHERE changed ORDER BY name FORMAT TSV",
    SEARCH_USER,
  );
  for (const [k, v] of Object.entries(SEARCH_QUERY_SETTINGS)) assert.match(changed, new RegExp(`^${k}\\t${v}$`, "m"));
  // The search's own settings (the same values) are accepted; any other value, or a write, is not.
  assert.equal(await sql("SELECT 1", SEARCH_USER, SEARCH_QUERY_SETTINGS), "1");
  assert.match(
    await sql("SELECT 1", SEARCH_USER, { max_ast_depth: 100_000 }),
    /Code: 164.*Cannot override setting \(max_ast_depth\)/,
  );
  assert.match(await sql("SELECT 1", SEARCH_USER, { readonly: 0 }), /Code: 164/);
  assert.match(await sql("CREATE DATABASE nope", SEARCH_USER), /Code: 164.*readonly/);
});

test("weir's histogram against it: NOT x 1,000 refused before it is sent; the deepest allowed query runs as the search user", async () => {
  const db = "weir_limits_test";
  await sql(`CREATE DATABASE ${db}`);
  await sql(
    `CREATE TABLE ${db}.logs (ts DateTime, ts_ms UInt64, service String, level Enum8('TRACE' = 1, 'DEBUG' = 2, 'INFO' = 3, 'WARN' = 4, 'ERROR' = 5, 'FATAL' = 6), message String, logger String, url_query String, referrer String, error_message String, error_stack String, attr_keys Array(String), attr_values Array(String)) ENGINE = MergeTree ORDER BY (service, ts)`,
  );
  const now = Date.now();
  await sql(
    `INSERT INTO ${db}.logs (ts, ts_ms, service, level, message) VALUES (toDateTime(${Math.floor(now / 1000)}), ${now}, 'gift-svc', 'ERROR', 'b')`,
  );
  const histogram = new ClickHouseLogHistogram({
    url,
    database: db,
    table: "logs",
    pii: new PiiMasker({}, loadPiiKey({ WEIR_ENV: "development" })),
  });
  try {
    const before = await uptime();
    await assert.rejects(
      histogram.histogram({ from: now - 3_600_000, to: now, query: `${"NOT ".repeat(1000)}a` }),
      (e) => e instanceof QueryLimitError && e.limit === "maxDepth" && e.value === 1000,
    );
    const deepest = `${"NOT (level:error OR ".repeat(8)}13800138000${")".repeat(8)}`;
    const h = await histogram.histogram({ from: now - 3_600_000, to: now, query: deepest, scope: ["gift-svc"] });
    assert.equal(h.store, "clickhouse");
    assert.ok((await uptime()) >= before, "not restarted");
  } finally {
    await histogram.close();
  }
});

test("a running server without the search user gets it from reconcile (weir stack up), without a restart", async () => {
  const file = join(dir, "clickhouse", "users.d", `${SEARCH_USER}.xml`);
  rmSync(file);
  // The server notices a changed users configuration by itself within seconds.
  for (let i = 0; !/Code: 192|Unknown user/.test(await sql("SELECT 1", SEARCH_USER)); i++) {
    assert.ok(i < 60, "the server never forgot the user");
    await new Promise((r) => setTimeout(r, 500));
  }
  const pid = proc.record()?.pid;
  const before = await uptime();
  await service.reconcile(ctx);
  assert.deepEqual(said, [`clickhouse: search user ${SEARCH_USER} applied (users.d, reloaded without a restart)`]);
  assert.equal(await sql("SELECT 1", SEARCH_USER, SEARCH_QUERY_SETTINGS), "1");
  assert.equal(proc.record()?.pid, pid);
  assert.ok(proc.running());
  assert.ok((await uptime()) >= before, "the server was not restarted");
});

test("why the depth limit: ClickHouse 18.16's parser dies on 2,000 nested brackets, whoever sends them", async (t) => {
  const version = await sql("SELECT version()");
  if (!version.startsWith("18.")) {
    t.skip(`ClickHouse ${version} bounds its parser's depth (max_parser_depth)`);
    return;
  }
  const answer = await sql(`SELECT ${"(".repeat(2000)}1${")".repeat(2000)}`);
  t.diagnostic(`answer: ${answer.slice(0, 120)}`);
  for (let i = 0; proc.running(); i++) {
    assert.ok(i < 40, "the server survived: its parser is bounded, and the depth limit is only weir's own");
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal((await service.probe()).ok, false);
});
