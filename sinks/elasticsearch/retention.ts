// Retention of daily indices by deletion. The local Elasticsearch has no ILM (docs/stack.md), and
// deleting a whole index is the cheapest way to drop old documents on any cluster: no
// delete-by-query, no merges.
//
// `IndexRetention` lists the indices matching its rules' patterns, reads each one's day from its
// name (`...-YYYY.MM.DD`) and deletes those whose day ended more than the rule's keep duration ago.
// An index is deleted only by its exact name, and only when it matches a rule's pattern AND ends with
// a real date: an index of another naming scheme, an alias or a hidden index is never touched.
// `IndexRetentionScheduler` runs retentions on a cron expression (node-cron).
import type { Client } from "@elastic/elasticsearch";
import pino, { type Logger } from "pino";
import { type Duration, ms } from "../../stream/types.ts";
import { CronRuns, type CronRunsOptions } from "../cron-runs.ts";
import { dailyIndexDay } from "./index-name.ts";

const DAY_MS = 86_400_000;

export interface DailyIndexRule {
  /** Index names the rule covers, `*` matching any run of characters, e.g. `logs-*`. Must start with a literal character. */
  pattern: string;
  /** How long an index is kept after its day ends, e.g. `7d`: the day's index goes once day end + keep has passed. */
  keep: Duration;
}

export interface DailyIndex {
  index: string;
  /** Start of the index's day (UTC), ms since the epoch. */
  day: number;
  /** The pattern of the first rule that matches it. */
  pattern: string;
  docs: number | null;
  bytes: number | null;
}

export interface IndexRetentionRun {
  patterns: string[];
  deleted: DailyIndex[];
  /** Daily indices of the patterns left in place. */
  kept: number;
  dryRun: boolean;
}

export class RetentionRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RetentionRuleError";
  }
}

/** Elasticsearch's wildcard matching as used for index patterns: `*` is any run of characters, nothing else is special. */
export function matchesPattern(pattern: string, name: string): boolean {
  const parts = pattern.split("*");
  const first = parts[0] as string;
  const last = parts[parts.length - 1] as string;
  if (parts.length === 1) return name === pattern;
  if (!name.startsWith(first) || name.length < first.length + last.length || !name.endsWith(last)) return false;
  let at = first.length;
  const end = name.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i] as string;
    const found = name.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

/** Expired when the whole day is older than `keepMs`: day end + keep <= now. */
export function dayExpired(day: number, keepMs: number, now: number): boolean {
  return day + DAY_MS + keepMs <= now;
}

function checkRule(rule: DailyIndexRule): { pattern: string; keepMs: number } {
  const p = rule.pattern;
  if (typeof p !== "string" || p === "" || /^[*.\-_+]/.test(p) || /[\s,\\/?"<>|#:]/.test(p) || p !== p.toLowerCase()) {
    throw new RetentionRuleError(
      `retention pattern ${JSON.stringify(p)} is not an index pattern with a literal start (e.g. "logs-*"): a pattern must name its indices, never all of them`,
    );
  }
  try {
    return { pattern: p, keepMs: ms(rule.keep) };
  } catch (e) {
    throw new RetentionRuleError(`retention of ${p}: ${(e as Error).message}`);
  }
}

export interface IndexRetentionOptions {
  client: Client;
  /** Evaluated in order: an index follows the first rule whose pattern it matches (list narrower patterns first). */
  rules: DailyIndexRule[];
  logger?: Logger;
  /** List what would be deleted, delete nothing. */
  dryRun?: boolean;
}

export class IndexRetention {
  readonly rules: ReadonlyArray<{ pattern: string; keepMs: number }>;
  readonly dryRun: boolean;
  private readonly client: Client;
  private readonly log: Logger;

  constructor(options: IndexRetentionOptions) {
    if (!Array.isArray(options.rules) || options.rules.length === 0) {
      throw new RetentionRuleError("retention needs at least one rule ({ pattern, keep })");
    }
    this.rules = options.rules.map(checkRule);
    this.client = options.client;
    this.log = options.logger ?? pino({ name: "weir-es-retention" });
    this.dryRun = !!options.dryRun;
  }

  get patterns(): string[] {
    return this.rules.map((r) => r.pattern);
  }

  /** The daily indices the rules cover (open and closed; hidden ones never), oldest day first. */
  async indices(): Promise<DailyIndex[]> {
    const rows = (await this.client.cat.indices(
      {
        index: this.patterns,
        format: "json",
        h: "index,docs.count,store.size",
        bytes: "b",
        expand_wildcards: ["open", "closed"],
      },
      { ignore: [404] },
    )) as unknown as Array<{ index?: string; "docs.count"?: string | null; "store.size"?: string | null }>;
    const out: DailyIndex[] = [];
    for (const row of Array.isArray(rows) ? rows : []) {
      const index = row.index;
      if (typeof index !== "string") continue;
      const rule = this.rules.find((r) => matchesPattern(r.pattern, index));
      const day = dailyIndexDay(index);
      if (!rule || day === null) continue;
      out.push({
        index,
        day,
        pattern: rule.pattern,
        docs: numberOrNull(row["docs.count"]),
        bytes: numberOrNull(row["store.size"]),
      });
    }
    return out.sort((a, b) => a.day - b.day || (a.index < b.index ? -1 : 1));
  }

  async expired(now = Date.now()): Promise<DailyIndex[]> {
    return (await this.indices()).filter((i) => this.isExpired(i, now));
  }

  /** Deletes the expired indices, one request each and by exact name, so one failure leaves the others deleted. */
  async run(now = Date.now()): Promise<IndexRetentionRun> {
    const all = await this.indices();
    const expired = all.filter((i) => this.isExpired(i, now));
    for (const i of expired) {
      if (!this.dryRun) await this.client.indices.delete({ index: i.index, ignore_unavailable: true });
      this.log.info(
        { index: i.index, pattern: i.pattern, docs: i.docs, bytes: i.bytes, dryRun: this.dryRun },
        this.dryRun ? "index expired (dry run: kept)" : "expired index deleted",
      );
    }
    return { patterns: this.patterns, deleted: expired, kept: all.length - expired.length, dryRun: this.dryRun };
  }

  private isExpired(i: DailyIndex, now: number): boolean {
    const rule = this.rules.find((r) => r.pattern === i.pattern);
    // Checked again on the name itself: nothing outside a pattern, nothing without a date, is ever deleted.
    return (
      rule !== undefined &&
      matchesPattern(rule.pattern, i.index) &&
      dailyIndexDay(i.index) === i.day &&
      !/[*?,]/.test(i.index) &&
      dayExpired(i.day, rule.keepMs, now)
    );
  }
}

function numberOrNull(v: string | null | undefined): number | null {
  if (v === null || v === undefined || v === "") return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

export type IndexRetentionSchedulerOptions = CronRunsOptions;

/** Runs index retentions on a schedule (sinks/cron-runs.ts). */
export class IndexRetentionScheduler extends CronRuns<IndexRetention, IndexRetentionRun> {
  constructor(retentions: IndexRetention[], options: IndexRetentionSchedulerOptions) {
    super(retentions, options, {
      name: "weir-es-retention",
      jobs: (js) => ({ patterns: js.flatMap((r) => r.patterns) }),
      job: (r) => ({ patterns: r.patterns }),
      summary: (runs) => ({ deleted: runs.reduce((n, r) => n + r.deleted.length, 0), retentions: runs.length }),
      scheduled: "index retention scheduled",
      failed: "index retention failed; the next run tries again",
      done: "index retention run done",
    });
  }

  get retentions(): IndexRetention[] {
    return this.jobs;
  }
}
