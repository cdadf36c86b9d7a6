// The alert board: the health alerts of the last day (or `horizonMs`) as episodes, each with its scene,
// what people did about it (acknowledged, resolved by hand, notes) and what the notifier sent, as a
// timeline. Loaded from ClickHouse (weir.health_alerts, weir.alert_actions), kept current by the live
// alert records (alerts.health, through `applyAlert`) and by polling the actions other console
// processes write (`refreshActions`). Subscribers hear of every change: the console pushes them to
// browsers as Server-Sent Events.
import { randomUUID } from "node:crypto";
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { ident, sql } from "../../sinks/clickhouse/sql.ts";
import { type ClickHouseAuth, clickhouseCredentials } from "../../sinks/credentials.ts";
import type { HealthAlert } from "../health/alerts.ts";
import { type AlertEpisode, HealthReader, isoSeconds, nodeOf, readAlertEpisodes } from "../health/health-reader.ts";
import { nodeName } from "../health/slo.ts";
import type { Scenes } from "./scenes.ts";

export type ActionKind = "ACK" | "RESOLVE" | "NOTE" | "NOTIFIED" | "NOTIFY_FAILED";

export interface AlertAction {
  alertId: string;
  /** ms since the epoch. */
  at: number;
  action: ActionKind;
  /** The token's name, or the receiver's. */
  actor: string;
  note: string;
  service: string;
  id: string;
}

export interface TimelineEntry {
  /** ISO 8601 with milliseconds. */
  at: string;
  what: "fired" | "acknowledged" | "resolved" | "cleared" | "note" | "notified" | "notify-failed";
  by?: string;
  note?: string;
}

export interface BoardAlert extends AlertEpisode {
  scene: string;
  /** firing: nobody has acknowledged it; acknowledged: someone has, it still fires; resolved: cleared, or resolved by hand. */
  status: "firing" | "acknowledged" | "resolved";
  acknowledged: { by: string; at: string; note: string } | null;
  /** Resolved by a person (the pipeline's own resolution is `end`). */
  resolvedBy: { by: string; at: string; note: string } | null;
  timeline: TimelineEntry[];
}

export interface AlertBoardOptions {
  clickhouseUrl: string;
  /** The writer's user and password (sinks/credentials.ts); ClickHouse's default user when absent. */
  clickhouseAuth?: ClickHouseAuth | undefined;
  database?: string;
  scenes: Scenes;
  /** How far back the board reaches (default 24 h). */
  horizonMs?: number;
  now?: () => number;
}

/** A note or acknowledgement longer than this is refused. */
export const MAX_NOTE_CHARS = 1000;

interface ActionRow {
  alert_id: string;
  ts_ms: string;
  action: ActionKind;
  actor: string;
  note: string;
  service: string;
  id: string;
}

export class AlertBoard {
  readonly database: string;
  private readonly episodes = new Map<string, AlertEpisode>();
  private readonly actions = new Map<string, AlertAction[]>();
  private readonly seenActions = new Set<string>();
  private readonly listeners = new Set<(a: BoardAlert) => void>();
  private readonly client: ClickHouseClient;
  private readonly reader: HealthReader;
  private readonly horizonMs: number;
  private readonly now: () => number;
  private actionsReadTo = 0;

  constructor(private readonly options: AlertBoardOptions) {
    this.database = options.database ?? "weir";
    this.horizonMs = options.horizonMs ?? 86_400_000;
    this.now = options.now ?? Date.now;
    this.reader = new HealthReader({
      clickhouseUrl: options.clickhouseUrl,
      ...(options.clickhouseAuth ? { clickhouseAuth: options.clickhouseAuth } : {}),
      database: this.database,
    });
    this.client = createClient({
      url: options.clickhouseUrl,
      ...clickhouseCredentials(options.clickhouseAuth),
      log: { level: ClickHouseLogLevel.OFF },
    });
  }

  get scenes(): Scenes {
    return this.options.scenes;
  }

  /** Reads the episodes of the horizon and their actions. */
  async load(): Promise<void> {
    const now = this.now();
    for (const e of await readAlertEpisodes(this.reader, now - this.horizonMs, now + 60_000)) {
      if (!this.episodes.has(e.id)) this.episodes.set(e.id, e);
    }
    await this.refreshActions(now - this.horizonMs - 7 * 86_400_000);
  }

  /** Actions written since the last read (by this process or another); returns the alerts they changed. */
  async refreshActions(since = this.actionsReadTo): Promise<BoardAlert[]> {
    const rows = await this.reader.select<ActionRow>(
      sql`SELECT alert_id, ts_ms, action, actor, note, service, id FROM ${ident(this.database, "alert_actions")}
          WHERE ts_ms >= ${Math.max(0, since - 5000)} ORDER BY ts_ms`,
    );
    const changed = new Set<string>();
    for (const r of rows) {
      const a: AlertAction = {
        alertId: r.alert_id,
        at: Number(r.ts_ms),
        action: r.action,
        actor: r.actor,
        note: r.note,
        service: r.service,
        id: r.id,
      };
      if (a.at > this.actionsReadTo) this.actionsReadTo = a.at;
      if (this.addAction(a)) changed.add(a.alertId);
    }
    const out: BoardAlert[] = [];
    for (const id of changed) {
      const b = this.get(id);
      if (b) {
        out.push(b);
        this.emit(b);
      }
    }
    return out;
  }

  /** A FIRING or RESOLVED record of alerts.health. */
  applyAlert(a: HealthAlert): BoardAlert {
    const old = this.episodes.get(a.id);
    const node = nodeOf(a);
    const start = Math.min(a.startedAt, old ? Date.parse(old.start) : a.startedAt);
    const resolvedAt = a.state === "RESOLVED" ? (a.resolvedAt ?? a.ts) : null;
    const e: AlertEpisode = {
      id: a.id,
      rule: a.rule,
      kind: a.kind,
      severity: a.severity,
      level: a.level,
      app: a.app,
      system: a.system,
      service: a.service,
      endpoint: a.endpoint,
      target: nodeName(node),
      start: isoSeconds(start),
      end: resolvedAt !== null ? isoSeconds(resolvedAt) : (old?.end ?? null),
      durationS: resolvedAt !== null ? Math.max(0, Math.round((resolvedAt - start) / 1000)) : (old?.durationS ?? null),
      // The figures that fired stay; a RESOLVED record carries the worst value seen.
      observed: Math.max(a.observed, old?.observed ?? 0),
      threshold: a.threshold,
      objective: a.objective ?? 0,
      message: a.state === "FIRING" || !old ? a.message : old.message,
      runbook: a.runbook,
    };
    this.episodes.set(a.id, e);
    const b = this.view(e);
    this.emit(b);
    return b;
  }

  /** Records what a person did; returns the alert as it is now. */
  async act(alertId: string, action: "ACK" | "RESOLVE" | "NOTE", actor: string, note: string): Promise<BoardAlert> {
    const e = this.episodes.get(alertId);
    if (!e) throw new Error(`no alert ${alertId}`);
    return this.record({ alertId, at: this.now(), action, actor, note, service: e.service, id: randomUUID() });
  }

  /** Writes an action (a person's, or the notifier's) and applies it. */
  async record(a: AlertAction): Promise<BoardAlert> {
    await this.client.insert({
      table: `${this.database}.alert_actions`,
      format: "JSONEachRow",
      values: [
        {
          alert_id: a.alertId,
          ts: Math.floor(a.at / 1000),
          ts_ms: a.at,
          action: a.action,
          actor: a.actor,
          note: a.note,
          service: a.service,
          id: a.id,
        },
      ],
    });
    this.addAction(a);
    const b = this.get(a.alertId);
    if (!b) throw new Error(`no alert ${a.alertId}`);
    this.emit(b);
    return b;
  }

  /** The alerts of the horizon, newest first. */
  list(visible: (service: string) => boolean = () => true): BoardAlert[] {
    const cutoff = this.now() - this.horizonMs;
    const out: BoardAlert[] = [];
    for (const e of this.episodes.values()) {
      if (!visible(e.service)) continue;
      if (e.end !== null && Date.parse(e.end) < cutoff) continue;
      out.push(this.view(e));
    }
    return out.sort((a, b) => (a.start < b.start ? 1 : a.start > b.start ? -1 : a.id < b.id ? -1 : 1));
  }

  /** The dedup keys of the notifications sent (NOTIFIED actions note their key). */
  notifiedKeys(): string[] {
    const keys: string[] = [];
    for (const list of this.actions.values()) for (const a of list) if (a.action === "NOTIFIED") keys.push(a.note);
    return keys;
  }

  get(id: string): BoardAlert | undefined {
    const e = this.episodes.get(id);
    return e ? this.view(e) : undefined;
  }

  subscribe(listener: (a: BoardAlert) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Drops episodes past the horizon (called now and then). */
  prune(): void {
    const cutoff = this.now() - this.horizonMs;
    for (const [id, e] of this.episodes) {
      if (e.end !== null && Date.parse(e.end) < cutoff) {
        this.episodes.delete(id);
        for (const a of this.actions.get(id) ?? []) this.seenActions.delete(a.id);
        this.actions.delete(id);
      }
    }
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await Promise.all([this.client.close(), this.reader.close()]);
  }

  private addAction(a: AlertAction): boolean {
    if (this.seenActions.has(a.id)) return false;
    this.seenActions.add(a.id);
    const list = this.actions.get(a.alertId) ?? [];
    list.push(a);
    list.sort((x, y) => x.at - y.at);
    this.actions.set(a.alertId, list);
    return true;
  }

  private emit(b: BoardAlert): void {
    for (const l of this.listeners) {
      try {
        l(b);
      } catch {
        // One subscriber's failure (a closed stream) must not keep the others from hearing.
      }
    }
  }

  private view(e: AlertEpisode): BoardAlert {
    return boardAlert(e, this.scenes.sceneOf(e.service), this.actions.get(e.id) ?? []);
  }
}

/** An episode with its actions, as the board shows it. */
export function boardAlert(e: AlertEpisode, scene: string, actions: readonly AlertAction[]): BoardAlert {
  const timeline: TimelineEntry[] = [{ at: new Date(Date.parse(e.start)).toISOString(), what: "fired" }];
  let acknowledged: BoardAlert["acknowledged"] = null;
  let resolvedBy: BoardAlert["resolvedBy"] = null;
  for (const a of actions) {
    const at = new Date(a.at).toISOString();
    const note = a.note !== "" ? { note: a.note } : {};
    switch (a.action) {
      case "ACK":
        acknowledged ??= { by: a.actor, at, note: a.note };
        timeline.push({ at, what: "acknowledged", by: a.actor, ...note });
        break;
      case "RESOLVE":
        resolvedBy ??= { by: a.actor, at, note: a.note };
        timeline.push({ at, what: "resolved", by: a.actor, ...note });
        break;
      case "NOTE":
        timeline.push({ at, what: "note", by: a.actor, ...note });
        break;
      case "NOTIFIED":
        timeline.push({ at, what: "notified", by: a.actor, ...note });
        break;
      case "NOTIFY_FAILED":
        timeline.push({ at, what: "notify-failed", by: a.actor, ...note });
        break;
    }
  }
  if (e.end !== null) timeline.push({ at: new Date(Date.parse(e.end)).toISOString(), what: "cleared" });
  timeline.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const status = e.end !== null || resolvedBy !== null ? "resolved" : acknowledged !== null ? "acknowledged" : "firing";
  return { ...e, scene, status, acknowledged, resolvedBy, timeline };
}
