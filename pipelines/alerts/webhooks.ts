// Alerts leaving weir: each FIRING and RESOLVED record of alerts.health, posted as JSON to the webhook
// receivers of its scene (scenes.yaml), so that a phone can ring. Two bodies:
//   - generic: one alert, its scene with the people on duty and the runbook, and a dedupKey;
//   - alertmanager: Prometheus Alertmanager's webhook body (version 4), which on-call tools that take
//     Alertmanager's notifications read as they are.
// Each send is retried with exponential backoff and jitter (the sinks' backoff, lengthened to a
// Retry-After), and deduplicated: a (receiver, alert, state) already delivered is not sent again, in
// this process (a bounded memory of recent keys) or after a restart (the NOTIFIED actions in
// ClickHouse, which `remember` is given at start). Delivery is at least once: a crash between the
// receiver's answer and the record of it sends once more, with the same dedupKey for the receiver
// to drop.
import { retryDelay } from "../../sinks/batching/backoff.ts";
import type { HealthAlert } from "../health/alerts.ts";
import { nodeName } from "../health/slo.ts";
import type { ReceiverConfig, Scenes, SceneView } from "./scenes.ts";

export interface Receiver extends ReceiverConfig {
  /** The URL, from `url` or the variable `urlEnv` names. */
  target: string;
}

/** Receivers whose URL is known; the others, with why, to log. */
export function resolveReceivers(
  scenes: Scenes,
  env: NodeJS.ProcessEnv,
): { receivers: Receiver[]; skipped: Array<{ name: string; reason: string }> } {
  const receivers: Receiver[] = [];
  const skipped: Array<{ name: string; reason: string }> = [];
  for (const r of scenes.file.receivers) {
    const target = r.url ?? (r.urlEnv !== undefined ? env[r.urlEnv] : undefined);
    if (!target) {
      skipped.push({ name: r.name, reason: `${r.urlEnv} is not set` });
      continue;
    }
    if (!/^https?:\/\/\S+$/.test(target)) {
      skipped.push({ name: r.name, reason: `${r.urlEnv} is not an http(s) URL` });
      continue;
    }
    receivers.push({ ...r, target });
  }
  return { receivers, skipped };
}

export function dedupKey(receiver: string, a: Pick<HealthAlert, "id" | "state">): string {
  return `${receiver}/${a.id}/${a.state}`;
}

/** The generic JSON body: one alert, its scene and who is on duty. */
export function genericBody(a: HealthAlert, scene: SceneView, consoleUrl?: string): object {
  return {
    version: 1,
    dedupKey: `${a.id}/${a.state}`,
    status: a.state === "FIRING" ? "firing" : "resolved",
    alert: {
      id: a.id,
      rule: a.rule,
      kind: a.kind,
      severity: a.severity,
      level: a.level,
      app: a.app,
      system: a.system,
      service: a.service,
      endpoint: a.endpoint,
      target: nodeName(a),
      observed: a.observed,
      threshold: a.threshold,
      objective: a.objective,
      message: a.message,
      runbook: a.runbook,
      startedAt: new Date(a.startedAt).toISOString(),
      resolvedAt: a.resolvedAt === null ? null : new Date(a.resolvedAt).toISOString(),
    },
    scene: { id: scene.id, name: scene.name, runbook: scene.runbook, onDuty: scene.onDuty },
    ...(consoleUrl ? { url: `${consoleUrl}/alerts?id=${encodeURIComponent(a.id)}` } : {}),
  };
}

/** Alertmanager's webhook body (version 4) for one alert: the group is the alert itself. */
export function alertmanagerBody(a: HealthAlert, scene: SceneView, receiver: string, consoleUrl?: string): object {
  const labels: Record<string, string> = {
    alertname: a.rule,
    severity: a.severity.toLowerCase(),
    scene: scene.id,
    level: a.level.toLowerCase(),
    app: a.app,
  };
  if (a.system) labels.system = a.system;
  if (a.service) labels.service = a.service;
  if (a.endpoint) labels.endpoint = a.endpoint;
  const status = a.state === "FIRING" ? "firing" : "resolved";
  const annotations: Record<string, string> = {
    summary: a.message,
    runbook_url: a.runbook,
    on_duty: scene.onDuty.map((p) => p.name).join(", "),
  };
  if (scene.runbook) annotations.scene_runbook_url = scene.runbook;
  const groupKey = `{}:{alertname="${a.rule}", scene="${scene.id}", id="${a.id}"}`;
  return {
    version: "4",
    groupKey,
    truncatedAlerts: 0,
    status,
    receiver,
    groupLabels: { alertname: a.rule, scene: scene.id },
    commonLabels: labels,
    commonAnnotations: annotations,
    externalURL: consoleUrl ?? "",
    alerts: [
      {
        status,
        labels,
        annotations,
        startsAt: new Date(a.startedAt).toISOString(),
        // Alertmanager's "zero" time for an alert still firing.
        endsAt: a.resolvedAt === null ? "0001-01-01T00:00:00Z" : new Date(a.resolvedAt).toISOString(),
        generatorURL: consoleUrl ? `${consoleUrl}/alerts?id=${encodeURIComponent(a.id)}` : "",
        fingerprint: a.id,
      },
    ],
  };
}

export interface DeliveryOutcome {
  receiver: string;
  key: string;
  /** sent, duplicate (delivered before), failed (retries ran out or the receiver refused it). */
  result: "sent" | "duplicate" | "failed";
  attempts: number;
  detail: string;
}

export interface WebhookNotifierOptions {
  scenes: Scenes;
  receivers: readonly Receiver[];
  /** The console's URL, for links in the bodies. */
  consoleUrl?: string;
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Backoff: first pause and longest pause, ms. */
  backoff?: { initialMs: number; maxMs: number };
  sleep?: (ms: number) => Promise<void>;
  /** Keys remembered in memory (the oldest forgotten first). */
  rememberKeys?: number;
}

export class WebhookNotifier {
  private readonly delivered = new Set<string>();
  private readonly fetch: typeof fetch;
  private readonly backoffMs: { initialMs: number; maxMs: number };
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly rememberKeys: number;

  constructor(private readonly options: WebhookNotifierOptions) {
    this.fetch = options.fetch ?? globalThis.fetch;
    this.backoffMs = options.backoff ?? { initialMs: 500, maxMs: 30_000 };
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.rememberKeys = options.rememberKeys ?? 100_000;
  }

  /** Keys delivered before (read back from the NOTIFIED actions at start). */
  remember(key: string): void {
    this.delivered.add(key);
    if (this.delivered.size > this.rememberKeys) {
      const oldest = this.delivered.values().next().value;
      if (oldest !== undefined) this.delivered.delete(oldest);
    }
  }

  /** The receivers of an alert's scene and severity. */
  receiversFor(a: HealthAlert): Receiver[] {
    const scene = this.options.scenes.sceneOf(a.service);
    return this.options.receivers.filter(
      (r) => (r.scenes === undefined || r.scenes.includes(scene)) && (r.severities?.includes(a.severity) ?? true),
    );
  }

  /** Sends one alert record to each of its receivers (at most once each, retried). */
  async notify(a: HealthAlert, signal?: AbortSignal): Promise<DeliveryOutcome[]> {
    const scene = this.options.scenes.view(this.options.scenes.sceneOf(a.service));
    const out: DeliveryOutcome[] = [];
    for (const r of this.receiversFor(a)) {
      const key = dedupKey(r.name, a);
      if (this.delivered.has(key)) {
        out.push({ receiver: r.name, key, result: "duplicate", attempts: 0, detail: "delivered before" });
        continue;
      }
      const body =
        r.format === "alertmanager"
          ? alertmanagerBody(a, scene, r.name, this.options.consoleUrl)
          : genericBody(a, scene, this.options.consoleUrl);
      const outcome = await this.post(r, key, JSON.stringify(body), signal);
      if (outcome.result === "sent") this.remember(key);
      out.push(outcome);
    }
    return out;
  }

  private async post(r: Receiver, key: string, body: string, signal?: AbortSignal): Promise<DeliveryOutcome> {
    let detail = "";
    const tries = r.retries + 1;
    for (let attempt = 1; attempt <= tries; attempt++) {
      if (signal?.aborted) return { receiver: r.name, key, result: "failed", attempts: attempt - 1, detail: "stopped" };
      let retryAfterMs: number | null = null;
      let retry = true;
      try {
        const res = await this.fetch(r.target, {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": key },
          body,
          signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(r.timeout)]) : AbortSignal.timeout(r.timeout),
          redirect: "error",
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return { receiver: r.name, key, result: "sent", attempts: attempt, detail: `${res.status}` };
        detail = `answered ${res.status}`;
        // A 4xx other than 408 and 429 will be refused again: no retry.
        retry = res.status >= 500 || res.status === 408 || res.status === 429;
        const after = Number(res.headers.get("retry-after"));
        if (Number.isFinite(after) && after > 0) retryAfterMs = after * 1000;
      } catch (e) {
        detail = (e as Error).name === "TimeoutError" ? `no answer in ${r.timeout} ms` : (e as Error).message;
      }
      if (!retry || attempt === tries) return { receiver: r.name, key, result: "failed", attempts: attempt, detail };
      await this.sleep(retryDelay(attempt, this.backoffMs.initialMs, this.backoffMs.maxMs, retryAfterMs));
    }
    return { receiver: r.name, key, result: "failed", attempts: tries, detail };
  }
}
