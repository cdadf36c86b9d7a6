// The Logs page, for what Kibana Discover and Grafana Explore users expect: a query bar (the query
// language of docs/logs-query.md) with history and saved queries, a histogram of the result to drag
// over to zoom, the hits with chosen fields as columns and the matched words marked, each hit's whole
// document as JSON, the lines around it (more on either side), its trace across services, a link to
// it, and a live tail that pauses while you scroll back.
import { signal, useSignal } from "@preact/signals";
import type { JSX } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { ApiError, get, stream } from "./api.ts";
import { Chart } from "./chart.tsx";
import { time } from "./format.ts";
import { navigate, route } from "./router.ts";
import type { ContextResult, HistogramResult, LogHit, SearchResult, TraceResult } from "./types.ts";

const HISTORY_KEY = "weir.logs.history";
const SAVED_KEY = "weir.logs.saved";
const COLUMNS_KEY = "weir.logs.columns";
const FIELDS = [
  "host",
  "logger",
  "traceId",
  "endpoint",
  "urlQuery",
  "status",
  "latencyMs",
  "uid",
  "clientIp",
  "userAgent",
  "referrer",
  "caller",
  "dataset",
];
const PERIODS = ["5m", "15m", "1h", "6h", "24h", "7d"];
const TAIL_KEEP = 2000;

function stored<T>(key: string, fallback: T): T {
  try {
    const v = localStorage.getItem(key);
    return v ? (JSON.parse(v) as T) : fallback;
  } catch {
    return fallback;
  }
}

const history = signal<string[]>(stored(HISTORY_KEY, []));
const saved = signal<Array<{ name: string; query: string }>>(stored(SAVED_KEY, []));
const columns = signal<string[]>(stored(COLUMNS_KEY, ["host"]));

function remember(q: string): void {
  if (!q.trim()) return;
  history.value = [q, ...history.value.filter((h) => h !== q)].slice(0, 30);
  localStorage.setItem(HISTORY_KEY, JSON.stringify(history.value));
}

/** Words and phrases of a query that search the text, to mark in the results (field:value parts are not). */
export function matchedTerms(q: string): string[] {
  const terms: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|([^\s()"]+)/g;
  for (let m = re.exec(q); m !== null; m = re.exec(q)) {
    const phrase = m[1];
    const word = m[2];
    if (phrase !== undefined) {
      if (!/:\s*$/.test(q.slice(0, m.index))) terms.push(phrase);
    } else if (word && !word.includes(":") && !/^(AND|OR|NOT|TO|[<>]=?)$/i.test(word) && !/^[<>=]/.test(word)) {
      terms.push(word.replace(/\*/g, ""));
    }
  }
  return terms.filter((t) => t.length > 1);
}

export function Highlight(props: { text: string; terms: string[] }): JSX.Element {
  const { text, terms } = props;
  if (terms.length === 0) return <>{text}</>;
  const escaped = terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(`(${escaped.join("|")})`, "gi");
  const parts = text.split(re);
  return <>{parts.map((p, i) => (i % 2 === 1 ? <mark key={i}>{p}</mark> : p))}</>;
}

function levelClass(level: string): string {
  return `level level-${level.toLowerCase()}`;
}

export function LogsPage() {
  const params = route.value.params;
  const q = params.get("q") ?? "";
  const since = params.get("since") ?? (params.get("from") ? "" : "15m");
  const from = params.get("from") ?? "";
  const to = params.get("to") ?? "";
  const line = params.get("line");
  const trace = params.get("trace");
  const draft = useSignal(q);
  const result = useSignal<SearchResult | null>(null);
  const histogram = useSignal<HistogramResult | null>(null);
  const error = useSignal<string | null>(null);
  const loading = useSignal(false);
  const open = useSignal<string | null>(null);
  const live = useSignal(false);

  useEffect(() => {
    draft.value = q;
  }, [q]);

  useEffect(() => {
    if (live.value) return;
    const ac = new AbortController();
    loading.value = true;
    error.value = null;
    const window = from ? { from, to } : { since };
    Promise.all([
      get<SearchResult>("/v1/logs/search", { q, ...window, limit: 200 }, ac.signal),
      get<HistogramResult>("/v1/logs/histogram", { q, ...window, bars: 60 }, ac.signal),
    ])
      .then(([r, h]) => {
        result.value = r;
        histogram.value = h;
      })
      .catch((e: unknown) => {
        if (!ac.signal.aborted) error.value = describe(e);
      })
      .finally(() => {
        if (!ac.signal.aborted) loading.value = false;
      });
    return () => ac.abort();
  }, [q, since, from, to, live.value]);

  const run = (e?: Event) => {
    e?.preventDefault();
    remember(draft.value);
    navigate("/logs", { q: draft.value, since: from ? undefined : since, from, to });
  };
  const setPeriod = (p: string) => navigate("/logs", { q, since: p });
  const terms = matchedTerms(q);

  return (
    <div class="page logs">
      <form class="querybar" onSubmit={run}>
        <input
          class="query"
          name="q"
          list="query-history"
          placeholder='level:error "upstream did not answer" service:gift-svc'
          value={draft.value}
          onInput={(e) => {
            draft.value = (e.target as HTMLInputElement).value;
          }}
          aria-label="query"
        />
        <datalist id="query-history">
          {history.value.map((h) => (
            <option key={h} value={h} />
          ))}
        </datalist>
        <select
          value={from ? "" : since}
          onChange={(e) => setPeriod((e.target as HTMLSelectElement).value)}
          aria-label="period"
        >
          {from ? <option value="">zoomed</option> : null}
          {PERIODS.map((p) => (
            <option key={p} value={p}>
              last {p}
            </option>
          ))}
        </select>
        <button type="submit">Search</button>
        <button
          type="button"
          onClick={() => {
            const name = prompt("Name this query", draft.value.slice(0, 40));
            if (!name) return;
            saved.value = [...saved.value.filter((s) => s.name !== name), { name, query: draft.value }];
            localStorage.setItem(SAVED_KEY, JSON.stringify(saved.value));
          }}
        >
          Save
        </button>
        <label class="toggle">
          <input
            type="checkbox"
            checked={live.value}
            data-testid="live-toggle"
            onChange={(e) => {
              live.value = (e.target as HTMLInputElement).checked;
            }}
          />{" "}
          Live tail
        </label>
      </form>
      {saved.value.length > 0 ? (
        <div class="saved">
          saved:{" "}
          {saved.value.map((s) => (
            <span key={s.name} class="chip">
              <a href={`/logs?q=${encodeURIComponent(s.query)}&since=${since || "15m"}`} onClick={link}>
                {s.name}
              </a>
              <button
                type="button"
                title="forget"
                onClick={() => {
                  saved.value = saved.value.filter((x) => x.name !== s.name);
                  localStorage.setItem(SAVED_KEY, JSON.stringify(saved.value));
                }}
              >
                ×
              </button>
            </span>
          ))}
        </div>
      ) : null}
      <ColumnPicker />
      {error.value ? (
        <div class="error" data-testid="error">
          {error.value}
        </div>
      ) : null}
      {line ? <ContextView hitId={line} terms={terms} /> : null}
      {trace ? <TraceView traceId={trace} /> : null}
      {live.value ? (
        <LiveTail q={q} terms={terms} />
      ) : (
        <>
          {histogram.value ? (
            <Chart
              title={`${histogram.value.total.toLocaleString("en-US")} lines, per ${Math.round(histogram.value.intervalMs / 1000)} s`}
              xs={histogram.value.buckets.map((b) => b.start / 1000)}
              series={[{ label: "lines", values: histogram.value.buckets.map((b) => b.count), colour: "#3b6fd8" }]}
              bars
              height={130}
              testId="histogram"
              onZoom={(f, t) => navigate("/logs", { q, from: String(f), to: String(t) })}
            />
          ) : null}
          {from ? (
            <button type="button" class="link" onClick={() => navigate("/logs", { q, since: "15m" })}>
              ← back to the last 15m
            </button>
          ) : null}
          <div class="summary" data-testid="summary">
            {loading.value
              ? "searching…"
              : result.value
                ? `${result.value.hits.length} of ${result.value.total.relation === "gte" ? "more than " : ""}${result.value.total.value.toLocaleString("en-US")} lines, newest first`
                : ""}
          </div>
          <table class="hits" data-testid="hits">
            <thead>
              <tr>
                <th>time</th>
                <th>level</th>
                <th>service</th>
                {columns.value.map((c) => (
                  <th key={c}>{c}</th>
                ))}
                <th>message</th>
              </tr>
            </thead>
            <tbody>
              {(result.value?.hits ?? []).map((h) => (
                <HitRow
                  key={h.id}
                  hit={h}
                  terms={terms}
                  open={open.value === h.id}
                  onToggle={() => {
                    open.value = open.value === h.id ? null : h.id;
                  }}
                />
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}

function link(e: MouseEvent): void {
  const a = e.currentTarget as HTMLAnchorElement;
  if (e.ctrlKey || e.metaKey || e.button !== 0) return;
  e.preventDefault();
  const u = new URL(a.href);
  navigate(u.pathname, Object.fromEntries(u.searchParams));
}

function ColumnPicker() {
  return (
    <details class="columns">
      <summary>columns: {columns.value.join(", ") || "none"}</summary>
      {FIELDS.map((f) => (
        <label key={f}>
          <input
            type="checkbox"
            checked={columns.value.includes(f)}
            onChange={(e) => {
              const on = (e.target as HTMLInputElement).checked;
              columns.value = on ? [...columns.value, f] : columns.value.filter((c) => c !== f);
              localStorage.setItem(COLUMNS_KEY, JSON.stringify(columns.value));
            }}
          />
          {f}
        </label>
      ))}
    </details>
  );
}

function HitRow(props: { hit: LogHit; terms: string[]; open: boolean; onToggle: () => void; mark?: boolean }) {
  const h = props.hit;
  return (
    <>
      <tr class={`hit${props.mark ? " marked" : ""}`} onClick={props.onToggle} data-testid="hit" data-id={h.id}>
        <td class="time">{time(h.ts)}</td>
        <td>
          <span class={levelClass(h.level)}>{h.level}</span>
        </td>
        <td>{h.service}</td>
        {columns.value.map((c) => (
          <td key={c}>{h[c] === undefined ? "" : String(h[c])}</td>
        ))}
        <td class="message">
          <Highlight text={h.message} terms={props.terms} />
        </td>
      </tr>
      {props.open ? (
        <tr class="detail">
          <td colSpan={4 + columns.value.length}>
            <div class="actions">
              <a href={`/logs?line=${encodeURIComponent(h.id)}`} onClick={link} data-testid="open-context">
                lines around it
              </a>
              {h.traceId ? (
                <a href={`/logs?trace=${encodeURIComponent(h.traceId)}`} onClick={link} data-testid="open-trace">
                  trace {h.traceId.slice(0, 12)}…
                </a>
              ) : null}
              <button
                type="button"
                class="link"
                onClick={() =>
                  navigator.clipboard?.writeText(`${location.origin}/logs?line=${encodeURIComponent(h.id)}`)
                }
              >
                copy link to this line
              </button>
            </div>
            <pre class="json" data-testid="json">
              {JSON.stringify(h, null, 2)}
            </pre>
          </td>
        </tr>
      ) : null}
    </>
  );
}

function ContextView(props: { hitId: string; terms: string[] }) {
  const before = useSignal(20);
  const after = useSignal(20);
  const data = useSignal<ContextResult | null>(null);
  const error = useSignal<string | null>(null);
  const open = useSignal<string | null>(null);
  useEffect(() => {
    const ac = new AbortController();
    get<ContextResult>(
      `/v1/logs/context/${encodeURIComponent(props.hitId)}`,
      { before: before.value, after: after.value },
      ac.signal,
    )
      .then((r) => {
        data.value = r;
        error.value = null;
      })
      .catch((e: unknown) => {
        if (!ac.signal.aborted) error.value = describe(e);
      });
    return () => ac.abort();
  }, [props.hitId, before.value, after.value]);
  const d = data.value;
  return (
    <section class="context" data-testid="context">
      <h3>
        Lines around {props.hitId.slice(0, 24)}… {d?.hit.source?.path ? <small>in {d.hit.source.path}</small> : null}
        <a class="close" href="/logs" onClick={link}>
          close
        </a>
      </h3>
      {error.value ? <div class="error">{error.value}</div> : null}
      <button type="button" onClick={() => (before.value += 20)} data-testid="more-before">
        ↑ 20 earlier
      </button>
      <table class="hits">
        <tbody>
          {(d?.lines ?? []).map((h) => (
            <HitRow
              key={h.id}
              hit={h}
              terms={props.terms}
              mark={h.id === d?.hit.id}
              open={open.value === h.id}
              onToggle={() => {
                open.value = open.value === h.id ? null : h.id;
              }}
            />
          ))}
        </tbody>
      </table>
      <button type="button" onClick={() => (after.value += 20)} data-testid="more-after">
        ↓ 20 later
      </button>
    </section>
  );
}

function TraceView(props: { traceId: string }) {
  const data = useSignal<TraceResult | null>(null);
  const error = useSignal<string | null>(null);
  useEffect(() => {
    const ac = new AbortController();
    get<TraceResult>(`/v1/logs/trace/${encodeURIComponent(props.traceId)}`, { since: "24h" }, ac.signal)
      .then((r) => {
        data.value = r;
      })
      .catch((e: unknown) => {
        if (!ac.signal.aborted) error.value = describe(e);
      });
    return () => ac.abort();
  }, [props.traceId]);
  const d = data.value;
  const first = d?.lines[0]?.ts ?? 0;
  const span = Math.max(1, (d?.lines[d.lines.length - 1]?.ts ?? first) - first);
  // Depth from the access lines' caller: a service called by another sits under it.
  const depth = new Map<string, number>();
  for (const l of d?.lines ?? []) {
    if (!depth.has(l.service)) depth.set(l.service, l.caller ? (depth.get(l.caller) ?? 0) + 1 : 0);
  }
  return (
    <section class="trace" data-testid="trace">
      <h3>
        Trace {props.traceId}{" "}
        {d ? <small>{`${d.lines.length} lines, ${d.services.length} services, ${span} ms`}</small> : null}
        <a class="close" href="/logs" onClick={link}>
          close
        </a>
      </h3>
      {error.value ? <div class="error">{error.value}</div> : null}
      <table class="waterfall">
        <tbody>
          {(d?.lines ?? []).map((l) => (
            <tr key={l.id}>
              <td class="time">+{l.ts - first} ms</td>
              <td style={{ paddingLeft: `${(depth.get(l.service) ?? 0) * 16}px` }}>{l.service}</td>
              <td>
                <span class={levelClass(l.level)}>{l.level}</span>
              </td>
              <td class="bar">
                <span style={{ marginLeft: `${((l.ts - first) / span) * 100}%` }} />
              </td>
              <td class="message">{l.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function LiveTail(props: { q: string; terms: string[] }) {
  const lines = useSignal<LogHit[]>([]);
  const paused = useSignal(false);
  const waiting = useSignal<LogHit[]>([]);
  const status = useSignal("connecting…");
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const ac = new AbortController();
    lines.value = [];
    stream(
      "/v1/logs/tail",
      { q: props.q, backlog: 50 },
      (event, data) => {
        if (event !== "line") {
          if (event === "error") status.value = `stopped: ${data}`;
          return;
        }
        status.value = "following";
        const hit = JSON.parse(data) as LogHit;
        if (paused.value) waiting.value = [...waiting.value, hit].slice(-TAIL_KEEP);
        else lines.value = [...lines.value, hit].slice(-TAIL_KEEP);
      },
      ac.signal,
    )
      .then(() => {
        if (!ac.signal.aborted) status.value = "the server ended the tail";
      })
      .catch((e: unknown) => {
        status.value = describe(e);
      });
    status.value = "following";
    return () => ac.abort();
  }, [props.q]);
  useEffect(() => {
    const el = box.current;
    if (el && !paused.value) el.scrollTop = el.scrollHeight;
  }, [lines.value]);
  const resume = () => {
    lines.value = [...lines.value, ...waiting.value].slice(-TAIL_KEEP);
    waiting.value = [];
    paused.value = false;
  };
  return (
    <section class="tail">
      <div class={`tail-status${paused.value ? " paused" : ""}`} data-testid="tail-status">
        {paused.value ? (
          <>
            Paused while you read: {waiting.value.length} new lines.{" "}
            <button type="button" onClick={resume} data-testid="tail-resume">
              resume
            </button>
          </>
        ) : (
          `Live: ${status.value}, ${lines.value.length} lines`
        )}
      </div>
      <div
        class="tail-lines"
        ref={box}
        data-testid="tail-lines"
        onScroll={(e) => {
          const el = e.currentTarget as HTMLDivElement;
          const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 8;
          if (!atBottom && !paused.value) paused.value = true;
          else if (atBottom && paused.value) resume();
        }}
      >
        {lines.value.map((h) => (
          <div key={h.id} class="tail-line" data-testid="tail-line">
            <span class="time">{time(h.ts)}</span> <span class={levelClass(h.level)}>{h.level}</span>{" "}
            <span class="service">{h.service}</span> <Highlight text={h.message} terms={props.terms} />
          </div>
        ))}
      </div>
    </section>
  );
}

export function describe(e: unknown): string {
  if (e instanceof ApiError) return `${e.message}${e.hint ? ` — ${e.hint}` : ""}`;
  return (e as Error)?.message ?? String(e);
}
