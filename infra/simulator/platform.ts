// The simulated live-streaming platform: its systems, services, endpoints (with latency and error
// profiles and internal calls), and how each service writes its logs. Services differ the way real
// ones do: Node services log with pino, Java ones with logback's JSON encoder or a plain log4j
// pattern with multi-line stack traces, Go ones in weir's JSON lines.

export const APP = "live";

/** How a stream's lines are written (docs/simulator.md shows each). */
export type LineFormat =
  /** JSON lines whose field names are the Avro schema's (AppLog, AccessLog, ...): ts in epoch ms. */
  | "json"
  /** pino's JSON: numeric level, time in epoch ms, msg, err {type, message, stack}. */
  | "pino"
  /** logstash-logback-encoder's JSON: @timestamp ISO-8601 with +08:00, level, logger_name, stack_trace. */
  | "logback"
  /** A log4j pattern in local time (Asia/Shanghai, no offset), stack traces on the following lines. */
  | "text";

export type StreamKind = "access" | "app" | "coin" | "behavior" | "device";

export interface ServiceDef {
  name: string;
  system: string;
  appLog: LineFormat;
  /** Pods serving it; hosts are named <service>-<hash>-<n>. */
  hosts: number;
  /** Business events this service writes, besides its access and app logs. */
  events: StreamKind[];
}

export interface EndpointDef {
  service: string;
  path: string;
  method: string;
  /** Median latency of the service's own work, in ms. */
  medianMs: number;
  /** Shape of the log-normal latency. */
  sigma: number;
  /** Baseline share of 5xx answers. */
  errorRate: number;
  /** Baseline share of 4xx answers. */
  clientErrorRate: number;
  /** Typical response size in bytes. */
  bytesOut: number;
  /** An internal call made while serving, and how long the caller waits for it. */
  calls?: { service: string; path: string; timeoutMs: number };
}

export const SERVICES: ServiceDef[] = [
  { name: "user-svc", system: "account", appLog: "logback", hosts: 3, events: ["behavior"] },
  { name: "room-svc", system: "room", appLog: "pino", hosts: 4, events: ["behavior"] },
  { name: "im-svc", system: "room", appLog: "json", hosts: 3, events: ["behavior"] },
  { name: "social-svc", system: "social", appLog: "pino", hosts: 2, events: ["behavior"] },
  { name: "gift-svc", system: "gifting", appLog: "pino", hosts: 3, events: ["coin"] },
  { name: "pay-svc", system: "gifting", appLog: "text", hosts: 2, events: ["coin"] },
  { name: "device-svc", system: "device", appLog: "json", hosts: 2, events: ["device"] },
];

export const ENDPOINTS: EndpointDef[] = [
  {
    service: "user-svc",
    path: "/user/register",
    method: "POST",
    medianMs: 60,
    sigma: 0.5,
    errorRate: 0.002,
    clientErrorRate: 0.03,
    bytesOut: 310,
  },
  {
    service: "user-svc",
    path: "/user/login",
    method: "POST",
    medianMs: 35,
    sigma: 0.5,
    errorRate: 0.001,
    clientErrorRate: 0.04,
    bytesOut: 420,
  },
  {
    service: "user-svc",
    path: "/user/profile",
    method: "RPC",
    medianMs: 4,
    sigma: 0.6,
    errorRate: 0.0005,
    clientErrorRate: 0,
    bytesOut: 640,
  },
  {
    service: "room-svc",
    path: "/room/{id}/enter",
    method: "POST",
    medianMs: 18,
    sigma: 0.6,
    errorRate: 0.001,
    clientErrorRate: 0.005,
    bytesOut: 1800,
    calls: { service: "user-svc", path: "/user/profile", timeoutMs: 300 },
  },
  {
    service: "room-svc",
    path: "/room/{id}/leave",
    method: "POST",
    medianMs: 8,
    sigma: 0.5,
    errorRate: 0.0005,
    clientErrorRate: 0.002,
    bytesOut: 60,
  },
  {
    service: "room-svc",
    path: "/room/{id}/info",
    method: "GET",
    medianMs: 10,
    sigma: 0.6,
    errorRate: 0.0005,
    clientErrorRate: 0.001,
    bytesOut: 2400,
  },
  {
    service: "room-svc",
    path: "/room/list",
    method: "GET",
    medianMs: 28,
    sigma: 0.7,
    errorRate: 0.001,
    clientErrorRate: 0.001,
    bytesOut: 9600,
  },
  {
    service: "im-svc",
    path: "/im/send",
    method: "POST",
    medianMs: 12,
    sigma: 0.6,
    errorRate: 0.001,
    clientErrorRate: 0.01,
    bytesOut: 90,
  },
  {
    service: "social-svc",
    path: "/follow",
    method: "POST",
    medianMs: 15,
    sigma: 0.5,
    errorRate: 0.001,
    clientErrorRate: 0.01,
    bytesOut: 80,
  },
  {
    service: "social-svc",
    path: "/unfollow",
    method: "POST",
    medianMs: 12,
    sigma: 0.5,
    errorRate: 0.001,
    clientErrorRate: 0.01,
    bytesOut: 80,
  },
  {
    service: "social-svc",
    path: "/like",
    method: "POST",
    medianMs: 5,
    sigma: 0.5,
    errorRate: 0.0005,
    clientErrorRate: 0.001,
    bytesOut: 40,
  },
  {
    service: "social-svc",
    path: "/share",
    method: "POST",
    medianMs: 22,
    sigma: 0.6,
    errorRate: 0.001,
    clientErrorRate: 0.005,
    bytesOut: 120,
  },
  {
    service: "gift-svc",
    path: "/gift/send",
    method: "POST",
    medianMs: 14,
    sigma: 0.5,
    errorRate: 0.001,
    clientErrorRate: 0.01,
    bytesOut: 150,
    calls: { service: "pay-svc", path: "/wallet/debit", timeoutMs: 800 },
  },
  {
    service: "gift-svc",
    path: "/gift/list",
    method: "GET",
    medianMs: 9,
    sigma: 0.5,
    errorRate: 0.0005,
    clientErrorRate: 0.001,
    bytesOut: 5200,
  },
  {
    service: "pay-svc",
    path: "/pay/recharge",
    method: "POST",
    medianMs: 180,
    sigma: 0.6,
    errorRate: 0.003,
    clientErrorRate: 0.05,
    bytesOut: 260,
  },
  {
    service: "pay-svc",
    path: "/pay/withdraw",
    method: "POST",
    medianMs: 120,
    sigma: 0.5,
    errorRate: 0.002,
    clientErrorRate: 0.03,
    bytesOut: 200,
  },
  {
    service: "pay-svc",
    path: "/pay/notify",
    method: "POST",
    medianMs: 25,
    sigma: 0.5,
    errorRate: 0.001,
    clientErrorRate: 0,
    bytesOut: 20,
  },
  {
    service: "pay-svc",
    path: "/wallet/debit",
    method: "RPC",
    medianMs: 9,
    sigma: 0.5,
    errorRate: 0.0008,
    clientErrorRate: 0,
    bytesOut: 70,
  },
  {
    service: "pay-svc",
    path: "/wallet/balance",
    method: "GET",
    medianMs: 5,
    sigma: 0.5,
    errorRate: 0.0005,
    clientErrorRate: 0.001,
    bytesOut: 60,
  },
  {
    service: "device-svc",
    path: "/sdk/report",
    method: "POST",
    medianMs: 6,
    sigma: 0.5,
    errorRate: 0.0005,
    clientErrorRate: 0.002,
    bytesOut: 30,
  },
];

/** Requests give up after this long: the gateway answers 504. */
export const GATEWAY_TIMEOUT_MS = 10_000;

export function service(name: string): ServiceDef {
  const s = SERVICES.find((x) => x.name === name);
  if (!s) throw new Error(`no simulated service ${name}`);
  return s;
}

export function endpointIndex(serviceName: string, path: string): number {
  const i = ENDPOINTS.findIndex((e) => e.service === serviceName && e.path === path);
  if (i < 0) throw new Error(`no simulated endpoint ${serviceName} ${path}`);
  return i;
}

/** The stream a service writes events of one kind to: <service>/<kind>.log under the output folder. */
export function streamName(serviceName: string, kind: StreamKind): string {
  return `${serviceName}/${kind}`;
}

/** Every stream the platform writes, with its format. */
export function allStreams(): { service: ServiceDef; kind: StreamKind; format: LineFormat }[] {
  return SERVICES.flatMap((s) => [
    { service: s, kind: "access" as const, format: "json" as const },
    { service: s, kind: "app" as const, format: s.appLog },
    ...s.events.map((kind) => ({ service: s, kind, format: "json" as const })),
  ]);
}

/** Which Kafka topic each kind of event belongs to (the shipper routes the same way). */
export const TOPIC_OF: Record<StreamKind, string> = {
  access: "logs.access",
  app: "logs.app",
  coin: "events.coin",
  behavior: "events.behavior",
  device: "events.device",
};
