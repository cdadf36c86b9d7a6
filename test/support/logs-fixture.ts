// A small, varied set of log lines in the real stores, for tests of the search's limits and its fuzz
// test: app and access lines of three services, with levels, traces, statuses, latencies, attributes
// and masked phone numbers, indexed into Elasticsearch with the real templates and mapper (indices
// under a prefix of the run's own) and inserted into a ClickHouse database of the run's own with the
// real DDL and rows. `drop()` removes all of it.
import assert from "node:assert/strict";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Client } from "@elastic/elasticsearch";
import pino from "pino";
import { accessLogDocument, appLogDocument } from "../../pipelines/logs/documents.ts";
import { loadPiiKey } from "../../pipelines/logs/pii/key.ts";
import { PiiMasker } from "../../pipelines/logs/pii/masker.ts";
import { accessLogRow, appLogRow } from "../../pipelines/logs/rows.ts";
import { logsTableStatements } from "../../pipelines/logs/table.ts";
import { logsTemplates } from "../../pipelines/logs/template.ts";
import type { AccessLog, AppLog, Level } from "../../schemas/types.generated.ts";
import { DailyIndexNamer } from "../../sinks/elasticsearch/index-name.ts";
import { installTemplates } from "../../sinks/elasticsearch/templates.ts";
import { uniqueName } from "./stack.ts";

export const FIXTURE_SERVICES = ["gift-svc", "pay-svc", "room-svc"] as const;
const LEVELS: Level[] = ["DEBUG", "INFO", "INFO", "WARN", "ERROR", "FATAL"];
const WORDS = ["timeout", "upstream", "refused", "gift", "sent", "balance", "room", "enter", "retry", "ok"];

export interface LogsFixture {
  prefix: string;
  database: string;
  masker: PiiMasker;
  /** Lines per service. */
  counts: Record<string, number>;
  from: number;
  to: number;
  drop(): Promise<void>;
}

export async function createLogsFixture(es: Client, ch: ClickHouseClient, linesPerService = 60): Promise<LogsFixture> {
  const prefix = uniqueName("t_logs_safety");
  const database = uniqueName("t_logs_safety");
  const masker = new PiiMasker({}, loadPiiKey({ WEIR_ENV: "development" }));
  const templates = logsTemplates({ prefix, name: prefix });
  const namer = new DailyIndexNamer(prefix);
  const to = Date.now();
  const from = to - 30 * 60_000;
  const drop = async () => {
    await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    // By name: the cluster refuses to delete by wildcard (action.destructive_requires_name).
    const rows = (await es.cat.indices(
      { index: `${prefix}-*`, format: "json", h: "index" },
      { ignore: [404] },
    )) as unknown;
    for (const r of Array.isArray(rows) ? (rows as Array<{ index: string }>) : [])
      await es.indices.delete({ index: r.index, ignore_unavailable: true });
    for (const t of templates.indexTemplates) await es.indices.deleteIndexTemplate({ name: t.name }, { ignore: [404] });
    for (const c of templates.components) await es.cluster.deleteComponentTemplate({ name: c.name }, { ignore: [404] });
  };
  try {
    for (const stmt of logsTableStatements(database)) await ch.command({ query: stmt });
    await installTemplates(es, templates, { logger: pino({ level: "silent" }) });
    const operations: object[] = [];
    const rows: object[] = [];
    const counts: Record<string, number> = {};
    for (const [s, service] of FIXTURE_SERVICES.entries()) {
      counts[service] = linesPerService;
      for (let i = 0; i < linesPerService; i++) {
        const ts = from + Math.floor(((i + 0.5) * (to - from)) / linesPerService);
        const traceId = `${(s * 1000 + Math.floor(i / 3)).toString(16).padStart(32, "0")}`;
        const source = { file: `/var/log/${service}/app.log`, fileId: `${service}-file-4096`, offset: i * 200, seq: i };
        if (i % 2 === 0) {
          const phone = i % 10 === 0 ? ` for 138${String(10_000_000 + i).slice(-8)}` : "";
          const app: AppLog = {
            id: `${service}-app-${i}`,
            ts,
            service,
            host: `${service}-${i % 3}`,
            level: LEVELS[i % LEVELS.length] as Level,
            message: masker.maskText(`${WORDS[i % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]} #${i}${phone}`),
            logger: i % 4 === 0 ? "com.weir.Gift" : null,
            traceId,
            spanId: null,
            error:
              i % 6 === 4 ? { type: "java.net.SocketTimeoutException", message: "read timed out", stack: null } : null,
            attributes: { reqId: `q-${i}`, thread: `http-nio-${i % 5}` },
            source,
          };
          operations.push({ create: { _index: namer.name(service, ts), _id: app.id } }, appLogDocument(app));
          rows.push(appLogRow(app, app.id));
        } else {
          const access: AccessLog = {
            id: `${service}-access-${i}`,
            ts,
            app: "live",
            system: "gifting",
            service,
            endpoint: i % 3 === 0 ? "/gift/send" : "/room/{id}/enter",
            method: i % 2 ? "POST" : "GET",
            status: [200, 200, 404, 503, 502][i % 5] as number,
            latencyUs: 1000 + i * 4321,
            bytesIn: 100,
            bytesOut: 2000,
            errorCode: i % 5 === 3 ? "UPSTREAM_TIMEOUT" : null,
            traceId,
            caller: i % 4 === 1 ? "gateway" : null,
            uid: i % 3 === 0 ? 100_000 + i : null,
            deviceId: null,
            clientIp: "10.0.0.1",
            roomId: null,
            userAgent: "sdk/1.0",
            urlQuery: null,
            referrer: null,
            host: `${service}-${i % 3}`,
            source,
          };
          const id = `${source.fileId}:${source.offset}`;
          operations.push({ create: { _index: namer.name(service, ts), _id: id } }, accessLogDocument(access));
          rows.push(accessLogRow(access, id));
        }
      }
    }
    const res = await es.bulk({ operations, refresh: true });
    assert.equal(res.errors, false, JSON.stringify(res.items.find((it) => it.create?.error)));
    await ch.insert({ table: `${database}.logs`, values: rows, format: "JSONEachRow" });
    return { prefix, database, masker, counts, from, to, drop };
  } catch (e) {
    await drop();
    throw e;
  }
}

/** What a search sent to a store: the request's parameters as given to the client. */
export type Sent =
  | { store: "elasticsearch"; params: Record<string, unknown> }
  | { store: "clickhouse"; params: Record<string, unknown> };

/** The client, recording into `sent` the parameters of every search and msearch before it sends them. */
export function recordingElasticsearch(client: Client, sent: Sent[]): Client {
  return new Proxy(client, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if ((key === "search" || key === "msearch") && typeof value === "function") {
        return (params: Record<string, unknown>, options?: unknown) => {
          sent.push({ store: "elasticsearch", params: structuredClone(params) });
          return value.call(target, params, options);
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The client, recording into `sent` the parameters of every query before it sends it. */
export function recordingClickHouse(client: ClickHouseClient, sent: Sent[]): ClickHouseClient {
  return new Proxy(client, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (key === "query" && typeof value === "function") {
        return (params: Record<string, unknown>) => {
          sent.push({ store: "clickhouse", params: structuredClone(params) });
          return value.call(target, params);
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
