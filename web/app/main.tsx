// The console's shell: the token (from the link npm start prints, or typed once per tab), the pages'
// navigation, and the page the address names. Each page is a URL, so every view can be linked to.
import { useSignal } from "@preact/signals";
import { render } from "preact";
import { useEffect } from "preact/hooks";
import { AlertsPage } from "./alerts.tsx";
import { get, setToken, token } from "./api.ts";
import { HealthPage } from "./health.tsx";
import { HotKeysPage } from "./hotkeys.tsx";
import { LogsPage } from "./logs.tsx";
import { RiskPage } from "./risk.tsx";
import { navigate, route } from "./router.ts";
import "./style.css";

const PAGES = [
  { path: "/logs", title: "Logs", view: LogsPage },
  { path: "/health", title: "Health", view: HealthPage },
  { path: "/alerts", title: "Alerts", view: AlertsPage },
  { path: "/risk", title: "Risk", view: RiskPage },
  { path: "/hotkeys", title: "Hot keys", view: HotKeysPage },
] as const;

function Login() {
  const draft = useSignal("");
  return (
    <form
      class="login"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(draft.value.trim());
      }}
    >
      <h1>weir console</h1>
      <p>Paste your API token (`weir logs token` makes one; `npm start` prints one for the demo).</p>
      <input
        type="password"
        aria-label="token"
        value={draft.value}
        onInput={(e) => {
          draft.value = (e.target as HTMLInputElement).value;
        }}
      />
      <button type="submit">Open</button>
    </form>
  );
}

function App() {
  const me = useSignal<{ token: string; scope: "all" | string[] } | null>(null);
  useEffect(() => {
    if (!token.value) return;
    get<{ token: string; scope: "all" | string[] }>("/v1/me")
      .then((m) => {
        me.value = m;
      })
      .catch(() => {
        me.value = null;
      });
  }, [token.value]);
  if (!token.value) return <Login />;
  const path = route.value.path === "/" ? "/logs" : route.value.path;
  const page = PAGES.find((p) => path.startsWith(p.path)) ?? PAGES[0];
  const View = page.view;
  return (
    <>
      <nav class="top">
        <span class="brand">weir</span>
        {PAGES.map((p) => (
          <a
            key={p.path}
            href={p.path}
            class={p === page ? "on" : ""}
            onClick={(e) => {
              e.preventDefault();
              navigate(p.path);
            }}
          >
            {p.title}
          </a>
        ))}
        <span class="me" data-testid="me">
          {me.value
            ? `${me.value.token} · ${me.value.scope === "all" ? "all services" : me.value.scope.join(", ")}`
            : ""}
          <button type="button" class="link" onClick={() => setToken(null)}>
            sign out
          </button>
        </span>
      </nav>
      <main data-ready="1">
        <View />
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
