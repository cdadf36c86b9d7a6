// The console's OpenAPI 3.1 description: the logs API's document (its routes are mounted unchanged)
// with the console's own routes added: health, alerts, risk and hot keys. `weir console` serves it at
// /openapi.json; docs/console-api.openapi.json is this object written out (`weir console openapi >
// docs/console-api.openapi.json`, then `npx biome format --write` on it), and openapi.test.ts fails when
// the two differ or when a route the console answers is missing here.
import { OPENAPI } from "../../pipelines/logs/api/openapi.ts";
import { CONSOLE_LIMITS } from "./console-server.ts";
import { RISK_LIMITS } from "./risk.ts";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const param = (name: string) => ({ $ref: `#/components/parameters/${name}` });
const json = (schema: object) => ({ "application/json": { schema } });
const err = (description: string) => ({ description, content: json(ref("Error")) });
const obj = (properties: Record<string, object>, required: string[] = Object.keys(properties)) => ({
  type: "object",
  properties,
  required,
});
const str = { type: "string" };
const int = { type: "integer" };
const num = { type: "number" };
const bool = { type: "boolean" };
const arr = (items: object) => ({ type: "array", items });
const anyObject = { type: "object", additionalProperties: true };

const ERRORS = {
  "400": err(
    "A bad request, or one over a limit (code limit_exceeded, with `limit`, `value` and `max`; docs/console.md)",
  ),
  "401": err("No token, or one the server does not know"),
  "403": err(
    "The token may not read the service the request names; for risk and hot keys, a token limited to services",
  ),
  "429": {
    description: "The token is over its rate, its requests in flight or its open streams (the logs API's limits)",
    headers: { "Retry-After": { schema: int, description: "Seconds to wait before asking again" } },
    content: json(ref("Error")),
  },
  "503": err("ClickHouse or Kafka did not answer"),
};
const window = [param("since"), param("from"), param("to")];
const pathParam = (name: string, description: string, maxLength = 512) => ({
  name,
  in: "path",
  required: true,
  description,
  schema: { type: "string", minLength: 1, maxLength },
});
const get = (operationId: string, summary: string, ok: object, parameters: object[] = []) => ({
  get: {
    operationId,
    summary,
    ...(parameters.length > 0 ? { parameters } : {}),
    responses: { "200": { description: summary, content: json(ok) }, ...ERRORS },
  },
});
const stream = (operationId: string, summary: string, event: string, schema: string) => ({
  get: {
    operationId,
    summary,
    responses: {
      "200": {
        description: `Server-Sent Events: \`event: ${event}\` with a ${schema} as \`data\`; \`: keep-alive\` every 15 s`,
        content: { "text/event-stream": { schema: str } },
      },
      ...ERRORS,
    },
  },
});
const post = (operationId: string, summary: string, body: object, ok: object) => ({
  post: {
    operationId,
    summary,
    requestBody: { required: false, content: json(body) },
    responses: { "200": { description: summary, content: json(ok) }, ...ERRORS },
  },
});
const alertId = pathParam("id", "The alert's id, percent-encoded (it holds `/` and spaces)");
const dimension = pathParam("dimension", "A dimension: letters, digits, `_`, `.`, `-`", 64);
const note = obj({ note: { type: "string", maxLength: CONSOLE_LIMITS.maxNoteChars } }, []);

export const CONSOLE_OPENAPI = {
  ...OPENAPI,
  info: {
    ...OPENAPI.info,
    title: "weir console API",
    summary: "The logs API, and the console's health, alerts, risk and hot keys routes (docs/console.md).",
    description:
      "`weir console` answers the logs API's routes unchanged and the routes behind the console's pages, with the " +
      "same bearer tokens and per-token limits. A token limited to some services sees only their logs, health " +
      "and alerts; risk signals and hot keys belong to no service, and such a token is refused them (403).",
  },
  paths: {
    ...OPENAPI.paths,
    "/v1/me": get("me", "The token's name and the services it may read", obj({ token: str, scope: {} })),
    "/v1/health/tree": get(
      "healthTree",
      "The availability tree (app > system > service > endpoint) over the window",
      ref("HealthTree"),
      window,
    ),
    "/v1/health/series": get(
      "healthSeries",
      "A service's (or endpoint's) QPS, errors and p99 per bucket, with its alert episodes",
      anyObject,
      [
        { name: "service", in: "query", required: true, schema: str },
        { name: "endpoint", in: "query", schema: str },
        ...window,
        {
          name: "points",
          in: "query",
          schema: { type: "integer", minimum: 10, maximum: CONSOLE_LIMITS.maxPoints, default: 240 },
        },
      ],
    ),
    "/v1/health/report": get("healthReport", "The daily report (weir health report)", anyObject, [
      { name: "day", in: "query", description: "YYYY-MM-DD, UTC (default today)", schema: str },
    ]),
    "/v1/alerts": get(
      "alerts",
      "The scenes with the people on duty, and the alerts of the last 24 h",
      obj({ scenes: arr(anyObject), alerts: arr(ref("BoardAlert")) }),
    ),
    "/v1/alerts/report": get(
      "alertReport",
      "The report after an event: totals, by scene, by severity, each alert's times",
      anyObject,
      window,
    ),
    "/v1/alerts/stream": stream("alertStream", "Alerts as they fire, resolve or are acted on", "alert", "BoardAlert"),
    "/v1/alerts/{id}": { get: { ...get("alert", "One alert", ref("BoardAlert")).get, parameters: [alertId] } },
    "/v1/alerts/{id}/ack": {
      post: {
        ...post("ackAlert", "Acknowledge, with an optional note", note, ref("BoardAlert")).post,
        parameters: [alertId],
      },
    },
    "/v1/alerts/{id}/resolve": {
      post: {
        ...post("resolveAlert", "Resolve by hand, with an optional note", note, ref("BoardAlert")).post,
        parameters: [alertId],
      },
    },
    "/v1/alerts/{id}/note": {
      post: { ...post("noteAlert", "Add a note to the timeline", note, ref("BoardAlert")).post, parameters: [alertId] },
    },
    "/v1/risk/signals": get(
      "riskSignals",
      "The newest risk signals of the window, newest first",
      obj({ from: int, to: int, signals: arr(ref("RiskSignal")) }),
      [
        ...window,
        { name: "rule", in: "query", schema: str },
        { name: "category", in: "query", schema: str },
        { name: "shadow", in: "query", schema: { type: "string", enum: ["true", "false"] } },
        {
          name: "limit",
          in: "query",
          schema: { type: "integer", minimum: 1, maximum: RISK_LIMITS.maxSignals, default: 200 },
        },
      ],
    ),
    "/v1/risk/stream": stream(
      "riskStream",
      "Signals as the fraud pipeline writes them to signals.risk",
      "signal",
      "RiskSignal",
    ),
    "/v1/risk/recent": get(
      "riskRecent",
      `The last ${RISK_LIMITS.recent} signals the stream saw, newest first`,
      obj({ signals: arr(ref("RiskSignal")) }),
    ),
    "/v1/risk/signals/{id}": get(
      "riskSignal",
      "One signal with its rule and weir rules explain's reading",
      obj({
        signal: ref("RiskSignal"),
        category: str,
        rule: { oneOf: [ref("Rule"), { type: "null" }] },
        explain: arr(str),
      }),
      [
        pathParam("id", "The signal's id", 300),
        { ...param("since"), description: "How far back to look (default 30d)" },
      ],
    ),
    "/v1/risk/rules": get(
      "riskRules",
      "Per rule: signals per bucket, live and shadow; shadow rules against the rules they replace",
      obj({
        from: int,
        to: int,
        stepMs: int,
        buckets: arr(int),
        rules: arr(
          obj({
            rule: str,
            category: str,
            live: int,
            shadow: int,
            liveEntities: int,
            shadowEntities: int,
            counts: arr(int),
          }),
        ),
        catalog: arr(ref("Rule")),
        rulesProblems: int,
        shadows: arr(obj({ rule: str, replaces: str, both: int, onlyNew: int, onlyOld: int })),
        shadowsTruncated: bool,
        backtest: obj({ stored: bool, note: str }),
      }),
      [
        ...window,
        { name: "points", in: "query", schema: { type: "integer", minimum: 10, maximum: 600, default: 120 } },
      ],
    ),
    "/v1/hotkeys": get(
      "hotKeys",
      "Each dimension's latest top-K list per window, and its marks in force",
      obj({ dimensions: arr(ref("HotKeysDimension")) }),
    ),
    "/v1/hotkeys/{dimension}": {
      get: {
        ...get("hotKeysDimension", "One dimension's lists and marks", ref("HotKeysDimension")).get,
        parameters: [dimension],
      },
    },
    "/v1/hotkeys/{dimension}/mark": {
      post: {
        ...post(
          "markHotKey",
          "Mark a key hot by hand (a HotKeyMark in hotkeys.marks, marked by console:<token>)",
          obj(
            {
              key: { type: "string", minLength: 1, maxLength: 256 },
              for: { type: "string", description: "A duration up to 30d (default 1h)" },
              reason: { type: "string", maxLength: 200 },
            },
            ["key"],
          ),
          ref("HotKeyMark"),
        ).post,
        parameters: [dimension],
      },
    },
    "/v1/hotkeys/{dimension}/unmark": {
      post: {
        ...post(
          "unmarkHotKey",
          "Remove a key's mark",
          obj({ key: { type: "string", minLength: 1, maxLength: 256 } }),
          obj({ dimension: str, key: str, unmarked: bool }),
        ).post,
        parameters: [dimension],
      },
    },
  },
  components: {
    ...OPENAPI.components,
    schemas: {
      ...OPENAPI.components.schemas,
      HealthTree: obj({ from: int, to: int, periodMs: int, resolutionMs: int, roots: arr(anyObject) }),
      BoardAlert: {
        type: "object",
        description: "A health alert on the board: the HealthAlert episode with its scene, status and timeline",
        properties: {
          id: str,
          rule: str,
          severity: str,
          service: str,
          target: str,
          scene: str,
          status: { type: "string", enum: ["firing", "acknowledged", "resolved"] },
          timeline: arr(anyObject),
        },
        required: ["id", "rule", "severity", "service", "scene", "status", "timeline"],
        additionalProperties: true,
      },
      RiskSignal: obj({
        id: str,
        ts: int,
        ruleId: str,
        ruleVersion: int,
        severity: { type: "string", enum: ["LOW", "MEDIUM", "HIGH", "CRITICAL"] },
        score: num,
        action: { type: "string", enum: ["ALLOW", "REVIEW", "CHALLENGE", "LIMIT", "BLOCK"] },
        shadow: bool,
        entity: obj({ type: str, id: str }),
        evidence: obj({
          matched: { type: "object", additionalProperties: str },
          counts: { type: "object", additionalProperties: int },
          windowStart: { type: ["integer", "null"] },
          windowEnd: { type: ["integer", "null"] },
          sourceEventIds: arr(str),
          explanation: str,
        }),
        category: str,
      }),
      Rule: obj(
        {
          id: str,
          version: int,
          category: str,
          status: str,
          severity: str,
          action: str,
          owner: str,
          description: str,
          replaces: str,
          source: str,
        },
        ["id", "version", "category", "status", "severity", "action", "owner", "source"],
      ),
      HotKeys: obj({
        windowStart: int,
        windowMs: int,
        dimension: str,
        k: int,
        total: int,
        keys: arr(obj({ key: str, count: int, share: num })),
        emittedAt: int,
      }),
      HotKeyMark: obj({ id: str, dimension: str, key: str, until: int, reason: str, markedBy: str, markedAt: int }),
      HotKeysDimension: obj({ dimension: str, lists: arr(ref("HotKeys")), marks: arr(ref("HotKeyMark")) }),
    },
  },
};
