// The Health page: the app > system > service > endpoint tree with each node's availability, the level
// it reaches (90% weak ... 99.9999% strong), its target, the error budget left and the burn rate over
// the window; a service's or endpoint's per-second QPS, errors and p99, zoomable, with its alert
// episodes marked; and the daily availability report.
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { get } from "./api.ts";
import { Chart, type Marker } from "./chart.tsx";
import { burn, micros, num, pct, seconds, time } from "./format.ts";
import { describe } from "./logs.tsx";
import { navigate, route } from "./router.ts";
import type { DailyReport, HealthTree, SeriesResult, TreeNode } from "./types.ts";

const PERIODS = ["15m", "1h", "6h", "24h"];

export function HealthPage() {
  const p = route.value.params;
  const since = p.get("since") ?? (p.get("from") ? "" : "15m");
  const from = p.get("from") ?? "";
  const to = p.get("to") ?? "";
  const service = p.get("service") ?? "";
  const endpoint = p.get("endpoint") ?? "";
  const tab = p.get("tab") ?? "tree";
  const tree = useSignal<HealthTree | null>(null);
  const error = useSignal<string | null>(null);
  const keep = { since: from ? undefined : since, from, to, service, endpoint };

  useEffect(() => {
    if (tab !== "tree") return;
    const ac = new AbortController();
    const load = () =>
      get<HealthTree>("/v1/health/tree", from ? { from, to } : { since }, ac.signal)
        .then((t) => {
          tree.value = t;
          error.value = null;
        })
        .catch((e: unknown) => {
          if (!ac.signal.aborted) error.value = describe(e);
        });
    load();
    // A live window follows the newest seconds; a zoomed one stays put.
    const timer = from ? undefined : setInterval(load, 5000);
    return () => {
      ac.abort();
      clearInterval(timer);
    };
  }, [since, from, to, tab]);

  return (
    <div class="page health">
      <div class="toolbar">
        <span class="tabs">
          <button type="button" class={tab === "tree" ? "on" : ""} onClick={() => navigate("/health", keep)}>
            Now
          </button>
          <button
            type="button"
            class={tab === "report" ? "on" : ""}
            onClick={() => navigate("/health", { tab: "report" })}
            data-testid="report-tab"
          >
            Daily report
          </button>
        </span>
        {tab === "tree" ? (
          <select
            value={from ? "" : since}
            aria-label="period"
            onChange={(e) =>
              navigate("/health", { ...keep, since: (e.target as HTMLSelectElement).value, from: "", to: "" })
            }
          >
            {from ? <option value="">zoomed</option> : null}
            {PERIODS.map((x) => (
              <option key={x} value={x}>
                last {x}
              </option>
            ))}
          </select>
        ) : null}
        {tree.value && tab === "tree" ? (
          <small>
            {time(Date.parse(tree.value.from), false)} – {time(Date.parse(tree.value.to), false)}, from{" "}
            {tree.value.resolutionMs / 1000} s rows
          </small>
        ) : null}
      </div>
      {error.value ? <div class="error">{error.value}</div> : null}
      {tab === "report" ? (
        <Report />
      ) : (
        <div class="split">
          <table class="tree" data-testid="health-tree">
            <thead>
              <tr>
                <th>node</th>
                <th>availability</th>
                <th>level</th>
                <th>target</th>
                <th>budget left</th>
                <th>burn</th>
                <th>QPS</th>
                <th>alerts</th>
              </tr>
            </thead>
            <tbody>
              {(tree.value?.roots ?? []).map((n) => (
                <NodeRows key={n.name} node={n} depth={0} keep={keep} selected={`${service} ${endpoint}`.trim()} />
              ))}
            </tbody>
          </table>
          {service ? (
            <Series service={service} endpoint={endpoint} since={since} from={from} to={to} />
          ) : (
            <p class="hint">Pick a service or an endpoint for its per-second QPS, errors and p99.</p>
          )}
        </div>
      )}
    </div>
  );
}

function NodeRows(props: {
  node: TreeNode;
  depth: number;
  keep: Record<string, string | undefined>;
  selected: string;
}) {
  const n = props.node;
  const open = useSignal(props.depth < 2 || n.level === "SERVICE" ? props.depth < 3 : false);
  const selectable = n.level === "SERVICE" || n.level === "ENDPOINT";
  const missed = n.availability !== null && n.availability < n.target;
  return (
    <>
      <tr
        class={`node ${n.level.toLowerCase()}${props.selected === n.name ? " selected" : ""}${missed ? " missed" : ""}`}
        data-testid="tree-node"
        data-level={n.level}
        data-name={n.name}
      >
        <td style={{ paddingLeft: `${props.depth * 18 + 4}px` }}>
          {n.children.length > 0 ? (
            <button type="button" class="twisty" onClick={() => (open.value = !open.value)}>
              {open.value ? "▾" : "▸"}
            </button>
          ) : (
            <span class="twisty" />
          )}
          {selectable ? (
            <button
              type="button"
              class="link"
              onClick={() => {
                navigate("/health", {
                  ...props.keep,
                  service: n.service,
                  endpoint: n.level === "ENDPOINT" ? n.endpoint : "",
                });
              }}
            >
              {n.level === "ENDPOINT" ? n.endpoint : n.name}
            </button>
          ) : (
            <strong>{n.name}</strong>
          )}
        </td>
        <td class="num">{pct(n.availability)}</td>
        <td>
          <span class={`badge lvl-${(n.levelReached ?? "below").replace(" ", "-")}`}>
            {n.levelReached ?? "below weak"}
          </span>
        </td>
        <td class="num">{pct(n.target, 2)}</td>
        <td class={`num${(n.budgetLeft ?? 1) < 0 ? " bad" : ""}`}>{pct(n.budgetLeft, 1)}</td>
        <td class={`num${(n.burnRate ?? 0) >= 1 ? " bad" : ""}`}>{burn(n.burnRate)}</td>
        <td class="num">{num(n.qps)}</td>
        <td class="num">{n.alertsFiring > 0 ? <span class="badge firing">{n.alertsFiring} firing</span> : ""}</td>
      </tr>
      {open.value
        ? n.children.map((c) => (
            <NodeRows key={c.name} node={c} depth={props.depth + 1} keep={props.keep} selected={props.selected} />
          ))
        : null}
    </>
  );
}

function Series(props: { service: string; endpoint: string; since: string; from: string; to: string }) {
  const data = useSignal<SeriesResult | null>(null);
  const error = useSignal<string | null>(null);
  useEffect(() => {
    const ac = new AbortController();
    const load = () =>
      get<SeriesResult>(
        "/v1/health/series",
        {
          service: props.service,
          endpoint: props.endpoint,
          ...(props.from ? { from: props.from, to: props.to } : { since: props.since }),
          points: 300,
        },
        ac.signal,
      )
        .then((r) => {
          data.value = r;
          error.value = null;
        })
        .catch((e: unknown) => {
          if (!ac.signal.aborted) error.value = describe(e);
        });
    load();
    const timer = props.from ? undefined : setInterval(load, 5000);
    return () => {
      ac.abort();
      clearInterval(timer);
    };
  }, [props.service, props.endpoint, props.since, props.from, props.to]);
  const d = data.value;
  const xs = d?.series.map((p) => p.startMs / 1000) ?? [];
  const markers: Marker[] = (d?.alerts ?? [])
    .filter((a) => !props.endpoint || a.endpoint === props.endpoint || a.endpoint === "")
    .map((a) => ({
      fromMs: Date.parse(a.start),
      toMs: a.end ? Date.parse(a.end) : null,
      label: a.rule,
      colour: a.severity === "PAGE" ? "#d33" : "#d90",
    }));
  const zoom = (f: number, t: number) =>
    navigate("/health", { service: props.service, endpoint: props.endpoint, from: String(f), to: String(t) });
  return (
    <section class="series" data-testid="health-series">
      <h3>
        {d?.name ?? props.service}{" "}
        {d ? (
          <small>
            {num(d.totals.requests)} requests, availability {pct(d.totals.availability)}, p99 {micros(d.totals.p99Us)},
            per {d.bucketMs / 1000} s
          </small>
        ) : null}
        {props.from ? (
          <button
            type="button"
            class="link"
            onClick={() => navigate("/health", { service: props.service, endpoint: props.endpoint, since: "15m" })}
          >
            reset zoom
          </button>
        ) : null}
      </h3>
      {error.value ? <div class="error">{error.value}</div> : null}
      {d && !d.hasData ? <p class="hint">No rows for this node in the window.</p> : null}
      {d ? (
        <>
          <Chart
            title="QPS"
            xs={xs}
            series={[{ label: "QPS", values: d.series.map((p) => p.qps), colour: "#3b6fd8" }]}
            markers={markers}
            onZoom={zoom}
            testId="chart-qps"
          />
          <Chart
            title="errors"
            xs={xs}
            series={[
              { label: "errors", values: d.series.map((p) => (p.windows > 0 ? p.errors : null)), colour: "#d33" },
            ]}
            markers={markers}
            onZoom={zoom}
            bars
          />
          <Chart
            title="p99 latency"
            xs={xs}
            series={[
              {
                label: "p99",
                values: d.series.map((p) => (p.p99Us === null ? null : p.p99Us / 1000)),
                colour: "#8a3fd1",
                format: (v) => `${v.toFixed(0)} ms`,
              },
            ]}
            markers={markers}
            onZoom={zoom}
          />
          {d.alerts.length > 0 ? (
            <ul class="episodes">
              {d.alerts.map((a) => (
                <li key={a.id}>
                  <span class={`badge ${a.severity === "PAGE" ? "firing" : "ticket"}`}>{a.rule}</span>{" "}
                  {time(Date.parse(a.start), false)}
                  {a.end ? `, ${seconds(a.durationS)}` : ", still firing"}: {a.message}
                </li>
              ))}
            </ul>
          ) : null}
        </>
      ) : null}
    </section>
  );
}

function Report() {
  const day = route.value.params.get("day") ?? new Date().toISOString().slice(0, 10);
  const data = useSignal<DailyReport | null>(null);
  const error = useSignal<string | null>(null);
  useEffect(() => {
    const ac = new AbortController();
    data.value = null;
    get<DailyReport>("/v1/health/report", { day }, ac.signal)
      .then((r) => {
        data.value = r;
        error.value = null;
      })
      .catch((e: unknown) => {
        if (!ac.signal.aborted) error.value = describe(e);
      });
    return () => ac.abort();
  }, [day]);
  const r = data.value;
  const rows = (title: string, list: DailyReport["services"]) =>
    list.length === 0 ? null : (
      <>
        <h4>{title}</h4>
        <table class="report">
          <thead>
            <tr>
              <th>node</th>
              <th>requests</th>
              <th>errors</th>
              <th>availability</th>
              <th>level</th>
              <th>target</th>
              <th>met</th>
              <th>downtime</th>
              <th>bad min</th>
              <th>budget left</th>
              <th>p99</th>
            </tr>
          </thead>
          <tbody>
            {list.map((n) => (
              <tr key={n.name}>
                <td>{n.name}</td>
                <td class="num">{num(n.requests)}</td>
                <td class="num">{num(n.errors)}</td>
                <td class="num">{pct(n.availability)}</td>
                <td>{n.levelReached ?? "below weak"}</td>
                <td class="num">{pct(n.target, 2)}</td>
                <td class={n.targetMet === false ? "bad" : ""}>
                  {n.targetMet === null ? "–" : n.targetMet ? "yes" : "no"}
                </td>
                <td class="num">{seconds(n.downtime.equivalentS)}</td>
                <td class="num">{n.downtime.badMinutes}</td>
                <td class="num">{pct(n.errorBudget.left, 1)}</td>
                <td class="num">{micros(n.latency.p99Us)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </>
    );
  return (
    <section class="daily" data-testid="daily-report">
      <label>
        UTC day{" "}
        <input
          type="date"
          value={day}
          onChange={(e) => navigate("/health", { tab: "report", day: (e.target as HTMLInputElement).value })}
        />
      </label>
      {error.value ? <div class="error">{error.value}</div> : null}
      {r && !r.hasData ? (
        <p class="hint">No health rows for {r.day}: the pipeline was not running, or retention dropped the day.</p>
      ) : null}
      {r ? (
        <>
          {rows("App", r.app)}
          {rows("Systems", r.systems)}
          {rows("Services", r.services)}
          {r.worstEndpoints.length > 0 ? (
            <>
              <h4>Worst endpoints</h4>
              <ul>
                {r.worstEndpoints.map((w) => (
                  <li key={w.name}>
                    {w.name}: {pct(w.availability)}, budget left {pct(w.budgetLeft, 1)}, {w.badMinutes} bad minutes
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          <h4>Alerts: {r.alerts.episodes}</h4>
          <ul>
            {r.alerts.list.map((a) => (
              <li key={a.id}>
                {time(Date.parse(a.start), false)} {a.rule} on {a.target}
                {a.durationS !== null ? ` for ${seconds(a.durationS)}` : ", not resolved"}
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}
