// The Risk page, for the risk team: the fraud pipeline's signals as they arrive (pushed from
// signals.risk) and the recent ones by category and rule; a signal's page with `weir rules explain`'s
// reading, its evidence and the events it came from; per-rule hit counts over time; shadow against live
// (and a shadow rule against the rule it replaces); and where backtests are.
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { get, stream } from "./api.ts";
import { Chart } from "./chart.tsx";
import { time } from "./format.ts";
import { describe } from "./logs.tsx";
import { navigate, route } from "./router.ts";
import type { RiskRules, RiskSignal, SignalExplained } from "./types.ts";

const SINCE = ["15m", "1h", "6h", "24h", "7d"];
const COLOURS = ["#3b6fd8", "#d33", "#8a3fd1", "#1a9a6b", "#d98a00", "#555", "#c2185b", "#0097a7"];

export function RiskPage() {
  const p = route.value.params;
  const signal = p.get("signal");
  const tab = p.get("tab") ?? "signals";
  return (
    <div class="page risk">
      <div class="toolbar">
        <span class="tabs">
          <button type="button" class={tab === "signals" && !signal ? "on" : ""} onClick={() => navigate("/risk")}>
            Signals
          </button>
          <button
            type="button"
            class={tab === "rules" ? "on" : ""}
            onClick={() => navigate("/risk", { tab: "rules", since: p.get("since") })}
            data-testid="risk-rules-tab"
          >
            Rules
          </button>
        </span>
      </div>
      {signal ? <SignalView id={signal} /> : tab === "rules" ? <RulesView /> : <SignalList />}
    </div>
  );
}

function matches(s: RiskSignal, rule: string | null, category: string | null, shadow: string | null): boolean {
  return (
    (!rule || s.ruleId === rule) && (!category || s.category === category) && (!shadow || String(s.shadow) === shadow)
  );
}

function SignalList() {
  const p = route.value.params;
  const since = p.get("since") ?? "1h";
  const rule = p.get("rule");
  const category = p.get("category");
  const shadow = p.get("shadow");
  const signals = useSignal<RiskSignal[]>([]);
  const fresh = useSignal<Set<string>>(new Set());
  const status = useSignal("connecting…");
  const error = useSignal<string | null>(null);
  const set = (k: string, v: string | null) =>
    navigate("/risk", { since, rule, category, shadow, [k]: v === "" ? null : v });

  useEffect(() => {
    const ac = new AbortController();
    const add = (s: RiskSignal) => {
      if (!matches(s, rule, category, shadow) || signals.value.some((x) => x.id === s.id)) return;
      signals.value = [s, ...signals.value].slice(0, 500);
      fresh.value = new Set(fresh.value).add(s.id);
    };
    // The stream first, then the list: a signal in between is in one or the other.
    stream("/v1/risk/stream", {}, (event, data) => event === "signal" && add(JSON.parse(data) as RiskSignal), ac.signal)
      .then(() => {
        if (!ac.signal.aborted) status.value = "stream ended";
      })
      .catch((e) => {
        status.value = "not live";
        error.value = describe(e);
      });
    status.value = "live";
    get<{ signals: RiskSignal[] }>("/v1/risk/signals", { since, rule, category, shadow, limit: 200 }, ac.signal)
      .then((r) => {
        const seen = new Set(signals.value.map((s) => s.id));
        signals.value = [...signals.value, ...r.signals.filter((s) => !seen.has(s.id))].sort((a, b) => b.ts - a.ts);
        error.value = null;
      })
      .catch((e) => {
        if (!ac.signal.aborted) error.value = describe(e);
      });
    return () => ac.abort();
  }, [since, rule, category, shadow]);

  const list = signals.value;
  const byCategory = new Map<string, number>();
  const byRule = new Map<string, number>();
  for (const s of list) {
    byCategory.set(s.category || "–", (byCategory.get(s.category || "–") ?? 0) + 1);
    byRule.set(s.ruleId, (byRule.get(s.ruleId) ?? 0) + 1);
  }
  return (
    <>
      <div class="board-status" data-testid="risk-status">
        <span class={`dot ${status.value === "live" ? "live" : ""}`} /> {status.value}: {list.length} signals shown
        <label>
          {" "}
          since{" "}
          <select value={since} onChange={(e) => set("since", (e.target as HTMLSelectElement).value)}>
            {SINCE.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          {" "}
          mode{" "}
          <select value={shadow ?? ""} onChange={(e) => set("shadow", (e.target as HTMLSelectElement).value)}>
            <option value="">live and shadow</option>
            <option value="false">live only</option>
            <option value="true">shadow only</option>
          </select>
        </label>
        {rule || category ? (
          <button type="button" class="link" onClick={() => navigate("/risk", { since, shadow })}>
            clear {rule ? `rule ${rule}` : `category ${category}`}
          </button>
        ) : null}
      </div>
      {error.value ? <div class="error">{error.value}</div> : null}
      <div class="chips" data-testid="risk-categories">
        {[...byCategory].map(([c, n]) => (
          <button key={c} type="button" class="chip" onClick={() => set("category", c === "–" ? null : c)}>
            {c} <small>{n}</small>
          </button>
        ))}
        {[...byRule].map(([r, n]) => (
          <button key={r} type="button" class="chip rule" onClick={() => set("rule", r)}>
            {r} <small>{n}</small>
          </button>
        ))}
      </div>
      <table class="hits signals" data-testid="signals">
        <thead>
          <tr>
            <th>time</th>
            <th>rule</th>
            <th>category</th>
            <th>severity</th>
            <th>action</th>
            <th>entity</th>
            <th>explanation</th>
          </tr>
        </thead>
        <tbody>
          {list.map((s) => (
            <tr
              key={s.id}
              class={`hit${fresh.value.has(s.id) ? " fresh" : ""}${s.shadow ? " shadow" : ""}`}
              data-testid="signal"
              data-id={s.id}
              data-rule={s.ruleId}
              onClick={() => navigate("/risk", { signal: s.id })}
            >
              <td>{time(s.ts, false)}</td>
              <td>
                {s.ruleId} <small>v{s.ruleVersion}</small>
                {s.shadow ? <span class="badge ticket">shadow</span> : null}
              </td>
              <td>{s.category}</td>
              <td>
                <span class={`badge sev-${s.severity}`}>{s.severity}</span>
              </td>
              <td>{s.action}</td>
              <td>
                {s.entity.type} {s.entity.id}
              </td>
              <td class="msg">{s.evidence.explanation}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.length === 0 && !error.value ? <p class="quiet">no signals in the last {since}</p> : null}
    </>
  );
}

function SignalView(props: { id: string }) {
  const data = useSignal<SignalExplained | null>(null);
  const error = useSignal<string | null>(null);
  useEffect(() => {
    const ac = new AbortController();
    data.value = null;
    get<SignalExplained>(`/v1/risk/signals/${encodeURIComponent(props.id)}`, { since: "30d" }, ac.signal)
      .then((r) => {
        data.value = r;
        error.value = null;
      })
      .catch((e) => {
        if (!ac.signal.aborted) error.value = describe(e);
      });
    return () => ac.abort();
  }, [props.id]);
  if (error.value) return <div class="error">{error.value}</div>;
  const d = data.value;
  if (!d) return <p class="quiet">loading the signal…</p>;
  const s = d.signal;
  const counts = Object.entries(s.evidence.counts);
  return (
    <div class="signal" data-testid="signal-view">
      <h3>
        <span class={`badge sev-${s.severity}`}>{s.severity}</span> {s.ruleId} <small>v{s.ruleVersion}</small>{" "}
        {s.shadow ? <span class="badge ticket">shadow: recorded, not acted on</span> : null}
      </h3>
      <p class="message" data-testid="explanation">
        {s.evidence.explanation}
      </p>
      <table class="summary">
        <tbody>
          <tr>
            <th>when</th>
            <td>{time(s.ts)}</td>
            <th>category</th>
            <td>{d.category}</td>
          </tr>
          <tr>
            <th>entity</th>
            <td>
              {s.entity.type} {s.entity.id}
            </td>
            <th>score, action</th>
            <td>
              {s.score}, {s.action}
            </td>
          </tr>
          <tr>
            <th>rule</th>
            <td colSpan={3}>
              {d.rule ? (
                <>
                  {d.rule.id} v{d.rule.version} ({d.rule.status}, owner {d.rule.owner}) at {d.rule.source}
                  {d.rule.description ? <div class="quiet">{d.rule.description}</div> : null}
                </>
              ) : (
                "no longer in the rules folder: the evidence alone"
              )}
            </td>
          </tr>
        </tbody>
      </table>
      <h4>Explanation (weir rules explain)</h4>
      <pre class="json" data-testid="explain">
        {d.explain.join("\n")}
      </pre>
      <h4>Evidence</h4>
      <table class="summary" data-testid="evidence">
        <tbody>
          {Object.entries(s.evidence.matched).map(([k, v]) => (
            <tr key={k}>
              <th>{k}</th>
              <td>{v}</td>
            </tr>
          ))}
          {counts.map(([k, v]) => (
            <tr key={`count-${k}`}>
              <th>count {k}</th>
              <td>{v}</td>
            </tr>
          ))}
          {s.evidence.windowStart !== null && s.evidence.windowEnd !== null ? (
            <tr>
              <th>window</th>
              <td>
                {time(s.evidence.windowStart)} .. {time(s.evidence.windowEnd)}
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
      <h4>Events ({s.evidence.sourceEventIds.length})</h4>
      <ul data-testid="events">
        {s.evidence.sourceEventIds.map((e) => (
          <li key={e}>
            <code>{e}</code>
          </li>
        ))}
      </ul>
      <p>
        <button
          type="button"
          class="link"
          onClick={() => navigate("/risk", { rule: s.ruleId, since: "24h" })}
          data-testid="same-rule"
        >
          signals of this rule
        </button>
      </p>
    </div>
  );
}

function RulesView() {
  const p = route.value.params;
  const from = p.get("from");
  const to = p.get("to");
  const since = from ? null : (p.get("since") ?? "24h");
  const data = useSignal<RiskRules | null>(null);
  const error = useSignal<string | null>(null);
  useEffect(() => {
    const ac = new AbortController();
    get<RiskRules>("/v1/risk/rules", { since, from, to }, ac.signal)
      .then((r) => {
        data.value = r;
        error.value = null;
      })
      .catch((e) => {
        if (!ac.signal.aborted) error.value = describe(e);
      });
    return () => ac.abort();
  }, [since, from, to]);
  const d = data.value;
  const catalog = new Map((d?.catalog ?? []).map((r) => [r.id, r]));
  return (
    <>
      <div class="board-status">
        since{" "}
        <select
          value={since ?? ""}
          onChange={(e) => navigate("/risk", { tab: "rules", since: (e.target as HTMLSelectElement).value })}
        >
          {from ? <option value="">zoomed</option> : null}
          {SINCE.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </div>
      {error.value ? <div class="error">{error.value}</div> : null}
      {!d ? (
        <p class="quiet">loading…</p>
      ) : (
        <div data-testid="risk-rules">
          {d.rules.length > 0 ? (
            <Chart
              title={`signals per ${d.stepMs >= 60_000 ? `${d.stepMs / 60_000} min` : `${d.stepMs / 1000} s`}, by rule`}
              xs={d.buckets.map((b) => b / 1000)}
              series={d.rules.slice(0, COLOURS.length).map((r, i) => ({
                label: r.rule,
                values: r.counts,
                colour: COLOURS[i] as string,
              }))}
              onZoom={(from, to) =>
                navigate("/risk", { tab: "rules", from: String(Math.round(from)), to: String(Math.round(to)) })
              }
              testId="rule-hits"
            />
          ) : (
            <p class="quiet">no signals in the window</p>
          )}
          <h4>Rules: live and shadow</h4>
          <table class="hits" data-testid="rule-table">
            <thead>
              <tr>
                <th>rule</th>
                <th>category</th>
                <th>status</th>
                <th>live signals</th>
                <th>live entities</th>
                <th>shadow signals</th>
                <th>shadow entities</th>
              </tr>
            </thead>
            <tbody>
              {d.rules.map((r) => (
                <tr key={r.rule} data-testid="rule-row" data-rule={r.rule}>
                  <td>
                    <button
                      type="button"
                      class="link"
                      onClick={() => navigate("/risk", { rule: r.rule, since: since ?? "24h" })}
                    >
                      {r.rule}
                    </button>
                  </td>
                  <td>{r.category}</td>
                  <td>{catalog.get(r.rule)?.status ?? "not in the rules folder"}</td>
                  <td>{r.live}</td>
                  <td>{r.liveEntities}</td>
                  <td>{r.shadow}</td>
                  <td>{r.shadowEntities}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h4>Shadow rules against the rules they replace</h4>
          {d.shadows.length === 0 ? (
            <p class="quiet">no rule of the rules folder replaces another</p>
          ) : (
            <table class="hits" data-testid="shadow-table">
              <thead>
                <tr>
                  <th>rule</th>
                  <th>replaces</th>
                  <th>entities both flagged</th>
                  <th>only the new rule</th>
                  <th>only the old rule</th>
                </tr>
              </thead>
              <tbody>
                {d.shadows.map((c) => (
                  <tr key={c.rule}>
                    <td>{c.rule}</td>
                    <td>{c.replaces}</td>
                    <td>{c.both}</td>
                    <td>{c.onlyNew}</td>
                    <td>{c.onlyOld}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {d.shadowsTruncated ? <p class="hint">more entities than compared: narrow the window</p> : null}
          <h4>Backtests</h4>
          <p class="quiet" data-testid="backtest">
            {d.backtest.note}
          </p>
          {d.rulesProblems > 0 ? (
            <p class="error">the rules folder has {d.rulesProblems} problem(s): weir rules check shows them</p>
          ) : null}
        </div>
      )}
    </>
  );
}
