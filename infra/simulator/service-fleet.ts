// The platform's services as they run: their hosts, the log streams each writes (access and app
// logs, and the business events of the services that have them), the state of each endpoint that
// incidents change, and serving one request: its latency, status and internal call, and the access
// and app log lines it leaves.
import type { AccessLog, AppLog, BehaviorEvent, CoinTxn, DeviceReport, Level } from "../../schemas/types.generated.ts";
import type { EventWriter, SimStream } from "./event-writer.ts";
import { APP, ENDPOINTS, endpointIndex, GATEWAY_TIMEOUT_MS, SERVICES, type ServiceDef, service } from "./platform.ts";
import type { Population } from "./population.ts";
import type { Rng } from "./random.ts";
import type { RunIds } from "./run-ids.ts";
import type { IncidentSpec } from "./scenario.ts";
import { errorMessage, infoMessage, loggerName, stackFor, userAgent } from "./service-logs.ts";

/** Hands a record to its stream at its own time (the generator's timing wheel). */
export type Emit = (stream: SimStream<unknown>, record: unknown, atMs: number) => void;

/** The endpoint each endpoint calls while serving, or -1. */
const CALLEE = ENDPOINTS.map((e) => (e.calls ? endpointIndex(e.calls.service, e.calls.path) : -1));
/** Where a client request came from, as its query string says (from=…). */
const ORIGINS = ["feed", "search", "share", "follow"] as const;

/** A client request's query string: its app version and where the user came from. */
export function clientQuery(appVersion: string, ts: number): string {
  return `v=${appVersion}&from=${ORIGINS[ts % ORIGINS.length]}`;
}

/** The page a browser sent the request from. */
export function webReferrer(roomId: number | null): string {
  return roomId === null ? "https://live.example.com/" : `https://live.example.com/room/${roomId}`;
}

/** The logger each endpoint's app log lines name. */
const LOGGER = ENDPOINTS.map((e) => loggerName(service(e.service), e.path));

const INFO_LOG_SHARE = 0.27;

interface ServiceRuntime {
  def: ServiceDef;
  hosts: string[];
  hostIps: string[];
  access: SimStream<AccessLog>;
  app: SimStream<AppLog>;
  /** The logger of the service's periodic stats lines. */
  statsLogger: string;
}

export class ServiceFleet {
  readonly behavior: Record<string, SimStream<BehaviorEvent>> = {};
  readonly coin: Record<string, SimStream<CoinTxn>> = {};
  readonly device: SimStream<DeviceReport>;
  private readonly services = new Map<string, ServiceRuntime>();
  private readonly svcOfEndpoint: ServiceRuntime[];

  // endpoint state changed by incidents
  private readonly latencyFactor: Float64Array;
  private readonly addedMs: Float64Array;
  private readonly errorOverride: Float64Array;

  // when the last request served sent its response (a field, not a returned object: no allocation per request)
  outEnd = 0;

  /** Opens every stream, in the same order for the same platform: rotation modes alternate by that order. */
  constructor(
    writer: EventWriter,
    private readonly rng: Rng,
    private readonly pop: Population,
    private readonly ids: RunIds,
    private readonly emit: Emit,
  ) {
    for (const def of SERVICES) {
      const tag = this.rng.hex(5);
      const hosts = Array.from({ length: def.hosts }, (_, i) => `${def.name}-${tag}-${i}`);
      const rt: ServiceRuntime = {
        def,
        hosts,
        hostIps: hosts.map((_, i) => `10.${10 + SERVICES.indexOf(def)}.${this.rng.range(0, 255)}.${10 + i}`),
        access: writer.stream(def.name, "access", "json"),
        app: writer.stream(def.name, "app", def.appLog),
        statsLogger: loggerName(def, "stats"),
      };
      this.services.set(def.name, rt);
      if (def.events.includes("behavior")) this.behavior[def.name] = writer.stream(def.name, "behavior", "json");
      if (def.events.includes("coin")) this.coin[def.name] = writer.stream(def.name, "coin", "json");
    }
    this.device = writer.stream("device-svc", "device", "json");
    this.svcOfEndpoint = ENDPOINTS.map((e) => this.services.get(e.service) as ServiceRuntime);

    this.latencyFactor = new Float64Array(ENDPOINTS.length).fill(1);
    this.addedMs = new Float64Array(ENDPOINTS.length);
    this.errorOverride = new Float64Array(ENDPOINTS.length).fill(-1);
  }

  /** Starts (`on`) or ends an incident on the endpoints it affects. */
  applyIncident(endpoints: readonly number[], inc: IncidentSpec, on: boolean): void {
    for (const k of endpoints) {
      if (inc.type === "latency_spike") this.latencyFactor[k] = on ? inc.factor : 1;
      else if (inc.type === "error_burst") this.errorOverride[k] = on ? inc.errorRate : -1;
      else this.addedMs[k] = on ? inc.addedMs : 0;
    }
  }

  /**
   * Serves one request at endpoint `ep` starting at t, with its internal call if any; emits its
   * access log (and app logs) at the time the response is sent. Returns the status; the response
   * time is left in this.outEnd.
   */
  serve(
    ep: number,
    t: number,
    user: number | null,
    roomId: number | null,
    trace: string,
    caller: string | null,
    callerIp: string | null,
    businessError: string | null = null,
  ): number {
    const rng = this.rng;
    const def = ENDPOINTS[ep] as (typeof ENDPOINTS)[number];
    const svc = this.svcOfEndpoint[ep] as ServiceRuntime;
    const hostIdx = rng.int(svc.hosts.length);
    let own =
      rng.logNormal(def.medianMs, def.sigma) * (this.latencyFactor[ep] as number) + (this.addedMs[ep] as number);
    let status = 200;
    let errorCode: string | null = businessError;
    let callMs = 0;
    if (def.calls) {
      const callee = CALLEE[ep] as number;
      const calleeStatus = this.serve(
        callee,
        t + own * 0.2 + 1,
        user,
        roomId,
        trace,
        def.service,
        svc.hostIps[hostIdx] as string,
      );
      const calleeMs = this.outEnd - (t + own * 0.2 + 1);
      if (calleeMs > def.calls.timeoutMs) {
        callMs = def.calls.timeoutMs;
        status = 503;
        errorCode = "UPSTREAM_TIMEOUT";
      } else {
        callMs = calleeMs;
        if (calleeStatus >= 500) {
          status = 502;
          errorCode = "UPSTREAM_ERROR";
        }
      }
      own *= 0.8;
    }
    if (status === 200 && errorCode === null) {
      const errRate = (this.errorOverride[ep] as number) >= 0 ? (this.errorOverride[ep] as number) : def.errorRate;
      const r = rng.next();
      if (r < errRate) {
        status = r < errRate * 0.7 ? 500 : 503;
        errorCode = status === 500 ? "INTERNAL" : "UNAVAILABLE";
      } else if (r < errRate + def.clientErrorRate) {
        status = rng.chance(0.6) ? 400 : rng.chance(0.7) ? 401 : 429;
        errorCode = status === 400 ? "BAD_REQUEST" : status === 401 ? "UNAUTHORIZED" : "RATE_LIMITED";
      }
    }
    let latencyMs = own + callMs + 0.1;
    if (latencyMs > GATEWAY_TIMEOUT_MS) {
      latencyMs = GATEWAY_TIMEOUT_MS;
      status = 504;
      errorCode = "GATEWAY_TIMEOUT";
    }
    const end = Math.floor(t + latencyMs);
    const host = svc.hosts[hostIdx] as string;
    const pop = this.pop;
    const device = user === null ? null : (pop.device[user] as number);
    const access: AccessLog = {
      id: this.ids.next("q-"),
      ts: end,
      app: APP,
      system: svc.def.system,
      service: svc.def.name,
      endpoint: def.path,
      method: def.method,
      status,
      latencyUs: Math.round(latencyMs * 1000),
      bytesIn: def.method === "GET" ? 0 : 80 + rng.int(400),
      bytesOut: status >= 400 ? 60 : Math.round(def.bytesOut * (0.5 + rng.next())),
      errorCode,
      traceId: trace,
      caller,
      uid: user === null ? null : pop.uid(user),
      deviceId: caller !== null || device === null ? null : (pop.deviceId[device] as string),
      clientIp: callerIp ?? (user === null ? "203.119.24.10" : (pop.homeIp[user] as string)),
      roomId,
      userAgent:
        caller !== null || user === null ? null : userAgent(pop.platform[user] as number, pop.appVersionOf(user)),
      // From what the request already is, without drawing from the run's random stream (which would
      // move every later draw, and the ground truth with it): clients send their version and where
      // they came from, a browser its page as the Referer.
      urlQuery: caller !== null || user === null ? null : clientQuery(pop.appVersionOf(user), end),
      referrer: caller !== null || user === null || pop.platform[user] !== 2 ? null : webReferrer(roomId),
      host,
      source: null,
    };
    this.emit(svc.access as SimStream<unknown>, access, end);
    // What the service logs about it: every error, slow requests, and a share of the rest.
    if (status >= 500)
      this.appLog(
        svc,
        host,
        LOGGER[ep] as string,
        "ERROR",
        end,
        trace,
        access,
        errorMessage(svc.def, def.path, status, errorCode),
        stackFor(svc.def, rng),
      );
    else if (latencyMs > def.medianMs * 6 + 50)
      this.appLog(
        svc,
        host,
        LOGGER[ep] as string,
        "WARN",
        end,
        trace,
        access,
        `slow request: ${def.method} ${def.path} took ${Math.round(latencyMs)} ms`,
        null,
      );
    else if (rng.next() < INFO_LOG_SHARE)
      this.appLog(
        svc,
        host,
        LOGGER[ep] as string,
        "INFO",
        Math.floor(t + latencyMs * 0.9),
        trace,
        access,
        infoMessage(def.path, access),
        null,
      );
    this.outEnd = end;
    return status;
  }

  private appLog(
    svc: ServiceRuntime,
    host: string,
    logger: string,
    level: Level,
    ts: number,
    trace: string | null,
    req: AccessLog | null,
    message: string,
    error: AppLog["error"],
  ): void {
    // Java services name the worker thread (logback and log4j show it); Node and Go ones have none.
    const attributes: Record<string, string> =
      svc.def.appLog === "logback" || svc.def.appLog === "text"
        ? { thread: `http-nio-8080-exec-${1 + this.rng.int(200)}` }
        : {};
    if (req) {
      attributes.reqId = req.id;
      if (req.uid !== null) attributes.uid = String(req.uid);
      if (req.roomId !== null) attributes.roomId = String(req.roomId);
      attributes.status = String(req.status);
    }
    const record: AppLog = {
      id: "",
      ts,
      service: svc.def.name,
      host,
      level,
      message,
      logger,
      traceId: trace,
      spanId: trace === null ? null : this.rng.hex(16),
      error,
      attributes,
      source: null,
    };
    this.emit(svc.app as SimStream<unknown>, record, ts);
  }

  backgroundLogs(t: number): void {
    for (const svc of this.services.values()) {
      for (const host of svc.hosts) {
        const heap = 180 + this.rng.int(300);
        this.appLog(
          svc,
          host,
          svc.statsLogger,
          "INFO",
          Math.floor(t) + this.rng.int(900),
          null,
          null,
          `stats heapUsedMb=${heap} openConnections=${20 + this.rng.int(80)}`,
          null,
        );
      }
    }
  }
}
