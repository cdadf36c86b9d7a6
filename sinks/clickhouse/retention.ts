// Retention by whole partitions: ClickHouse 18.16 has no table TTL, so old data goes with
// `ALTER TABLE ... DROP PARTITION`, which removes a partition's parts at once (no mutation, no
// merge). A table's PARTITION BY is chosen for this: per day for fine data, per month for sparse data.
//
// `PartitionRetention` reads a table's partitions from system.parts, asks a rule whether each one
// is expired as of now, and drops those. `RetentionScheduler` runs retentions on a cron expression
// (node-cron). The rules here read partition values, never rows: a partition is dropped only when
// every row it can hold is past its keep duration.

import type { ClickHouseClient } from "@clickhouse/client";
import pino, { type Logger } from "pino";
import { type Duration, ms } from "../../stream/types.ts";
import { CronRuns, type CronRunsOptions } from "../cron-runs.ts";
import { ident, sql } from "./sql.ts";

/** One value of a partition key: a number, a string, or a nested tuple. */
export type PartitionValue = number | string | PartitionValue[];

export interface PartitionInfo {
  /** The partition as system.parts writes it: `(1000,20261120)`, `202611`, `'2026-11-20'`. */
  partition: string;
  /** Its id (`1000-20261120`), what DROP PARTITION ID takes. */
  partitionId: string;
  /** The partition key's values: one per PARTITION BY expression. */
  values: PartitionValue[];
  rows: number;
  bytes: number;
}

/** Decides from a partition's values whether all its rows are past keeping at `now` (ms since the epoch). */
export type ExpiryRule = (values: PartitionValue[], now: number) => boolean;

export class PartitionParseError extends Error {
  constructor(text: string, why: string) {
    super(`cannot read partition ${JSON.stringify(text)}: ${why}`);
    this.name = "PartitionParseError";
  }
}

/**
 * Reads system.parts' `partition` text into values: `(1000,20261120)` -> [1000, 20261120],
 * `202611` -> [202611], `('a\'b',3)` -> ["a'b", 3], `tuple()` -> [].
 */
export function parsePartition(text: string): PartitionValue[] {
  let i = 0;
  const s = text.trim();
  const fail = (why: string): never => {
    throw new PartitionParseError(text, why);
  };
  const skip = () => {
    while (s[i] === " ") i++;
  };
  const value = (): PartitionValue => {
    skip();
    const c = s[i];
    if (c === "(") {
      i++;
      return list(")");
    }
    if (c === "[") {
      i++;
      return list("]");
    }
    if (c === "'") {
      let out = "";
      i++;
      while (i < s.length && s[i] !== "'") {
        if (s[i] === "\\") {
          const e = s[i + 1];
          out += e === "n" ? "\n" : e === "t" ? "\t" : e === "r" ? "\r" : e === "0" ? "\0" : (e ?? "");
          i += 2;
        } else out += s[i++];
      }
      if (s[i] !== "'") fail("unterminated string");
      i++;
      return out;
    }
    if (s.startsWith("tuple()", i)) {
      i += 7;
      return [];
    }
    const m = /^-?\d+(\.\d+)?(e[+-]?\d+)?/i.exec(s.slice(i));
    if (!m) return fail(`unexpected ${JSON.stringify(s.slice(i, i + 10))} at ${i}`);
    i += m[0].length;
    return Number(m[0]);
  };
  const list = (close: string): PartitionValue[] => {
    const out: PartitionValue[] = [];
    skip();
    if (s[i] === close) {
      i++;
      return out;
    }
    for (;;) {
      out.push(value());
      skip();
      if (s[i] === ",") {
        i++;
        continue;
      }
      if (s[i] === close) {
        i++;
        return out;
      }
      return fail(`expected , or ${close} at ${i}`);
    }
  };
  const v = value();
  skip();
  if (i !== s.length) fail(`unexpected text after the value at ${i}`);
  // A tuple key is its list of values; a single expression's key is a list of one.
  return s.startsWith("(") || s === "tuple()" ? (v as PartitionValue[]) : [v];
}

const DAY = 86_400_000;

/** Start of a YYYYMMDD day (UTC), or NaN when the number is no date. */
export function dayStart(yyyymmdd: number): number {
  const y = Math.floor(yyyymmdd / 10000);
  const m = Math.floor(yyyymmdd / 100) % 100;
  const d = yyyymmdd % 100;
  const t = Date.UTC(y, m - 1, d);
  const back = new Date(t);
  return back.getUTCFullYear() === y && back.getUTCMonth() === m - 1 && back.getUTCDate() === d ? t : Number.NaN;
}

/** Start of a YYYYMM month (UTC), or NaN. */
export function monthStart(yyyymm: number): number {
  const y = Math.floor(yyyymm / 100);
  const m = yyyymm % 100;
  return m >= 1 && m <= 12 && y >= 1970 ? Date.UTC(y, m - 1, 1) : Number.NaN;
}

/**
 * Partitions `toYYYYMMDD(ts)` (at `index` of the key): expired when the whole day is older than `keep`,
 * i.e. the day's end + keep <= now. Days are UTC days: the server's timezone must be UTC (the local
 * stack's is), or days shift by its offset.
 */
export function dailyExpiry(keep: Duration, index = 0): ExpiryRule {
  const keepMs = ms(keep);
  return (values, now) => {
    const day = dayStart(Number(values[index]));
    return Number.isFinite(day) && day + DAY + keepMs <= now;
  };
}

/** Partitions `toYYYYMM(ts)`: expired when the month ended `months` calendar months ago or earlier. */
export function monthlyExpiry(months: number, index = 0): ExpiryRule {
  if (!Number.isInteger(months) || months < 0) throw new RangeError(`months must be a whole number >= 0: ${months}`);
  return (values, now) => {
    const start = monthStart(Number(values[index]));
    if (!Number.isFinite(start)) return false;
    const s = new Date(start);
    // The first instant past keeping: the month's end (next month's first day) plus `months` months.
    return Date.UTC(s.getUTCFullYear(), s.getUTCMonth() + 1 + months, 1) <= now;
  };
}

/**
 * Partitions `(resolution, toYYYYMMDD(ts))`: each resolution (e.g. window_ms) keeps its own number
 * of days. A resolution with no keep duration is never dropped.
 */
export function resolutionDailyExpiry(keepByResolution: Readonly<Record<number, Duration>>): ExpiryRule {
  const rules = new Map<number, ExpiryRule>();
  for (const [resolution, keep] of Object.entries(keepByResolution))
    rules.set(Number(resolution), dailyExpiry(keep, 1));
  return (values, now) => {
    const rule = rules.get(Number(values[0]));
    return rule ? rule(values, now) : false;
  };
}

export interface PartitionRetentionOptions {
  client: ClickHouseClient;
  database: string;
  table: string;
  isExpired: ExpiryRule;
  logger?: Logger;
  /** List what would be dropped, drop nothing. */
  dryRun?: boolean;
}

export interface RetentionRun {
  table: string;
  dropped: PartitionInfo[];
  kept: number;
  dryRun: boolean;
}

export class PartitionRetention {
  readonly database: string;
  readonly table: string;
  private readonly client: ClickHouseClient;
  private readonly isExpired: ExpiryRule;
  private readonly log: Logger;
  private readonly dryRun: boolean;

  constructor(options: PartitionRetentionOptions) {
    this.client = options.client;
    this.database = options.database;
    this.table = options.table;
    this.isExpired = options.isExpired;
    this.log = options.logger ?? pino({ name: "weir-retention" });
    this.dryRun = !!options.dryRun;
  }

  get qualifiedName(): string {
    return `${this.database}.${this.table}`;
  }

  /** The table's partitions that hold active parts. */
  async partitions(): Promise<PartitionInfo[]> {
    const rs = await this.client.query({
      query: sql`SELECT partition, partition_id, sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts WHERE database = ${this.database} AND table = ${this.table} AND active GROUP BY partition, partition_id ORDER BY partition_id`,
      format: "JSONEachRow",
    });
    const rows = await rs.json<{ partition: string; partition_id: string; rows: string; bytes: string }>();
    return rows.map((r) => ({
      partition: r.partition,
      partitionId: r.partition_id,
      values: parsePartition(r.partition),
      rows: Number(r.rows),
      bytes: Number(r.bytes),
    }));
  }

  async expired(now = Date.now()): Promise<PartitionInfo[]> {
    return (await this.partitions()).filter((p) => this.isExpired(p.values, now));
  }

  /** Drops the expired partitions (one ALTER each, so one failure leaves the others dropped). */
  async run(now = Date.now()): Promise<RetentionRun> {
    const all = await this.partitions();
    const expired = all.filter((p) => this.isExpired(p.values, now));
    for (const p of expired) {
      if (!this.dryRun) {
        await this.client.command({
          query: sql`ALTER TABLE ${ident(this.database, this.table)} DROP PARTITION ID ${p.partitionId}`,
        });
      }
      this.log.info(
        { table: this.qualifiedName, partition: p.partition, rows: p.rows, bytes: p.bytes, dryRun: this.dryRun },
        this.dryRun ? "partition expired (dry run: kept)" : "expired partition dropped",
      );
    }
    return { table: this.qualifiedName, dropped: expired, kept: all.length - expired.length, dryRun: this.dryRun };
  }
}

export type RetentionSchedulerOptions = CronRunsOptions;

/** Runs partition retentions on a schedule (sinks/cron-runs.ts). */
export class RetentionScheduler extends CronRuns<PartitionRetention, RetentionRun> {
  constructor(retentions: PartitionRetention[], options: RetentionSchedulerOptions) {
    super(retentions, options, {
      name: "weir-retention",
      jobs: (js) => ({ tables: js.map((r) => r.qualifiedName) }),
      job: (r) => ({ table: r.qualifiedName }),
      summary: (runs) => ({ dropped: runs.reduce((n, r) => n + r.dropped.length, 0), tables: runs.length }),
      scheduled: "retention scheduled",
      failed: "retention failed; the next run tries again",
      done: "retention run done",
    });
  }

  get retentions(): PartitionRetention[] {
    return this.jobs;
  }
}
