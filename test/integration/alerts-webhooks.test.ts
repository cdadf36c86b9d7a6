// The webhook notifier against a real HTTP receiver on this machine (node:http on a port of its own),
// with the real fetch: a receiver that answers 503 with Retry-After, then one that does not answer in
// time, then 200, gets the same Alertmanager body three times with the same Idempotency-Key, after a
// pause of at least Retry-After; the same record again is not sent; its resolution is; a 400 is not
// retried; an unreachable receiver runs out of tries as failed.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { Scenes } from "../../pipelines/alerts/scenes.ts";
import { type Receiver, WebhookNotifier } from "../../pipelines/alerts/webhooks.ts";
import type { HealthAlert } from "../../pipelines/health/alerts.ts";

const scenes = Scenes.parse(`
scenes:
  gifting: { name: Gifting, services: [gift-svc], runbook: "https://rb.example/gifting", onDuty: [ann] }
people:
  ann: { name: Ann, role: primary, contact: "im:@ann" }
`);

const alert = (state: "FIRING" | "RESOLVED"): HealthAlert => ({
  id: `availability-1m-5s/service/gift-svc/${new Date(Date.now() - 60_000).toISOString()}`,
  ts: Date.now() - 60_000,
  rule: "availability-1m-5s",
  kind: "BURN_RATE",
  state,
  severity: "PAGE",
  level: "SERVICE",
  app: "live",
  system: "gifting",
  service: "gift-svc",
  endpoint: "",
  observed: 12.5,
  threshold: 10,
  objective: 0.995,
  longWindowMs: 60_000,
  shortWindowMs: 5000,
  message: "gift-svc: error budget burning",
  runbook: "https://rb.example/gift-svc",
  startedAt: Date.now() - 60_000,
  resolvedAt: state === "RESOLVED" ? Date.now() : null,
});

interface Received {
  at: number;
  path: string;
  key: string | null;
  type: string | null;
  body: Record<string, unknown>;
}

const received: Received[] = [];
/** What the receiver does with each request, in turn; then 200. */
const plan: Array<(res: ServerResponse) => void> = [];
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    received.push({
      at: Date.now(),
      path: req.url ?? "",
      key: (req.headers["idempotency-key"] as string | undefined) ?? null,
      type: req.headers["content-type"] ?? null,
      body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>,
    });
    const next = plan.shift();
    if (next) next(res);
    else res.writeHead(200).end("ok");
  });
});
let base = "";

before(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

function receiver(path: string, format: "alertmanager" | "generic", retries = 3, timeout = 1000): Receiver {
  return { name: path.slice(1), format, target: `${base}${path}`, timeout, retries };
}

test("webhooks to a real receiver: Retry-After and a timeout retried with the same key, one delivery per state, 4xx not retried", async () => {
  received.length = 0;
  plan.push(
    (res) => res.writeHead(503, { "retry-after": "1" }).end("busy"),
    // No answer within the receiver's timeout: the try is abandoned and retried.
    (res) => setTimeout(() => !res.destroyed && res.writeHead(200).end("late"), 3000),
  );
  const n = new WebhookNotifier({
    scenes,
    receivers: [receiver("/phone", "alertmanager")],
    consoleUrl: "http://console.example",
    backoff: { initialMs: 50, maxMs: 2000 },
  });
  const firing = alert("FIRING");
  const out = await n.notify(firing);
  assert.deepEqual(
    out.map((o) => [o.result, o.attempts]),
    [["sent", 3]],
  );
  assert.equal(received.length, 3);
  assert.ok(received.every((r) => r.path === "/phone" && /application\/json/.test(r.type ?? "")));
  assert.deepEqual(
    new Set(received.map((r) => r.key)),
    new Set([`phone/${firing.id}/FIRING`]),
    "one key for every try",
  );
  assert.ok((received[1] as Received).at - (received[0] as Received).at >= 1000, "Retry-After: 1 s honoured");
  const body = (received[2] as Received).body;
  assert.equal(body.version, "4");
  assert.equal(body.status, "firing");
  const alerts = body.alerts as Array<{ labels: Record<string, string>; annotations: Record<string, string> }>;
  assert.equal(alerts[0]?.labels.alertname, "availability-1m-5s");
  assert.equal(alerts[0]?.labels.scene, "gifting");
  assert.equal(alerts[0]?.annotations.runbook_url, "https://rb.example/gift-svc");

  // A replay of the same record: nothing sent. Its resolution: sent once.
  assert.deepEqual(
    (await n.notify(firing)).map((o) => o.result),
    ["duplicate"],
  );
  assert.deepEqual(
    (await n.notify(alert("RESOLVED"))).map((o) => o.result),
    ["sent"],
  );
  assert.equal(received.length, 4);
  assert.equal((received[3] as Received).body.status, "resolved");

  // A 400 is the receiver refusing the body: not retried.
  plan.push((res) => res.writeHead(400).end("bad"));
  const generic = new WebhookNotifier({
    scenes,
    receivers: [receiver("/chat", "generic")],
    backoff: { initialMs: 50, maxMs: 200 },
  });
  const refused = await generic.notify(alert("FIRING"));
  assert.deepEqual(
    refused.map((o) => [o.result, o.attempts]),
    [["failed", 1]],
  );
  assert.equal((received[4] as Received).body.version, 1);
});

test("webhooks to a receiver that is not there: the tries run out as failed", async () => {
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const n = new WebhookNotifier({
    scenes,
    receivers: [{ name: "gone", format: "generic", target: `http://127.0.0.1:${port}/hook`, timeout: 500, retries: 2 }],
    backoff: { initialMs: 20, maxMs: 100 },
  });
  const out = await n.notify(alert("FIRING"));
  assert.deepEqual(
    out.map((o) => [o.result, o.attempts]),
    [["failed", 3]],
  );
});
