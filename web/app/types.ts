// The shapes the API answers with, as the page reads them (the server's types are the source: LogHit in
// pipelines/logs/search/hit.ts, TreeNode in pipelines/health/tree.ts, BoardAlert in
// pipelines/alerts/board.ts). Written out here because the browser bundle imports nothing outside web/app.

export interface LogHit {
  id: string;
  index: string;
  ts: number;
  time: string;
  service: string;
  host: string;
  level: string;
  dataset: string;
  message: string;
  logger?: string;
  traceId?: string;
  spanId?: string;
  method?: string;
  endpoint?: string;
  status?: number;
  latencyMs?: number;
  caller?: string;
  uid?: string;
  clientIp?: string;
  error?: { type?: string; code?: string; message?: string; stack?: string };
  attributes?: Record<string, string>;
  source?: { fileId: string; seq: number; path?: string; offset?: number };
  [more: string]: unknown;
}

export interface SearchResult {
  hits: LogHit[];
  total: { value: number; relation: "eq" | "gte" };
  next?: string;
}

export interface HistogramResult {
  store: string;
  intervalMs: number;
  total: number;
  buckets: Array<{ start: number; count: number }>;
}

export interface ContextResult {
  hit: LogHit;
  lines: LogHit[];
}

export interface TraceResult {
  traceId: string;
  lines: LogHit[];
  services: string[];
  truncated: boolean;
}

export interface TreeNode {
  level: "APP" | "SYSTEM" | "SERVICE" | "ENDPOINT";
  app: string;
  system: string;
  service: string;
  endpoint: string;
  name: string;
  requests: number;
  errors: number;
  qps: number;
  availability: number | null;
  levelReached: string | null;
  target: number;
  targetLevel: string | null;
  budgetLeft: number | null;
  burnRate: number | null;
  alertsFiring: number;
  runbook: string;
  children: TreeNode[];
}

export interface HealthTree {
  from: string;
  to: string;
  periodMs: number;
  resolutionMs: number;
  roots: TreeNode[];
}

export interface AlertEpisode {
  id: string;
  rule: string;
  kind: string;
  severity: "PAGE" | "TICKET";
  level: string;
  app: string;
  system: string;
  service: string;
  endpoint: string;
  target: string;
  start: string;
  end: string | null;
  durationS: number | null;
  observed: number;
  threshold: number;
  message: string;
  runbook: string;
}

export interface SeriesPoint {
  startMs: number;
  seconds: number;
  windows: number;
  requests: number;
  errors: number;
  qps: number | null;
  errorRate: number | null;
  p99Us: number | null;
}

export interface SeriesResult {
  name: string;
  from: string;
  to: string;
  bucketMs: number;
  resolutionMs: number;
  hasData: boolean;
  series: SeriesPoint[];
  totals: { requests: number; errors: number; qps: number; availability: number | null; p99Us: number | null };
  alerts: AlertEpisode[];
}

export interface TimelineEntry {
  at: string;
  what: string;
  by?: string;
  note?: string;
}

export interface BoardAlert extends AlertEpisode {
  scene: string;
  status: "firing" | "acknowledged" | "resolved";
  acknowledged: { by: string; at: string; note: string } | null;
  resolvedBy: { by: string; at: string; note: string } | null;
  timeline: TimelineEntry[];
}

export interface SceneView {
  id: string;
  name: string;
  services: string[];
  runbook: string | null;
  onDuty: Array<{ id: string; name: string; role?: string; contact?: string }>;
}

export interface AlertFigures {
  alerts: number;
  acknowledged: number;
  resolved: number;
  medianTimeToAcknowledgeS: number | null;
  maxTimeToAcknowledgeS: number | null;
  medianTimeToResolveS: number | null;
  maxTimeToResolveS: number | null;
}

export interface AlertReport {
  from: string;
  to: string;
  totals: AlertFigures;
  byScene: Array<{ scene: string } & AlertFigures>;
  bySeverity: Array<{ severity: string } & AlertFigures>;
  alerts: Array<{
    id: string;
    scene: string;
    severity: string;
    rule: string;
    target: string;
    start: string;
    timeToAcknowledgeS: number | null;
    acknowledgedBy: string | null;
    timeToResolveS: number | null;
    resolvedBy: string | null;
    message: string;
  }>;
}

export interface NodeReport {
  name: string;
  service: string;
  requests: number;
  errors: number;
  availability: number | null;
  levelReached: string | null;
  target: number;
  targetMet: boolean | null;
  downtime: { equivalentS: number | null; badMinutes: number };
  errorBudget: { left: number | null };
  latency: { p99Us: number | null };
}

export interface DailyReport {
  day: string;
  hasData: boolean;
  app: NodeReport[];
  systems: NodeReport[];
  services: NodeReport[];
  endpoints: NodeReport[];
  worstEndpoints: Array<{ name: string; availability: number | null; budgetLeft: number | null; badMinutes: number }>;
  alerts: { episodes: number; list: AlertEpisode[] };
}

/** A risk signal (RiskSignal in schemas/avro, with its rule's category). */
export interface RiskSignal {
  id: string;
  ts: number;
  ruleId: string;
  ruleVersion: number;
  severity: string;
  score: number;
  action: string;
  shadow: boolean;
  entity: { type: string; id: string };
  evidence: {
    matched: Record<string, string>;
    counts: Record<string, number>;
    windowStart: number | null;
    windowEnd: number | null;
    sourceEventIds: string[];
    explanation: string;
  };
  category: string;
}

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

/** GET /v1/risk/signals/{id} (web/server/risk.ts). */
export interface SignalExplained {
  signal: RiskSignal;
  category: string;
  rule: RuleView | null;
  explain: string[];
}

export interface RuleHits {
  rule: string;
  category: string;
  live: number;
  shadow: number;
  liveEntities: number;
  shadowEntities: number;
  counts: number[];
}

/** GET /v1/risk/rules. */
export interface RiskRules {
  from: number;
  to: number;
  stepMs: number;
  buckets: number[];
  rules: RuleHits[];
  catalog: RuleView[];
  rulesProblems: number;
  shadows: Array<{ rule: string; replaces: string; both: number; onlyNew: number; onlyOld: number }>;
  shadowsTruncated: boolean;
  backtest: { stored: boolean; note: string };
}

/** A published top-K list (HotKeys in schemas/avro). */
export interface HotKeysList {
  windowStart: number;
  windowMs: number;
  dimension: string;
  k: number;
  total: number;
  keys: Array<{ key: string; count: number; share: number }>;
  emittedAt: number;
}

export interface HotKeyMark {
  id: string;
  dimension: string;
  key: string;
  until: number;
  reason: string;
  markedBy: string;
  markedAt: number;
}

/** GET /v1/hotkeys: each dimension's latest lists and marks in force. */
export interface HotKeysDimension {
  dimension: string;
  lists: HotKeysList[];
  marks: HotKeyMark[];
}
