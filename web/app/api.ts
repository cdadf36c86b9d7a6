// The console's calls to weir's API: JSON over fetch with the bearer token, and Server-Sent Events read
// from a fetch body (EventSource cannot send an Authorization header, and a token in a URL would end
// up in logs). Errors are the API's own: status, code, message and hint.
import { signal } from "@preact/signals";

const TOKEN_KEY = "weir.token";

/** The bearer token: from the page's #token= fragment once (npm start prints such a link), then the tab's storage. */
export const token = signal<string | null>(readToken());

function readToken(): string | null {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m?.[1]) {
    const t = decodeURIComponent(m[1]);
    sessionStorage.setItem(TOKEN_KEY, t);
    // The fragment never reaches a server, and is taken off the address bar at once.
    history.replaceState(null, "", location.pathname + location.search);
    return t;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t: string | null): void {
  if (t === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, t);
  token.value = t;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${token.value ?? ""}`, ...extra };
}

async function failure(res: Response): Promise<ApiError> {
  let body: { error?: { code?: string; message?: string; hint?: string } } = {};
  try {
    body = await res.json();
  } catch {
    // not JSON: the status says enough
  }
  if (res.status === 401) setToken(null);
  return new ApiError(res.status, body.error?.code ?? "error", body.error?.message ?? res.statusText, body.error?.hint);
}

export type Params = Record<string, string | number | undefined | null | readonly string[]>;

export function query(params: Params): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) for (const x of v) q.append(k, x);
    else q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export async function get<T>(path: string, params: Params = {}, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path + query(params), { headers: headers(), signal: signal ?? null });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export async function post<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(path, {
    method: "POST",
    headers: headers({ "content-type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

/**
 * Follows an event stream until `signal` aborts; calls `onEvent` with each event's name and data.
 * Resolves when the stream ends, rejects with the API's error when it is refused.
 */
export async function stream(
  path: string,
  params: Params,
  onEvent: (event: string, data: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const res = await fetch(path + query(params), { headers: headers({ accept: "text/event-stream" }), signal });
  if (!res.ok || !res.body) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
        }
        if (data.length > 0) onEvent(event, data.join("\n"));
        end = buffer.indexOf("\n\n");
      }
    }
  } catch (e) {
    if (signal.aborted) return;
    throw e;
  }
}
