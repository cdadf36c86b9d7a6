import assert from "node:assert/strict";
import { test } from "node:test";
import type { HealthAlert } from "../health/alerts.ts";
import { Scenes } from "./scenes.ts";
import { alertmanagerBody, genericBody, type Receiver, resolveReceivers, WebhookNotifier } from "./webhooks.ts";

const scenes = Scenes.parse(`
scenes:
  gifting: { name: Gifting, services: [gift-svc], runbook: "https://rb.example/gifting", onDuty: [ann] }
people:
  ann: { name: Ann, role: primary, contact: "im:@ann" }
receivers:
  - { name: phone, format: alertmanager, urlEnv: PHONE_URL, severities: [PAGE] }
  - { name: chat, format: generic, url: "http://127.0.0.1:9/hook", scenes: [other] }
`);

const alert = (state: "FIRING" | "RESOLVED", service = "gift-svc"): HealthAlert => ({
  id: `availability-1m-5s/service/${service}/2026-11-21T09:50:51.000Z`,
  ts: 1_795_000_000_000,
  rule: "availability-1m-5s",
  kind: "BURN_RATE",
  state,
  severity: "PAGE",
  level: "SERVICE",
  app: "live",
  system: "gifting",
  service,
  endpoint: "",
  observed: 12.5,
  threshold: 10,
  objective: 0.995,
  longWindowMs: 60_000,
  shortWindowMs: 5000,
  message: `${service}: error budget burning`,
  runbook: "https://rb.example/gift-svc",
  startedAt: 1_795_000_000_000,
  resolvedAt: state === "RESOLVED" ? 1_795_000_060_000 : null,
});

function receiver(format: "generic" | "alertmanager", retries = 3): Receiver {
  return { name: "r", format, target: "http://127.0.0.1:9/hook", timeout: 1000, retries };
}

test("receivers: a URL from the environment, or skipped with the variable's name", () => {
  const none = resolveReceivers(scenes, {});
  assert.deepEqual(
    none.receivers.map((r) => r.name),
    ["chat"],
  );
  assert.deepEqual(none.skipped, [{ name: "phone", reason: "PHONE_URL is not set" }]);
  assert.equal(resolveReceivers(scenes, { PHONE_URL: "https://pager.example/x" }).receivers.length, 2);
});

test("Alertmanager's webhook body: version 4, labels, annotations with the runbook and who is on duty, zero endsAt while firing", () => {
  const body = alertmanagerBody(alert("FIRING"), scenes.view("gifting"), "phone", "http://console") as Record<
    string,
    unknown
  >;
  assert.equal(body.version, "4");
  assert.equal(body.status, "firing");
  const [a] = body.alerts as Array<Record<string, Record<string, string> | string>>;
  assert.deepEqual((a as Record<string, unknown>).labels, {
    alertname: "availability-1m-5s",
    severity: "page",
    scene: "gifting",
    level: "service",
    app: "live",
    system: "gifting",
    service: "gift-svc",
  });
  assert.equal(((a as Record<string, unknown>).annotations as Record<string, string>).on_duty, "Ann");
  assert.equal(
    ((a as Record<string, unknown>).annotations as Record<string, string>).runbook_url,
    "https://rb.example/gift-svc",
  );
  assert.equal((a as Record<string, unknown>).endsAt, "0001-01-01T00:00:00Z");
  const resolved = alertmanagerBody(alert("RESOLVED"), scenes.view("gifting"), "phone") as {
    status: string;
    alerts: Array<{ endsAt: string }>;
  };
  assert.equal(resolved.status, "resolved");
  assert.equal(resolved.alerts[0]?.endsAt, new Date(1_795_000_060_000).toISOString());
});

test("the generic body: the alert, its scene with the people on duty, a dedupKey per state", () => {
  const body = genericBody(alert("FIRING"), scenes.view("gifting")) as Record<string, unknown>;
  assert.equal(body.dedupKey, `${alert("FIRING").id}/FIRING`);
  assert.deepEqual((body.scene as { onDuty: unknown }).onDuty, [
    { id: "ann", name: "Ann", role: "primary", contact: "im:@ann" },
  ]);
});

test("notify: retried after 5xx and timeouts with backoff, Retry-After honoured, sent once per (receiver, alert, state)", async () => {
  const calls: Array<{ body: string; key: string | null }> = [];
  const answers = [503, 429, 200];
  const slept: number[] = [];
  const fetch = (async (_url: string, init: RequestInit) => {
    calls.push({ body: String(init.body), key: new Headers(init.headers).get("idempotency-key") });
    const status = answers.shift() ?? 200;
    return new Response("", { status, headers: status === 429 ? { "retry-after": "2" } : {} });
  }) as typeof globalThis.fetch;
  const n = new WebhookNotifier({
    scenes,
    receivers: [{ ...receiver("generic"), name: "chat" }],
    fetch,
    sleep: async (ms) => {
      slept.push(ms);
    },
    backoff: { initialMs: 100, maxMs: 10_000 },
  });
  const out = await n.notify(alert("FIRING"));
  assert.deepEqual(
    out.map((o) => [o.result, o.attempts]),
    [["sent", 3]],
  );
  assert.equal(calls.length, 3);
  assert.ok(slept[1] !== undefined && slept[1] >= 2000, `Retry-After 2 s: slept ${slept.join(", ")}`);
  assert.equal(calls[0]?.key, `chat/${alert("FIRING").id}/FIRING`);
  // The same record again (a replay): not sent.
  assert.deepEqual(
    (await n.notify(alert("FIRING"))).map((o) => o.result),
    ["duplicate"],
  );
  // Its resolution is another message.
  assert.deepEqual(
    (await n.notify(alert("RESOLVED"))).map((o) => o.result),
    ["sent"],
  );
  assert.equal(calls.length, 4);
});

test("notify: a 4xx other than 408 and 429 is not retried; retries run out as failed, and a remembered key is not sent", async () => {
  let calls = 0;
  const status = { value: 400 };
  const fetch = (async () => {
    calls++;
    return new Response("", { status: status.value });
  }) as unknown as typeof globalThis.fetch;
  const n = new WebhookNotifier({ scenes, receivers: [receiver("alertmanager", 2)], fetch, sleep: async () => {} });
  assert.deepEqual(
    (await n.notify(alert("FIRING"))).map((o) => [o.result, o.attempts, o.detail]),
    [["failed", 1, "answered 400"]],
  );
  status.value = 502;
  calls = 0;
  assert.deepEqual(
    (await n.notify(alert("FIRING"))).map((o) => [o.result, o.attempts]),
    [["failed", 3]],
  );
  assert.equal(calls, 3);
  n.remember(`r/${alert("RESOLVED").id}/RESOLVED`);
  assert.deepEqual(
    (await n.notify(alert("RESOLVED"))).map((o) => o.result),
    ["duplicate"],
  );
});

test("receivers are chosen by the alert's scene and severity", () => {
  const n = new WebhookNotifier({
    scenes,
    receivers: resolveReceivers(scenes, { PHONE_URL: "https://pager.example/x" }).receivers,
  });
  assert.deepEqual(
    n.receiversFor(alert("FIRING")).map((r) => r.name),
    ["phone"],
  );
  // A service in no scene is in `other`: the phone (every scene) and the chat (other only).
  assert.deepEqual(
    n.receiversFor(alert("FIRING", "unknown-svc")).map((r) => r.name),
    ["phone", "chat"],
  );
});
