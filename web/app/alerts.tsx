// The Alerts page, the guarantee board: alerts pushed as they fire and resolve, grouped by business
// scene with the people on duty and the scene's runbook (SOP); each alert with its rule's runbook,
// acknowledge and resolve, its timeline; and the report after an event (alerts, time to acknowledge,
// time to resolve).
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { get, post, stream } from "./api.ts";
import { ago, seconds, time } from "./format.ts";
import { describe } from "./logs.tsx";
import { navigate, route } from "./router.ts";
import type { AlertReport, BoardAlert, SceneView } from "./types.ts";

export function AlertsPage() {
  const tab = route.value.params.get("tab") ?? "board";
  return (
    <div class="page alerts">
      <div class="toolbar">
        <span class="tabs">
          <button type="button" class={tab === "board" ? "on" : ""} onClick={() => navigate("/alerts")}>
            Board
          </button>
          <button
            type="button"
            class={tab === "report" ? "on" : ""}
            onClick={() => navigate("/alerts", { tab: "report" })}
            data-testid="alerts-report-tab"
          >
            Report
          </button>
        </span>
      </div>
      {tab === "report" ? <AlertReportView /> : <Board />}
    </div>
  );
}

function Board() {
  const scenes = useSignal<SceneView[]>([]);
  const alerts = useSignal<Map<string, BoardAlert>>(new Map());
  const fresh = useSignal<Set<string>>(new Set());
  const status = useSignal("connecting…");
  const error = useSignal<string | null>(null);
  const showResolved = useSignal(route.value.params.get("resolved") !== "hide");

  useEffect(() => {
    const ac = new AbortController();
    const apply = (a: BoardAlert, isNew: boolean) => {
      const m = new Map(alerts.value);
      const was = m.get(a.id);
      m.set(a.id, a);
      alerts.value = m;
      if (isNew && (!was || was.status !== a.status)) {
        fresh.value = new Set(fresh.value).add(a.id);
        setTimeout(() => {
          const f = new Set(fresh.value);
          f.delete(a.id);
          fresh.value = f;
        }, 8000);
      }
    };
    // The stream first, then the list: an alert that fires in between is in one or the other.
    const following = stream(
      "/v1/alerts/stream",
      {},
      (event, data) => {
        if (event === "alert") apply(JSON.parse(data) as BoardAlert, true);
      },
      ac.signal,
    );
    status.value = "live";
    get<{ scenes: SceneView[]; alerts: BoardAlert[] }>("/v1/alerts", {}, ac.signal)
      .then((r) => {
        scenes.value = r.scenes;
        const m = new Map(alerts.value);
        for (const a of r.alerts) if (!m.has(a.id)) m.set(a.id, a);
        alerts.value = m;
      })
      .catch((e: unknown) => {
        if (!ac.signal.aborted) error.value = describe(e);
      });
    following
      .then(() => {
        if (!ac.signal.aborted) status.value = "the server ended the stream; reload to follow again";
      })
      .catch((e: unknown) => {
        if (!ac.signal.aborted) status.value = describe(e);
      });
    return () => ac.abort();
  }, []);

  const all = [...alerts.value.values()].sort((a, b) => (a.start < b.start ? 1 : -1));
  const bySceneId = new Map<string, BoardAlert[]>();
  for (const a of all) {
    if (!showResolved.value && a.status === "resolved") continue;
    bySceneId.set(a.scene, [...(bySceneId.get(a.scene) ?? []), a]);
  }
  const open = all.filter((a) => a.status !== "resolved").length;
  return (
    <>
      <div class="board-status" data-testid="board-status">
        <span class={`dot ${status.value === "live" ? "live" : ""}`} /> {status.value}: {open} open, {all.length} in the
        last 24 h
        <label class="toggle">
          <input
            type="checkbox"
            checked={showResolved.value}
            onChange={(e) => (showResolved.value = (e.target as HTMLInputElement).checked)}
          />{" "}
          show resolved
        </label>
      </div>
      {error.value ? <div class="error">{error.value}</div> : null}
      <div class="scenes">
        {scenes.value
          .filter((s) => s.id !== "other" || bySceneId.has("other"))
          .map((s) => (
            <section key={s.id} class="scene" data-testid="scene" data-scene={s.id}>
              <header>
                <h3>{s.name}</h3>
                {s.runbook ? (
                  <a href={s.runbook} target="_blank" rel="noreferrer noopener">
                    scene SOP
                  </a>
                ) : null}
                <div class="onduty" data-testid="on-duty">
                  on duty:{" "}
                  {s.onDuty.length === 0
                    ? "nobody listed"
                    : s.onDuty.map((p) => (
                        <span key={p.id} class="person" title={p.contact ?? ""}>
                          {p.name}
                          {p.role ? <small> ({p.role})</small> : null}
                          {p.contact ? <small> {p.contact}</small> : null}
                        </span>
                      ))}
                </div>
                <small class="services">{s.services.join(", ")}</small>
              </header>
              {(bySceneId.get(s.id) ?? []).length === 0 ? <p class="quiet">no alerts</p> : null}
              {(bySceneId.get(s.id) ?? []).map((a) => (
                <AlertCard
                  key={a.id}
                  alert={a}
                  fresh={fresh.value.has(a.id)}
                  onChange={(x) => {
                    const m = new Map(alerts.value);
                    m.set(x.id, x);
                    alerts.value = m;
                  }}
                />
              ))}
            </section>
          ))}
      </div>
    </>
  );
}

function AlertCard(props: { alert: BoardAlert; fresh: boolean; onChange: (a: BoardAlert) => void }) {
  const a = props.alert;
  const showTimeline = useSignal(false);
  const busy = useSignal(false);
  const error = useSignal<string | null>(null);
  const act = async (what: "ack" | "resolve") => {
    const note =
      prompt(what === "ack" ? "Acknowledge: a note (optional)" : "Resolve: what was done (optional)") ?? null;
    if (note === null) return;
    busy.value = true;
    try {
      props.onChange(await post<BoardAlert>(`/v1/alerts/${encodeURIComponent(a.id)}/${what}`, { note }));
      error.value = null;
    } catch (e) {
      error.value = describe(e);
    } finally {
      busy.value = false;
    }
  };
  return (
    <article
      class={`alert ${a.status}${props.fresh ? " fresh" : ""}`}
      data-testid="alert"
      data-id={a.id}
      data-status={a.status}
      data-service={a.service}
    >
      <div class="head">
        <span class={`badge ${a.severity === "PAGE" ? "firing" : "ticket"}`}>{a.severity}</span>
        <span class={`badge status-${a.status}`}>{a.status}</span>
        <strong>{a.target}</strong> <small>{a.rule}</small>
        <span class="when" title={a.start}>
          {ago(a.start)}
          {a.durationS !== null ? `, lasted ${seconds(a.durationS)}` : ""}
        </span>
      </div>
      <p class="message">{a.message}</p>
      <div class="actions">
        <a href={a.runbook} target="_blank" rel="noreferrer noopener">
          runbook
        </a>
        {a.status === "firing" ? (
          <button type="button" disabled={busy.value} onClick={() => act("ack")} data-testid="ack">
            Acknowledge
          </button>
        ) : null}
        {a.status !== "resolved" ? (
          <button type="button" disabled={busy.value} onClick={() => act("resolve")} data-testid="resolve">
            Resolve
          </button>
        ) : null}
        <button
          type="button"
          class="link"
          onClick={() => (showTimeline.value = !showTimeline.value)}
          data-testid="timeline-toggle"
        >
          timeline ({a.timeline.length})
        </button>
        <a
          href={`/logs?q=${encodeURIComponent(`service:${a.service}${a.endpoint ? ` endpoint:"${a.endpoint}"` : ""} level:error`)}&since=1h`}
        >
          logs
        </a>
        <a
          href={`/health?service=${encodeURIComponent(a.service)}${a.endpoint ? `&endpoint=${encodeURIComponent(a.endpoint)}` : ""}&since=1h`}
        >
          health
        </a>
      </div>
      {a.acknowledged ? (
        <small class="who">
          acknowledged by {a.acknowledged.by} {ago(a.acknowledged.at)}
          {a.acknowledged.note ? `: ${a.acknowledged.note}` : ""}
        </small>
      ) : null}
      {error.value ? <div class="error">{error.value}</div> : null}
      {showTimeline.value ? (
        <ol class="timeline" data-testid="timeline">
          {a.timeline.map((t, i) => (
            <li key={i}>
              <span class="time">{time(Date.parse(t.at))}</span> {t.what}
              {t.by ? ` by ${t.by}` : ""}
              {t.note ? `: ${t.note}` : ""}
            </li>
          ))}
        </ol>
      ) : null}
    </article>
  );
}

function AlertReportView() {
  const since = route.value.params.get("since") ?? "24h";
  const data = useSignal<AlertReport | null>(null);
  const error = useSignal<string | null>(null);
  useEffect(() => {
    const ac = new AbortController();
    get<AlertReport>("/v1/alerts/report", { since }, ac.signal)
      .then((r) => {
        data.value = r;
      })
      .catch((e: unknown) => {
        if (!ac.signal.aborted) error.value = describe(e);
      });
    return () => ac.abort();
  }, [since]);
  const r = data.value;
  const figures = (f: AlertReport["totals"]) => (
    <>
      <td class="num">{f.alerts}</td>
      <td class="num">{f.acknowledged}</td>
      <td class="num">{seconds(f.medianTimeToAcknowledgeS)}</td>
      <td class="num">{seconds(f.maxTimeToAcknowledgeS)}</td>
      <td class="num">{f.resolved}</td>
      <td class="num">{seconds(f.medianTimeToResolveS)}</td>
      <td class="num">{seconds(f.maxTimeToResolveS)}</td>
    </>
  );
  const head = (
    <tr>
      <th />
      <th>alerts</th>
      <th>acknowledged</th>
      <th>median to ack</th>
      <th>worst to ack</th>
      <th>resolved</th>
      <th>median to resolve</th>
      <th>worst to resolve</th>
    </tr>
  );
  return (
    <section class="alert-report" data-testid="alert-report">
      <select
        value={since}
        aria-label="period"
        onChange={(e) => navigate("/alerts", { tab: "report", since: (e.target as HTMLSelectElement).value })}
      >
        {["1h", "6h", "24h"].map((p) => (
          <option key={p} value={p}>
            last {p}
          </option>
        ))}
      </select>
      {error.value ? <div class="error">{error.value}</div> : null}
      {r ? (
        <>
          <table class="report">
            <thead>{head}</thead>
            <tbody>
              <tr>
                <th>all</th>
                {figures(r.totals)}
              </tr>
              {r.byScene.map((s) => (
                <tr key={s.scene}>
                  <th>{s.scene}</th>
                  {figures(s)}
                </tr>
              ))}
              {r.bySeverity.map((s) => (
                <tr key={s.severity}>
                  <th>{s.severity}</th>
                  {figures(s)}
                </tr>
              ))}
            </tbody>
          </table>
          <table class="report">
            <thead>
              <tr>
                <th>fired</th>
                <th>scene</th>
                <th>alert</th>
                <th>to acknowledge</th>
                <th>by</th>
                <th>to resolve</th>
                <th>by</th>
              </tr>
            </thead>
            <tbody>
              {r.alerts.map((a) => (
                <tr key={a.id}>
                  <td class="time">{time(Date.parse(a.start), false)}</td>
                  <td>{a.scene}</td>
                  <td>
                    {a.severity} {a.rule} on {a.target}
                  </td>
                  <td class="num">{seconds(a.timeToAcknowledgeS)}</td>
                  <td>{a.acknowledgedBy ?? "–"}</td>
                  <td class="num">{seconds(a.timeToResolveS)}</td>
                  <td>{a.resolvedBy ?? "–"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </section>
  );
}
