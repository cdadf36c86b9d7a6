// The page's address as a signal: path and query, changed with navigate() (history.pushState) and by the
// browser's back and forward buttons. Every view is a URL, so any state can be linked to.
import { signal } from "@preact/signals";

export interface Route {
  path: string;
  params: URLSearchParams;
}

function current(): Route {
  return { path: location.pathname, params: new URLSearchParams(location.search) };
}

export const route = signal<Route>(current());

addEventListener("popstate", () => {
  route.value = current();
});

export function navigate(path: string, params: Record<string, string | undefined | null> = {}): void {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  history.pushState(null, "", s ? `${path}?${s}` : path);
  route.value = current();
}
