// The Hot keys page: the heaviest keys of each dimension (room, streamer, uid, endpoint, ...) as
// `weir run hotkeys` publishes them every second, for each window, with the keys marked hot by hand; a
// key can be marked (before a big event) or unmarked here, as `weir hotkeys mark` does.
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { get, post } from "./api.ts";
import { clock, num, time } from "./format.ts";
import { describe } from "./logs.tsx";
import { navigate, route } from "./router.ts";
import type { HotKeyMark, HotKeysDimension } from "./types.ts";

const POLL_MS = 1000;

function windowName(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`;
}

export function HotKeysPage() {
  const p = route.value.params;
  const dims = useSignal<HotKeysDimension[]>([]);
  const error = useSignal<string | null>(null);
  const loaded = useSignal(false);
  useEffect(() => {
    const ac = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = () => {
      get<{ dimensions: HotKeysDimension[] }>("/v1/hotkeys", {}, ac.signal)
        .then((r) => {
          dims.value = r.dimensions;
          loaded.value = true;
          error.value = null;
        })
        .catch((e) => {
          if (!ac.signal.aborted) error.value = describe(e);
        })
        .finally(() => {
          if (!ac.signal.aborted) timer = setTimeout(poll, POLL_MS);
        });
    };
    poll();
    return () => {
      ac.abort();
      clearTimeout(timer);
    };
  }, []);
  const all = dims.value;
  const dimension = p.get("dimension") ?? all.find((d) => d.dimension === "room")?.dimension ?? all[0]?.dimension;
  const d = all.find((x) => x.dimension === dimension);
  const windows = (d?.lists ?? []).map((l) => l.windowMs);
  const windowMs = Number(p.get("window") ?? "") || windows[windows.length - 1] || 0;
  const list = d?.lists.find((l) => l.windowMs === windowMs) ?? d?.lists[0];
  const marked = new Map((d?.marks ?? []).map((m) => [m.key, m]));
  return (
    <div class="page hotkeys">
      <div class="toolbar">
        <span class="tabs" data-testid="dimensions">
          {all.map((x) => (
            <button
              key={x.dimension}
              type="button"
              class={x.dimension === dimension ? "on" : ""}
              onClick={() => navigate("/hotkeys", { dimension: x.dimension })}
            >
              {x.dimension}
            </button>
          ))}
        </span>
        <span class="tabs">
          {windows.map((w) => (
            <button
              key={w}
              type="button"
              class={list?.windowMs === w ? "on" : ""}
              onClick={() => navigate("/hotkeys", { dimension, window: String(w) })}
            >
              last {windowName(w)}
            </button>
          ))}
        </span>
      </div>
      {error.value ? <div class="error">{error.value}</div> : null}
      {loaded.value && all.length === 0 ? (
        <p class="quiet">nothing published yet: is `weir run hotkeys` running?</p>
      ) : null}
      {list ? (
        <>
          <div class="board-status" data-testid="hotkeys-status">
            <span class={`dot ${Date.now() - list.emittedAt < 10_000 ? "live" : ""}`} /> {list.dimension}, last{" "}
            {windowName(list.windowMs)} ({clock(list.windowStart)} to {clock(list.windowStart + list.windowMs)}):{" "}
            {num(list.total)} events, top {list.keys.length} of k = {list.k}
          </div>
          <table class="hits hot" data-testid="top-list">
            <thead>
              <tr>
                <th>#</th>
                <th>key</th>
                <th>count</th>
                <th>share</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.keys.map((k, i) => (
                <tr key={k.key} data-testid="hot-key" data-key={k.key} data-rank={i + 1}>
                  <td>{i + 1}</td>
                  <td>
                    {k.key} {marked.has(k.key) ? <span class="badge ticket">marked</span> : null}
                  </td>
                  <td>{num(k.count)}</td>
                  <td>{(k.share * 100).toFixed(1)}%</td>
                  <td class="bar">
                    <span style={{ width: `${Math.max(1, Math.round(k.share * 300))}px` }} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
      {dimension ? <Marks dimension={dimension} marks={d?.marks ?? []} /> : null}
    </div>
  );
}

function Marks(props: { dimension: string; marks: HotKeyMark[] }) {
  const key = useSignal("");
  const forText = useSignal("2h");
  const reason = useSignal("");
  const error = useSignal<string | null>(null);
  const busy = useSignal(false);
  const act = async (path: string, body: unknown) => {
    busy.value = true;
    try {
      await post(`/v1/hotkeys/${encodeURIComponent(props.dimension)}/${path}`, body);
      error.value = null;
      return true;
    } catch (e) {
      error.value = describe(e);
      return false;
    } finally {
      busy.value = false;
    }
  };
  return (
    <section class="marks" data-testid="marks">
      <h4>Marked hot by hand ({props.dimension})</h4>
      {props.marks.length === 0 ? <p class="quiet">no marks in force</p> : null}
      <ul>
        {props.marks.map((m) => (
          <li key={m.id} data-testid="mark" data-key={m.key}>
            <strong>{m.key}</strong> until {time(m.until, false)} by {m.markedBy}
            {m.reason ? `: ${m.reason}` : ""}{" "}
            <button type="button" class="link" disabled={busy.value} onClick={() => act("unmark", { key: m.key })}>
              unmark
            </button>
          </li>
        ))}
      </ul>
      <form
        class="mark-form"
        onSubmit={async (e) => {
          e.preventDefault();
          const ok = await act("mark", { key: key.value.trim(), for: forText.value.trim(), reason: reason.value });
          if (ok) key.value = "";
        }}
      >
        <input
          placeholder="key (700018)"
          aria-label="key to mark"
          data-testid="mark-key"
          value={key.value}
          onInput={(e) => (key.value = (e.target as HTMLInputElement).value)}
        />
        <input
          aria-label="for how long"
          size={5}
          value={forText.value}
          onInput={(e) => (forText.value = (e.target as HTMLInputElement).value)}
        />
        <input
          placeholder="reason (S12 final)"
          aria-label="reason"
          value={reason.value}
          onInput={(e) => (reason.value = (e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy.value || key.value.trim() === ""} data-testid="mark-submit">
          mark hot
        </button>
      </form>
      {error.value ? <div class="error">{error.value}</div> : null}
    </section>
  );
}
