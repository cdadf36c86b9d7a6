// The Risk page's API: the fraud pipeline's signals as the risk team reads them. The live stream
// follows signals.risk (a consumer group of this process alone, from the newest record: history comes
// from weir.risk_signals), each signal with its rule's category; a signal's page is `weir rules
// explain`'s reading (the rule from the rules folder, each expression with the values its evidence
// recorded), with the evidence and the events; per-rule hit counts in buckets of event time; shadow
// against live, and a shadow rule against the rule it replaces on the same window's signals.
//
// Risk signals belong to no service: they name users, devices and phone hashes. A token limited to
// services reads none of it (403), an all-services token reads all of it.
import { randomUUID } from "node:crypto";
import { type ClickHouseClient, createClient } from "@clickhouse/client";
import type { Consumer } from "kafkajs";
import type { Logger } from "pino";
import { KafkaClient } from "../../kafka/client.ts";
import { compareShadows } from "../../pipelines/fraud/backtest.ts";
import { explainSignal } from "../../pipelines/fraud/explain.ts";
import { compileRuleSet } from "../../pipelines/fraud/rules/compile.ts";
import type { RulePlan } from "../../pipelines/fraud/rules/plan.ts";
import { flaggedEntities, newestSignals, ruleHits, type SignalFilter } from "../../pipelines/fraud/signal-stats.ts";
import { readSignal } from "../../pipelines/fraud/signals-reader.ts";
import { HttpError } from "../../pipelines/logs/api/server.ts";
import { resolveWindow } from "../../pipelines/logs/search/time.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import type { ConsoleRoute, RouteContext } from "./console-server.ts";

export const SIGNALS_TOPIC = "signals.risk";
const DAY = 86_400_000;
export const RISK_LIMITS = {
  /** Window of the lists and counts. */
  maxWindowMs: 31 * DAY,
  /** Signals of one list. */
  maxSignals: 1000,
  /** Entities compared per shadow rule and window. */
  maxShadowEntities: 200_000,
  /** Signals the live stream keeps for a page that opens. */
  recent: 200,
};
/** A rules folder is compiled again when it is older than this (the pipeline hot-reloads it too). */
const RULES_TTL_MS = 30_000;
const HEARTBEAT_MS = 15_000;
const RULE_ID = /^[A-Za-z0-9_.:-]{1,200}$/;
const SIGNAL_ID = /^[A-Za-z0-9_.:/+=-]{1,300}$/;

export type CategorisedSignal = RiskSignal & { category: string };

export interface RiskConsoleOptions {
  clickhouseUrl: string;
  /** Database of weir.risk_signals (default weir). */
  database?: string;
  rulesDir: string;
  brokers: string[];
  topic?: string;
  logger: Logger;
}

/** What each rule is, for the page: from the rules folder as it is now. */
export interface RuleView {
  id: string;
  version: number;
  category: string;
  status: string;
  severity: string;
  action: string;
  owner: string;
  description?: string;
  replaces?: string;
  source: string;
}

export class RiskConsole {
  private readonly client: ClickHouseClient;
  private readonly database: string;
  private readonly kafka: KafkaClient;
  private readonly groupId = `weir-console-risk-${randomUUID().slice(0, 8)}`;
  private consumer: Consumer | null = null;
  private rules: { at: number; plans: RulePlan[]; problems: number } | null = null;
  private readonly recent: CategorisedSignal[] = [];
  private readonly listeners = new Set<(s: CategorisedSignal) => void>();
  readonly streams = new Set<import("node:http").ServerResponse>();

  constructor(private readonly options: RiskConsoleOptions) {
    this.client = createClient({ url: options.clickhouseUrl, request_timeout: 30_000 });
    this.database = options.database ?? "weir";
    this.kafka = new KafkaClient({ brokers: options.brokers, clientId: this.groupId, logger: options.logger });
  }

  /** Joins signals.risk from its end; resolves once it has its partitions. */
  async start(): Promise<void> {
    const consumer = this.kafka.consumer({ groupId: this.groupId, assigner: undefined });
    this.consumer = consumer;
    const joined = new Promise<void>((resolve) => {
      const off = consumer.on(consumer.events.GROUP_JOIN, () => {
        off();
        resolve();
      });
    });
    const codec = codecFor("RiskSignal");
    await consumer.connect();
    await consumer.subscribe({ topic: this.options.topic ?? SIGNALS_TOPIC, fromBeginning: false });
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (!message.value) return;
        let s: RiskSignal;
        try {
          s = codec.decode(message.value);
        } catch (e) {
          this.options.logger.warn({ err: (e as Error).message }, "a signals record did not decode; skipped");
          return;
        }
        this.apply(s);
      },
    });
    await joined;
  }

  /** A signal from the topic: kept among the recent ones, pushed to the open streams. */
  apply(s: RiskSignal): void {
    const c: CategorisedSignal = { ...s, category: this.ruleOf(s.ruleId)?.category ?? "" };
    this.recent.push(c);
    if (this.recent.length > RISK_LIMITS.recent) this.recent.splice(0, this.recent.length - RISK_LIMITS.recent);
    for (const l of this.listeners) l(c);
  }

  subscribe(listener: (s: CategorisedSignal) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async stop(): Promise<void> {
    for (const s of this.streams) s.end();
    const c = this.consumer;
    this.consumer = null;
    if (c) {
      await c.disconnect().catch(() => {});
      const admin = this.kafka.native.admin();
      try {
        await admin.connect();
        await admin.deleteGroups([this.groupId]);
      } catch {
        // A group left behind expires with the broker's offsets retention.
      } finally {
        await admin.disconnect().catch(() => {});
      }
    }
    await this.client.close();
  }

  /** The rules folder's plans, compiled at most every RULES_TTL_MS. */
  plans(): { plans: RulePlan[]; problems: number } {
    const now = Date.now();
    if (!this.rules || now - this.rules.at > RULES_TTL_MS) {
      const r = compileRuleSet(this.options.rulesDir);
      this.rules = { at: now, plans: r.rules, problems: r.problems.length };
    }
    return this.rules;
  }

  private ruleOf(id: string): RulePlan | undefined {
    return this.plans().plans.find((r) => r.id === id);
  }

  routes(): ConsoleRoute[] {
    const guard = (ctx: RouteContext) => {
      if (ctx.services !== undefined) {
        throw new HttpError(
          403,
          "forbidden",
          "risk signals belong to no service: a token limited to services cannot read them",
          "use a token for all services (weir logs token --services '*')",
        );
      }
      ctx.audit.store = "clickhouse";
    };
    return [
      {
        name: "risk-signals",
        method: "GET",
        pattern: /^\/v1\/risk\/signals$/,
        handle: async (ctx) => {
          guard(ctx);
          const f = filter(ctx.url);
          const limit = bounded(ctx.url, "limit", 200, 1, RISK_LIMITS.maxSignals, "maxSignals");
          const signals = await newestSignals(this.client, this.database, f, limit);
          ctx.audit.results = signals.length;
          ctx.json(200, { from: f.from, to: f.to, signals });
        },
      },
      {
        name: "risk-stream",
        method: "GET",
        pattern: /^\/v1\/risk\/stream$/,
        stream: true,
        handle: async (ctx) => {
          guard(ctx);

          const res = ctx.res;
          res.writeHead(200, {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            connection: "keep-alive",
            "x-accel-buffering": "no",
          });
          this.streams.add(res);
          res.write(": signals\n\n");
          const unsubscribe = this.subscribe((s) => {
            if (!res.destroyed) res.write(`event: signal\ndata: ${JSON.stringify(s)}\n\n`);
          });
          const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS);
          await new Promise<void>((resolve) => res.on("close", resolve));
          clearInterval(heartbeat);
          unsubscribe();
          this.streams.delete(res);
        },
      },
      {
        name: "risk-signal",
        method: "GET",
        pattern: /^\/v1\/risk\/signals\/([^/]+)$/,
        handle: async (ctx) => {
          guard(ctx);
          const id = ctx.params[0] ?? "";
          if (!SIGNAL_ID.test(id)) throw new HttpError(400, "bad_request", "not a signal id");
          const { from } = window(ctx.url, 30 * DAY);
          const signal =
            (await readSignal(this.client, this.database, id, from)) ?? this.recent.find((s) => s.id === id);
          if (!signal) throw new HttpError(404, "not_found", `no signal ${id} in the window`, "give a longer since");
          const rule = this.ruleOf(signal.ruleId);
          ctx.audit.results = 1;
          ctx.json(200, {
            signal,
            category: signal.category || rule?.category || "",
            rule: rule ? ruleView(rule) : null,
            explain: explainSignal(signal, rule),
          });
        },
      },
      {
        name: "risk-rules",
        method: "GET",
        pattern: /^\/v1\/risk\/rules$/,
        handle: async (ctx) => {
          guard(ctx);
          const f = filter(ctx.url);
          const points = bounded(ctx.url, "points", 120, 10, 600, "maxPoints");
          const { plans, problems } = this.plans();
          const hits = await ruleHits(this.client, this.database, f, points);
          const pairs = plans.filter((r) => r.replaces !== undefined && r.status !== "disabled");
          const ids = [...new Set(pairs.flatMap((r) => [r.id, r.replaces as string]))];
          const entities = await flaggedEntities(this.client, this.database, f, ids, RISK_LIMITS.maxShadowEntities);
          const shadows = compareShadows(
            { rules: plans } as Parameters<typeof compareShadows>[0],
            entities as RiskSignal[],
          );
          ctx.audit.results = hits.rules.length;
          ctx.json(200, {
            ...hits,
            rules: hits.rules,
            catalog: plans.map(ruleView),
            rulesProblems: problems,
            shadows,
            shadowsTruncated: entities.length >= RISK_LIMITS.maxShadowEntities,
            backtest: {
              stored: false,
              note: "backtests are not stored: weir rules backtest --sim <dir> replays a simulator run through the rules and prints its report",
            },
          });
        },
      },
      {
        name: "risk-recent",
        method: "GET",
        pattern: /^\/v1\/risk\/recent$/,
        handle: async (ctx) => {
          guard(ctx);
          ctx.json(200, { signals: [...this.recent].reverse() });
        },
      },
    ];
  }
}

function ruleView(r: RulePlan): RuleView {
  return {
    id: r.id,
    version: r.version,
    category: r.category,
    status: r.status,
    severity: r.severity,
    action: r.action,
    owner: r.owner,
    ...(r.description !== undefined ? { description: r.description } : {}),
    ...(r.replaces !== undefined ? { replaces: r.replaces } : {}),
    source: `${r.source.file}:${r.source.line}`,
  };
}

function text(q: URLSearchParams, name: string, max = 200): string | undefined {
  const v = q.get(name);
  if (v === null || v === "") return undefined;
  if (v.length > max) throw new HttpError(400, "bad_request", `${name} is longer than ${max} characters`);
  return v;
}

function window(url: URL, defaultSince: number): { from: number; to: number } {
  const q = url.searchParams;
  const w = resolveWindow(
    { since: text(q, "since"), from: text(q, "from"), to: text(q, "to") },
    defaultSince,
    Date.now(),
  );
  if (w.to - w.from > RISK_LIMITS.maxWindowMs) {
    throw new HttpError(
      400,
      "limit_exceeded",
      `the window is longer than ${RISK_LIMITS.maxWindowMs / DAY} days`,
      "narrow it with since, or from and to",
      undefined,
      { limit: "maxWindow", value: Math.round((w.to - w.from) / 1000), max: RISK_LIMITS.maxWindowMs / 1000 },
    );
  }
  return w;
}

function filter(url: URL): SignalFilter {
  const q = url.searchParams;
  const f: SignalFilter = window(url, 3_600_000);
  const rule = text(q, "rule");
  if (rule !== undefined) {
    if (!RULE_ID.test(rule)) throw new HttpError(400, "bad_request", "rule: a rule id (letters, digits, . _ : -)");
    f.rule = rule;
  }
  const category = text(q, "category");
  if (category !== undefined) f.category = category;
  const shadow = q.get("shadow");
  if (shadow === "true" || shadow === "false") f.shadow = shadow === "true";
  else if (shadow !== null && shadow !== "") throw new HttpError(400, "bad_request", "shadow: true or false");
  return f;
}

function bounded(url: URL, name: string, dflt: number, min: number, max: number, limit: string): number {
  const v = url.searchParams.get(name);
  if (v === null || v === "") return dflt;
  if (!/^\d{1,9}$/.test(v)) throw new HttpError(400, "bad_request", `${name}=${v.slice(0, 32)} is not a whole number`);
  const n = Number(v);
  if (n < min || n > max)
    throw new HttpError(400, "limit_exceeded", `${name} must be ${min} to ${max}`, undefined, undefined, {
      limit,
      value: n,
      max,
    });
  return n;
}
