// Service level objectives, read from a YAML file (pipelines/health/slo.yaml is the simulated
// platform's): per node of the hierarchy, a target availability and a latency objective, the runbook
// on-call opens, and the alert rules that watch them. Objectives resolve from the most specific
// entry: endpoint, then service, then system, then the defaults.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ConfigError, parseYamlConfig, validateConfig } from "../../schemas/config/yaml-config.ts";
import { ms } from "../../stream/types.ts";

export const DEFAULT_SLO_FILE = fileURLToPath(new URL("slo.yaml", import.meta.url));

export type Level = "APP" | "SYSTEM" | "SERVICE" | "ENDPOINT";
export const LEVELS: readonly Level[] = ["APP", "SYSTEM", "SERVICE", "ENDPOINT"];

/** A node of the availability hierarchy; the names below its level are empty strings. */
export interface HealthNode {
  level: Level;
  app: string;
  system: string;
  service: string;
  endpoint: string;
}

/** The platform's availability levels, from the Inke talk: 90% weak ... 99.9999% strong. */
export const AVAILABILITY_LEVELS = [
  { name: "weak", target: 0.9 },
  { name: "basic", target: 0.99 },
  { name: "higher", target: 0.999 },
  { name: "high", target: 0.9999 },
  { name: "very high", target: 0.99999 },
  { name: "strong", target: 0.999999 },
].map((l) => ({
  ...l,
  /** Downtime the level allows, in seconds. */
  downtimePerYearS: (1 - l.target) * 365 * 86_400,
  downtimePerDayS: (1 - l.target) * 86_400,
}));

export type AvailabilityLevel = (typeof AVAILABILITY_LEVELS)[number];

/** The highest level an availability reaches; null below 90%. Compared with a little slack for float rounding. */
export function classifyAvailability(availability: number): AvailabilityLevel | null {
  let reached: AvailabilityLevel | null = null;
  for (const level of AVAILABILITY_LEVELS) if (availability >= level.target - 1e-12) reached = level;
  return reached;
}

// --- the file's schema ------------------------------------------------------------------------------

const Share = z
  .union([z.number(), z.string().regex(/^\d+(\.\d+)?%$/, 'a share such as "99.9%" or 0.999')])
  .transform((v) => (typeof v === "number" ? v : Number(v.slice(0, -1)) / 100))
  .pipe(z.number().gt(0).lt(1, "must be below 100%: an objective of 100% leaves no error budget"));

const DurationText = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  try {
    return ms(v);
  } catch {
    ctx.addIssue({ code: "custom", message: "a duration such as 500ms, 10s, 5m, 1h, 3d" });
    return z.NEVER;
  }
});

const Latency = z.strictObject({
  /** A request slower than this is slow. */
  threshold: DurationText,
  /** The share of requests that must be faster than the threshold. */
  target: Share,
});

const Objectives = z.strictObject({
  availability: Share.optional(),
  latency: Latency.partial().optional(),
  runbook: z.string().optional(),
});

const Endpoint = Objectives;
const Service = Objectives.extend({ endpoints: z.record(z.string(), Endpoint).default({}) });

const Severity = z.enum(["page", "ticket"]);

const BurnRule = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "lower-case letters, digits, '.', '_' and '-'"),
  /** Which objective's budget the rule watches. */
  slo: z.enum(["availability", "latency"]),
  long: DurationText,
  short: DurationText,
  /** How many times faster than sustainable the budget burns (1 = exactly at the objective). */
  burn: z.number().positive(),
  severity: Severity,
});

const Spike = z.strictObject({
  /** Fires when one second's requests exceed this multiple of the baseline's mean per second. */
  factor: z.number().gt(1).default(3),
  /** The window the baseline is the mean of. */
  baseline: DurationText.default(300_000),
  /** A node needs this much history before a spike can be judged. */
  minHistory: DurationText.default(60_000),
  /** ... and at least this many requests in the second: low-traffic noise is not a spike. */
  minRequests: z.number().int().min(1).default(50),
  severity: Severity.default("page"),
});

const LevelName = z.enum(["app", "system", "service", "endpoint"]).transform((l) => l.toUpperCase() as Level);

const StreamSettings = z.strictObject({
  /** How far behind the newest event of its partition an event may arrive and still count on time. */
  outOfOrderness: DurationText.default(1000),
  /** How long after that a second's window still takes late events; its row is then corrected. */
  grace: z.union([z.literal(0), DurationText]).default(4000),
  /** Write each second's row as soon as it ends (final = false), then again when it closes. */
  earlyResults: z.boolean().default(true),
  /** A partition, or a source in it (a host's log file), silent this long no longer holds the watermark back. */
  idleTimeout: DurationText.default(10_000),
  /** A source (weir ship's weir-source header) holds its partition's watermark at most this far behind the others. */
  maxSourceLag: DurationText.default(30_000),
  /**
   * How long after a window closed an event may still arrive: its rows (1 s, 1 min, 1 h, every level)
   * are written again, corrected. Later events go to the DLQ. 0: none, late events go to the DLQ.
   */
  allowedLateness: z.union([z.literal(0), DurationText]).default(3_600_000),
  /** Closed windows kept for corrections per worker task and window step; the oldest go first past it. */
  maxClosedWindows: z.number().int().min(1).default(20_000),
});

export const SloFileSchema = z
  .strictObject({
    /** How the pipeline treats event time. */
    stream: StreamSettings.prefault({}),
    defaults: z.strictObject({
      availability: Share,
      latency: Latency,
      /** {app} {system} {service} {endpoint} are replaced by the node's names. */
      runbook: z.string(),
    }),
    /** Requests with one of these error codes count as errors even when their status is below 500. */
    errorCodes: z.array(z.string()).default([]),
    systems: z.record(z.string(), Objectives).default({}),
    services: z.record(z.string(), Service).default({}),
    alerts: z
      .strictObject({
        /** Levels of the hierarchy alerts are evaluated at. */
        levels: z.array(LevelName).min(1).default(["SERVICE", "ENDPOINT"]),
        rules: z.array(BurnRule).default([]),
        /** A burn-rate rule needs this many requests in its short window: three requests are no evidence. */
        minRequests: z.number().int().min(1).default(20),
        /** ... and this many bad ones in its long window. */
        minBad: z.number().int().min(1).default(3),
        /** A firing alert resolves once its condition has been false this long. */
        resolveAfter: DurationText.default(30_000),
        spike: Spike.nullable().default(null),
      })
      .prefault({}),
  })
  .superRefine((f, ctx) => {
    const names = new Set<string>();
    f.alerts.rules.forEach((r, i) => {
      if (names.has(r.name))
        ctx.addIssue({ code: "custom", path: ["alerts", "rules", i, "name"], message: `duplicate rule ${r.name}` });
      names.add(r.name);
      if (r.short >= r.long)
        ctx.addIssue({
          code: "custom",
          path: ["alerts", "rules", i, "short"],
          message: "the short window must be shorter than the long one",
        });
      if (r.short < 1000 || r.short % 1000 !== 0 || r.long % 1000 !== 0)
        ctx.addIssue({
          code: "custom",
          path: ["alerts", "rules", i],
          message: "windows are whole seconds, at least 1s (the pipeline's resolution)",
        });
    });
  });

export type SloFile = z.output<typeof SloFileSchema>;
export type BurnRateRule = z.output<typeof BurnRule>;
export type SpikeRule = NonNullable<SloFile["alerts"]["spike"]>;

/** The objectives that apply to one node. */
export interface NodeObjectives {
  availability: number;
  latencyThresholdUs: number;
  latencyTarget: number;
  runbook: string;
}

export class SloConfig {
  private readonly cache = new Map<string, NodeObjectives>();
  private readonly errorCodes: Set<string>;

  constructor(
    readonly file: SloFile,
    readonly source = "slo",
  ) {
    this.errorCodes = new Set(file.errorCodes);
  }

  static load(path = DEFAULT_SLO_FILE): SloConfig {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      throw new ConfigError(path, [{ line: 0, column: 0, field: "", message: `cannot read: ${(e as Error).message}` }]);
    }
    const { value, locate } = parseYamlConfig(path, text);
    return new SloConfig(validateConfig(path, SloFileSchema, value, locate), path);
  }

  static parse(text: string, name = "slo.yaml"): SloConfig {
    const { value, locate } = parseYamlConfig(name, text);
    return new SloConfig(validateConfig(name, SloFileSchema, value, locate), name);
  }

  get rules(): BurnRateRule[] {
    return this.file.alerts.rules;
  }

  /** Whether a request with this status and error code is an error (a server's failure). */
  isError(status: number, errorCode: string | null): boolean {
    return status >= 500 || (errorCode !== null && this.errorCodes.has(errorCode));
  }

  objectives(node: HealthNode): NodeObjectives {
    const id = nodeId(node);
    let o = this.cache.get(id);
    if (o === undefined) {
      o = this.resolve(node);
      this.cache.set(id, o);
    }
    return o;
  }

  /** The latency threshold of an endpoint in microseconds: a request slower than it is slow. */
  slowThresholdUs(app: string, system: string, service: string, endpoint: string): number {
    return this.objectives({ level: "ENDPOINT", app, system, service, endpoint }).latencyThresholdUs;
  }

  private resolve(node: HealthNode): NodeObjectives {
    const f = this.file;
    const chain: Array<z.output<typeof Objectives> | undefined> = [f.defaults];
    if (node.level !== "APP") chain.push(f.systems[node.system]);
    const svc = node.level === "SERVICE" || node.level === "ENDPOINT" ? f.services[node.service] : undefined;
    chain.push(svc);
    if (node.level === "ENDPOINT") chain.push(svc?.endpoints[node.endpoint]);
    let availability = f.defaults.availability;
    let threshold = f.defaults.latency.threshold;
    let target = f.defaults.latency.target;
    let runbook = f.defaults.runbook;
    for (const o of chain) {
      if (!o) continue;
      if (o.availability !== undefined) availability = o.availability;
      if (o.latency?.threshold !== undefined) threshold = o.latency.threshold;
      if (o.latency?.target !== undefined) target = o.latency.target;
      if (o.runbook !== undefined) runbook = o.runbook;
    }
    return {
      availability,
      latencyThresholdUs: threshold * 1000,
      latencyTarget: target,
      runbook: runbook
        .replaceAll("{app}", node.app)
        .replaceAll("{system}", node.system)
        .replaceAll("{service}", node.service)
        .replaceAll("{endpoint}", encodeURIComponent(node.endpoint)),
    };
  }
}

/** A node's identity as one string: level and names, separated by a character no name contains. */
export function nodeId(n: HealthNode): string {
  return `${n.level}\u0001${n.app}\u0001${n.system}\u0001${n.service}\u0001${n.endpoint}`;
}

export function nodeName(n: HealthNode): string {
  switch (n.level) {
    case "APP":
      return n.app;
    case "SYSTEM":
      return `${n.app}/${n.system}`;
    case "SERVICE":
      return n.service;
    case "ENDPOINT":
      return `${n.service} ${n.endpoint}`;
  }
}

/** Errors a target allows among `requests` (the error budget, in requests). */
export function errorBudget(target: number, requests: number): number {
  return (1 - target) * requests;
}
