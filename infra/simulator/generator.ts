// The traffic of a live-streaming platform, one user action at a time. Actions arrive as a Poisson
// process whose rate follows the day (evening peak in Beijing time); each action is served by the
// platform's endpoints (with their latency, errors and internal calls) and leaves access logs, app
// logs and business events behind. Incidents change endpoints' latency and errors while they last,
// a hot event floods one room, and fraud campaigns (fraud.ts) schedule their own actions.
//
// Every record is written at its own timestamp (a request's access log when its response is sent),
// through a timing wheel, so files are in time order as services would write them.
import type { AccessLog, AppLog, BehaviorEvent, CoinTxn, DeviceReport, Level } from "../../schemas/types.generated.ts";
import type { EventWriter, SimStream } from "./event-writer.ts";
import { FraudCampaigns } from "./fraud.ts";
import type { GroundTruth } from "./ground-truth.ts";
import { APP, ENDPOINTS, endpointIndex, GATEWAY_TIMEOUT_MS, SERVICES, type ServiceDef, service } from "./platform.ts";
import { CHAT_PHRASES, homeIp, legitPhone, Population } from "./population.ts";
import { AliasTable, Rng, zipfWeights } from "./random.ts";
import { offsetMs, type Scenario } from "./scenario.ts";
import { errorMessage, infoMessage, loggerName, stackFor, userAgent } from "./service-logs.ts";
import { Schedule, TimingWheel } from "./timing.ts";

export interface GeneratorOptions {
  seed: number;
  /** Simulated start, ms since the epoch. */
  start: number;
  /** Planned length of the run in ms: scenario times in % are shares of it. */
  runMs: number;
  /** Lines per second at the evening peak (approximate: actions leave 2 to 4 lines each). */
  rate: number;
  diurnal: boolean;
  users: number;
  streamers: number;
  scenario: Scenario;
  scenarioName: string;
  /** Multiplies the size of every fraud campaign; 0 turns fraud off. */
  fraud: number;
}

type Action =
  | "room_enter"
  | "room_leave"
  | "room_info"
  | "room_list"
  | "chat"
  | "like"
  | "share"
  | "follow"
  | "unfollow"
  | "gift"
  | "gift_list"
  | "login"
  | "register"
  | "recharge"
  | "balance"
  | "withdraw"
  | "device_report"
  | "refund"
  | "chargeback";

// The mix of normal traffic, and the lines each action leaves on average (requests x 1.27 for app
// logs, plus business events): together they turn --rate (lines/s) into actions/s.
const MIX: [Action, number, number][] = [
  ["room_enter", 0.19, 3.5],
  ["room_leave", 0.13, 2.3],
  ["room_info", 0.06, 1.3],
  ["room_list", 0.04, 1.3],
  ["chat", 0.16, 2.3],
  ["like", 0.14, 2.3],
  ["share", 0.015, 2.3],
  ["follow", 0.03, 2.3],
  ["unfollow", 0.005, 2.3],
  ["gift", 0.07, 3.5],
  ["gift_list", 0.02, 1.3],
  ["login", 0.035, 2.3],
  ["register", 0.004, 4.5],
  ["recharge", 0.008, 2.3],
  ["balance", 0.02, 1.3],
  ["withdraw", 0.0008, 2.3],
  ["device_report", 0.03, 2.3],
  ["refund", 0.0003, 2.3],
  ["chargeback", 0.0001, 2.3],
];
const ROOM_ACTIONS = new Set<Action>(["room_enter", "room_leave", "room_info", "chat", "like", "share", "gift"]);

const GIFTS: [string, number, number][] = [
  ["rose", 1, 0.5],
  ["heart", 10, 0.25],
  ["star", 52, 0.13],
  ["car", 520, 0.07],
  ["rocket", 1314, 0.04],
  ["castle", 5200, 0.01],
];
const RECHARGE_YUAN = [6, 30, 68, 128, 328, 648, 1298];
const RECHARGE_WEIGHTS = [0.3, 0.25, 0.18, 0.12, 0.08, 0.05, 0.02];

// Endpoints by index, resolved once: actions and requests never look them up by name.
const EP = {
  register: endpointIndex("user-svc", "/user/register"),
  login: endpointIndex("user-svc", "/user/login"),
  roomEnter: endpointIndex("room-svc", "/room/{id}/enter"),
  roomLeave: endpointIndex("room-svc", "/room/{id}/leave"),
  roomInfo: endpointIndex("room-svc", "/room/{id}/info"),
  roomList: endpointIndex("room-svc", "/room/list"),
  imSend: endpointIndex("im-svc", "/im/send"),
  follow: endpointIndex("social-svc", "/follow"),
  unfollow: endpointIndex("social-svc", "/unfollow"),
  like: endpointIndex("social-svc", "/like"),
  share: endpointIndex("social-svc", "/share"),
  giftSend: endpointIndex("gift-svc", "/gift/send"),
  giftList: endpointIndex("gift-svc", "/gift/list"),
  recharge: endpointIndex("pay-svc", "/pay/recharge"),
  withdraw: endpointIndex("pay-svc", "/pay/withdraw"),
  notify: endpointIndex("pay-svc", "/pay/notify"),
  balance: endpointIndex("pay-svc", "/wallet/balance"),
  sdkReport: endpointIndex("device-svc", "/sdk/report"),
};
/** The endpoint each endpoint calls while serving, or -1. */
const CALLEE = ENDPOINTS.map((e) => (e.calls ? endpointIndex(e.calls.service, e.calls.path) : -1));
/** The logger each endpoint's app log lines name. */
const LOGGER = ENDPOINTS.map((e) => loggerName(service(e.service), e.path));

const WHEEL_MS = 32_768; // > the longest a record waits: the gateway timeout plus call offsets
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

export class TrafficGenerator {
  readonly rng: Rng;
  readonly pop: Population;
  now: number;
  readonly end: number;
  private readonly services = new Map<string, ServiceRuntime>();
  private readonly svcOfEndpoint: ServiceRuntime[];
  private readonly behavior: Record<string, SimStream<BehaviorEvent>> = {};
  private readonly coin: Record<string, SimStream<CoinTxn>> = {};
  private readonly device: SimStream<DeviceReport>;

  // endpoint state changed by incidents
  private readonly latencyFactor: Float64Array;
  private readonly addedMs: Float64Array;
  private readonly errorOverride: Float64Array;

  private readonly actions: AliasTable;
  private readonly actionLinesAvg: number;
  private readonly rooms: AliasTable;
  private readonly roomShare: Float64Array;
  private readonly users: AliasTable;
  private readonly giftTable = new AliasTable(GIFTS.map((g) => g[2]));
  private readonly rechargeTable = new AliasTable(RECHARGE_WEIGHTS);
  private readonly roomActionShare: number;

  // records wait here until the clock passes their time (then each goes to its stream)
  private readonly wheel: TimingWheel<SimStream<unknown>, unknown>;
  private readonly write = (stream: SimStream<unknown>, record: unknown) => stream.write(record);

  // event sources
  private nextNormal: number;
  private nextBackground: number;
  private readonly timeline: { t: number; run: () => void }[] = [];
  private timelinePos = 0;
  private readonly schedule = new Schedule();
  private hot:
    | { streamer: number; start: number; fullAt: number; end: number; multiplier: number; next: number }
    | undefined;
  readonly fraud: FraudCampaigns;

  private counter = 0;
  /**
   * Names this run (seed and start) in request, transaction and trace ids: the counters and the rng
   * restart with every run, and two runs of one seed would otherwise reuse ids, so the stores (which
   * keep the first line of an id) would drop the second run's lines and mix both runs' traces.
   */
  private readonly runTag: string;
  // when the last request served sent its response (a field, not a returned object: no allocation per request)
  private outEnd = 0;

  constructor(
    readonly opts: GeneratorOptions,
    private readonly writer: EventWriter,
    private readonly truth: GroundTruth,
  ) {
    this.rng = new Rng(opts.seed);
    this.runTag = runTagOf(opts.seed, opts.start);
    this.now = opts.start;
    this.end = opts.start + opts.runMs;
    this.wheel = new TimingWheel(opts.start, WHEEL_MS);
    const expectedNewUsers =
      Math.ceil((opts.rate * opts.runMs) / 1000 / 2.7) * 0.006 + 2000 * Math.max(1, opts.fraud) + 100;
    this.pop = new Population(this.rng.fork(), opts.users, opts.streamers, Math.ceil(expectedNewUsers));

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

    this.actions = new AliasTable(MIX.map((m) => m[1]));
    const totalWeight = MIX.reduce((a, m) => a + m[1], 0);
    this.actionLinesAvg = MIX.reduce((a, m) => a + m[1] * m[2], 0) / totalWeight;
    this.roomActionShare = MIX.filter((m) => ROOM_ACTIONS.has(m[0])).reduce((a, m) => a + m[1], 0) / totalWeight;
    this.roomShare = zipfWeights(this.pop.streamers.length, 1.1);
    const zsum = this.roomShare.reduce((a, b) => a + b, 0);
    for (let i = 0; i < this.roomShare.length; i++) this.roomShare[i] = (this.roomShare[i] as number) / zsum;
    this.rooms = new AliasTable(this.roomShare);
    this.users = new AliasTable(zipfWeights(opts.users, 0.6));

    this.scheduleIncidents(opts.scenario);
    this.scheduleHotEvents(opts.scenario);
    this.fraud = new FraudCampaigns(this, opts.scenario, opts.fraud, truth);
    this.nextNormal = opts.start + this.rng.exponential(this.actionRate(opts.start) / 1000);
    this.nextBackground = opts.start + 10_000;
  }

  // ---- the clock -----------------------------------------------------------------------------

  /** Actions per second at simulated time t. */
  private actionRate(t: number): number {
    return (this.opts.rate * (this.opts.diurnal ? diurnal(t) : 1)) / this.actionLinesAvg;
  }

  /** Schedules `run` at simulated time t (fraud campaigns' steps). */
  at(t: number, run: () => void): void {
    this.schedule.add(t, run);
  }

  /**
   * Generates every action before simulated time `until`, or until the writer has `maxRecords`.
   * Returns false once the run is over (its end reached or the record budget spent).
   */
  runUntil(until: number, maxRecords: number): boolean {
    const stop = Math.min(until, this.end);
    for (;;) {
      let t = this.nextNormal;
      let source = 0;
      if (this.hot && this.hot.next < t) {
        t = this.hot.next;
        source = 1;
      }
      if (this.schedule.peek() < t) {
        t = this.schedule.peek();
        source = 2;
      }
      const tl = this.timeline[this.timelinePos];
      if (tl && tl.t <= t) {
        t = tl.t;
        source = 3;
      }
      if (this.nextBackground < t) {
        t = this.nextBackground;
        source = 4;
      }
      if (t >= stop || this.writer.written >= maxRecords) {
        this.drain(Math.min(t, stop));
        return t < this.end && this.writer.written < maxRecords;
      }
      this.drain(t);
      this.now = t;
      switch (source) {
        case 0:
          this.normalAction(t);
          this.nextNormal = t + this.rng.exponential(this.actionRate(t) / 1000);
          break;
        case 1:
          this.hotAction(t);
          break;
        case 2:
          this.schedule.next()();
          break;
        case 3:
          this.timelinePos++;
          tl?.run();
          break;
        case 4:
          this.backgroundLogs(t);
          this.nextBackground = t + 10_000;
          break;
      }
    }
  }

  /** Writes everything still waiting in the wheel, and the campaigns' ground truth. */
  finish(): void {
    this.wheel.drainAll(this.write);
    this.fraud.finish(Math.min(this.now, this.end));
  }

  private emit(stream: SimStream<unknown>, record: unknown, atMs: number): void {
    this.wheel.push(atMs, stream, record);
  }

  /** Writes the records due before the current millisecond (those of this ms may still grow). */
  private drain(t: number): void {
    this.wheel.drain(t, this.write);
  }

  // ---- scenario ------------------------------------------------------------------------------

  private scheduleIncidents(scenario: Scenario): void {
    const { start, runMs } = this.opts;
    scenario.incidents.forEach((inc, i) => {
      const t0 = start + offsetMs(inc.at, runMs);
      const t1 = t0 + offsetMs(inc.for, runMs);
      const eps =
        "endpoint" in inc
          ? [endpointIndex(inc.service, inc.endpoint)]
          : ENDPOINTS.flatMap((e, j) => (e.service === inc.service ? [j] : []));
      const callers = ENDPOINTS.flatMap((e, j) =>
        e.calls && eps.some((k) => ENDPOINTS[k]?.service === e.calls?.service && ENDPOINTS[k]?.path === e.calls?.path)
          ? [j]
          : [],
      );
      const apply = (on: boolean) => () => {
        for (const k of eps) {
          if (inc.type === "latency_spike") this.latencyFactor[k] = on ? inc.factor : 1;
          else if (inc.type === "error_burst") this.errorOverride[k] = on ? inc.errorRate : -1;
          else this.addedMs[k] = on ? inc.addedMs : 0;
        }
      };
      this.timeline.push({ t: t0, run: apply(true) }, { t: t1, run: apply(false) });
      const params: Record<string, number> =
        inc.type === "latency_spike"
          ? { factor: inc.factor }
          : inc.type === "error_burst"
            ? { errorRate: inc.errorRate }
            : { addedMs: inc.addedMs };
      this.truth.add({
        kind: "incident",
        id: `incident-${i + 1}`,
        type: inc.type,
        service: inc.service,
        endpoint: "endpoint" in inc ? inc.endpoint : null,
        start: t0,
        end: Math.min(t1, this.end),
        affects: [...eps, ...callers].map((k) => ({
          service: ENDPOINTS[k]?.service as string,
          endpoint: ENDPOINTS[k]?.path as string,
        })),
        params,
      });
    });
    this.timeline.sort((a, b) => a.t - b.t);
  }

  private scheduleHotEvents(scenario: Scenario): void {
    const { start, runMs } = this.opts;
    scenario.hotEvents.forEach((h, i) => {
      const streamer = Math.min(h.roomRank, this.pop.streamers.length) - 1;
      const t0 = start + offsetMs(h.at, runMs);
      const t1 = t0 + offsetMs(h.for, runMs);
      const fullAt = t0 + Math.min(offsetMs(h.ramp, runMs), (t1 - t0) / 2);
      this.timeline.push(
        { t: t0, run: () => (this.hot = { streamer, start: t0, fullAt, end: t1, multiplier: h.multiplier, next: t0 }) },
        { t: t1, run: () => (this.hot = undefined) },
      );
      this.truth.add({
        kind: "hot_event",
        id: `hot-${i + 1}`,
        roomId: this.pop.roomId(streamer),
        streamerUid: this.pop.uid(this.pop.streamers[streamer] as number),
        start: t0,
        fullAt,
        end: Math.min(t1, this.end),
        multiplier: h.multiplier,
        normalShare: this.roomShare[streamer] as number,
      });
    });
    this.timeline.sort((a, b) => a.t - b.t);
  }

  // One extra action in the hot room; the rate ramps up to (multiplier - 1) x the room's normal rate.
  private hotAction(t: number): void {
    const hot = this.hot as NonNullable<typeof this.hot>;
    if (t > hot.start) {
      const user = this.users.sample(this.rng);
      this.roomAction(user, hot.streamer, t);
    }
    const ramp = Math.min(1, Math.max(0.02, (t - hot.start) / Math.max(1, hot.fullAt - hot.start)));
    const rate =
      (hot.multiplier - 1) *
      ramp *
      this.actionRate(t) *
      this.roomActionShare *
      (this.roomShare[hot.streamer] as number);
    hot.next = t + this.rng.exponential(rate / 1000);
  }

  // ---- normal traffic ------------------------------------------------------------------------

  private normalAction(t: number): void {
    const rng = this.rng;
    const action = (MIX[this.actions.sample(rng)] as [Action, number, number])[0];
    const user = this.users.sample(rng);
    if (ROOM_ACTIONS.has(action)) {
      this.roomAction(user, this.rooms.sample(rng), t, action);
      return;
    }
    switch (action) {
      case "room_list":
        this.browse(user, EP.roomList, t);
        break;
      case "gift_list":
        this.browse(user, EP.giftList, t);
        break;
      case "balance":
        this.browse(user, EP.balance, t);
        break;
      case "follow":
        this.follow(user, this.rooms.sample(rng), t, true);
        break;
      case "unfollow":
        this.follow(user, this.rooms.sample(rng), t, false);
        break;
      case "login":
        this.login(user, t, rng.pick(["password", "password", "sms", "one_click", "oauth_wechat"]));
        break;
      case "register": {
        const platform = rng.chance(0.72) ? 0 : 1;
        const u = this.pop.addUser(platform, homeIp(rng));
        this.register(u, t, legitPhone(rng), "sms");
        break;
      }
      case "recharge": {
        const yuan = RECHARGE_YUAN[this.rechargeTable.sample(rng)] as number;
        this.recharge(user, t, this.instrumentOf(user), yuan);
        break;
      }
      case "withdraw":
        this.withdraw(this.pop.streamers[this.rooms.sample(rng)] as number, t);
        break;
      case "device_report":
        this.deviceReport(this.pop.device[user] as number, user, t);
        break;
      case "refund":
        this.refund(user, this.rooms.sample(rng), t);
        break;
      case "chargeback":
        this.chargeback(user, t, this.instrumentOf(user), RECHARGE_YUAN[this.rechargeTable.sample(rng)] as number);
        break;
    }
  }

  private roomAction(user: number, streamer: number, t: number, action?: Action): void {
    const rng = this.rng;
    let a = action;
    if (!a) {
      // Traffic drawn to one room: mostly people arriving, chatting and sending gifts.
      const r = rng.next();
      a =
        r < 0.35
          ? "room_enter"
          : r < 0.5
            ? "chat"
            : r < 0.72
              ? "like"
              : r < 0.82
                ? "gift"
                : r < 0.9
                  ? "room_info"
                  : r < 0.97
                    ? "room_leave"
                    : "share";
    }
    switch (a) {
      case "room_enter":
        this.roomEnter(user, streamer, t);
        break;
      case "room_leave":
        this.simpleBehavior(user, streamer, t, EP.roomLeave, "ROOM_LEAVE");
        break;
      case "room_info":
        this.browse(user, EP.roomInfo, t, this.pop.roomId(streamer));
        break;
      case "chat":
        this.chat(user, streamer, t, rng.pick(CHAT_PHRASES));
        break;
      case "like":
        this.simpleBehavior(user, streamer, t, EP.like, "LIKE");
        break;
      case "share":
        this.simpleBehavior(user, streamer, t, EP.share, "SHARE");
        break;
      case "gift":
        this.gift(user, streamer, t);
        break;
      default:
        break;
    }
  }

  // ---- actions (also the fraud campaigns' building blocks) ------------------------------------

  newTrace(): string {
    // The run's tag in place of the first 8 random digits: as many draws as before, so the rest of
    // the run's traffic is unchanged.
    return this.runTag + this.rng.hex(32).slice(8);
  }

  private nextId(prefix: string): string {
    return `${prefix}${this.runTag}-${(this.counter++).toString(36)}`;
  }

  instrumentOf(user: number): string {
    return `tok_${((user * 2654435761) >>> 0).toString(16).padStart(8, "0")}`;
  }

  register(user: number, t: number, phone: string, method: string): void {
    const pop = this.pop;
    pop.phone[user] = phone;
    const trace = this.newTrace();
    const ok = this.serve(EP.register, t, user, null, trace, null, null) < 400;
    this.emit(
      this.behavior["user-svc"] as SimStream<unknown>,
      this.behaviorRecord(user, this.outEnd, "REGISTER", null, null, { phone, method, success: ok, text: null }, trace),
      this.outEnd,
    );
    // The SDK reports the device at first launch.
    this.deviceReport(pop.device[user] as number, user, this.outEnd + 200 + this.rng.int(2000));
  }

  login(user: number, t: number, method: string): void {
    const trace = this.newTrace();
    const status = this.serve(EP.login, t, user, null, trace, null, null);
    let phone: string | null = null;
    if (method === "sms") {
      this.pop.phone[user] ??= legitPhone(this.rng);
      phone = this.pop.phone[user] as string;
    }
    this.emit(
      this.behavior["user-svc"] as SimStream<unknown>,
      this.behaviorRecord(
        user,
        this.outEnd,
        "LOGIN",
        null,
        null,
        { phone, method, success: status < 400, text: null },
        trace,
      ),
      this.outEnd,
    );
  }

  roomEnter(user: number, streamer: number, t: number): void {
    this.simpleBehavior(user, streamer, t, EP.roomEnter, "ROOM_ENTER");
  }

  chat(user: number, streamer: number, t: number, text: string): void {
    const trace = this.newTrace();
    const roomId = this.pop.roomId(streamer);
    const status = this.serve(EP.imSend, t, user, roomId, trace, null, null);
    if (status >= 400) return;
    const rec = this.behaviorRecord(
      user,
      this.outEnd,
      "CHAT",
      this.pop.uid(this.pop.streamers[streamer] as number),
      roomId,
      { phone: null, method: null, success: true, text },
      trace,
    );
    this.emit(this.behavior["im-svc"] as SimStream<unknown>, rec, this.outEnd);
  }

  follow(user: number, streamer: number, t: number, on: boolean): void {
    this.simpleBehavior(user, streamer, t, on ? EP.follow : EP.unfollow, on ? "FOLLOW" : "UNFOLLOW");
  }

  /** A request to `ep` whose service records a behaviour event of `type` about the streamer. */
  private simpleBehavior(user: number, streamer: number, t: number, ep: number, type: BehaviorEvent["type"]): void {
    const trace = this.newTrace();
    const roomId = this.pop.roomId(streamer);
    const status = this.serve(ep, t, user, roomId, trace, null, null);
    if (status >= 400) return;
    const target = this.pop.uid(this.pop.streamers[streamer] as number);
    this.emit(
      this.behavior[(ENDPOINTS[ep] as (typeof ENDPOINTS)[number]).service] as SimStream<unknown>,
      this.behaviorRecord(
        user,
        this.outEnd,
        type,
        target,
        type === "FOLLOW" || type === "UNFOLLOW" ? null : roomId,
        null,
        trace,
      ),
      this.outEnd,
    );
  }

  private browse(user: number, ep: number, t: number, roomId: number | null = null): void {
    this.serve(ep, t, user, roomId, this.newTrace(), null, null);
  }

  /** Sends a gift if the balance allows; returns the coins spent. */
  gift(user: number, streamer: number, t: number, wanted?: number): number {
    const pop = this.pop;
    const trace = this.newTrace();
    const roomId = pop.roomId(streamer);
    const [giftId, price] =
      wanted === undefined ? (GIFTS[this.giftTable.sample(this.rng)] as [string, number, number]) : ["bundle", wanted];
    const balance = pop.balance[user] as number;
    const enough = balance >= price;
    const status = this.serve(EP.giftSend, t, user, roomId, trace, null, null, enough ? null : "BALANCE_NOT_ENOUGH");
    if (status >= 400 || !enough) return 0;
    pop.balance[user] = balance - price;
    const streamerUser = pop.streamers[streamer] as number;
    pop.balance[streamerUser] = (pop.balance[streamerUser] as number) + price;
    this.emit(
      this.coin["gift-svc"] as SimStream<unknown>,
      this.coinRecord(user, this.outEnd, "GIFT", price, pop.uid(streamerUser), roomId, giftId, null, trace),
      this.outEnd,
    );
    return price;
  }

  recharge(user: number, t: number, cardToken: string, yuan: number): boolean {
    const trace = this.newTrace();
    const status = this.serve(EP.recharge, t, user, null, trace, null, null);
    if (status >= 400) return false;
    const coins = yuan * 10;
    this.pop.balance[user] = (this.pop.balance[user] as number) + coins;
    const channel = cardToken.startsWith("card_")
      ? "card"
      : this.pop.platform[user] === 1
        ? "apple_iap"
        : this.rng.chance(0.5)
          ? "alipay"
          : "wechat";
    this.emit(
      this.coin["pay-svc"] as SimStream<unknown>,
      this.coinRecord(
        user,
        this.outEnd,
        "RECHARGE",
        coins,
        null,
        null,
        null,
        { cardToken, channel, cents: yuan * 100 },
        trace,
      ),
      this.outEnd,
    );
    return true;
  }

  chargeback(user: number, t: number, cardToken: string, yuan: number): void {
    const trace = this.newTrace();
    this.serve(EP.notify, t, null, null, trace, null, null);
    const coins = Math.min(yuan * 10, Math.max(0, this.pop.balance[user] as number));
    this.pop.balance[user] = (this.pop.balance[user] as number) - coins;
    this.emit(
      this.coin["pay-svc"] as SimStream<unknown>,
      this.coinRecord(
        user,
        this.outEnd,
        "CHARGEBACK",
        yuan * 10,
        null,
        null,
        null,
        { cardToken, channel: "card", cents: yuan * 100 },
        trace,
      ),
      this.outEnd,
    );
  }

  private withdraw(streamerUser: number, t: number): void {
    const trace = this.newTrace();
    const balance = this.pop.balance[streamerUser] as number;
    if (balance < 100) return;
    if (this.serve(EP.withdraw, t, streamerUser, null, trace, null, null) >= 400) return;
    const amount = Math.floor(balance * 0.8);
    this.pop.balance[streamerUser] = balance - amount;
    this.emit(
      this.coin["pay-svc"] as SimStream<unknown>,
      this.coinRecord(streamerUser, this.outEnd, "WITHDRAW", amount, null, null, null, null, trace),
      this.outEnd,
    );
  }

  private refund(user: number, streamer: number, t: number): void {
    const trace = this.newTrace();
    this.serve(EP.notify, t, null, null, trace, null, null);
    const amount = GIFTS[1]?.[1] as number;
    this.pop.balance[user] = (this.pop.balance[user] as number) + amount;
    this.emit(
      this.coin["pay-svc"] as SimStream<unknown>,
      this.coinRecord(
        user,
        this.outEnd,
        "REFUND",
        amount,
        this.pop.uid(this.pop.streamers[streamer] as number),
        null,
        null,
        null,
        trace,
      ),
      this.outEnd,
    );
  }

  deviceReport(device: number, user: number | null, t: number): void {
    const trace = this.newTrace();
    this.serve(EP.sdkReport, t, user, null, trace, null, null);
    const ip = user === null ? homeIp(this.rng) : (this.pop.homeIp[user] as string);
    const report = this.pop.deviceReport(
      device,
      this.nextId("r-"),
      Math.floor(this.outEnd),
      user === null ? null : this.pop.uid(user),
      ip,
    );
    this.emit(this.device as SimStream<unknown>, report, this.outEnd);
  }

  // ---- serving a request ---------------------------------------------------------------------

  /**
   * Serves one request at endpoint `ep` starting at t, with its internal call if any; emits its
   * access log (and app logs) at the time the response is sent. Returns the status; the response
   * time is left in this.outEnd.
   */
  private serve(
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
      id: this.nextId("q-"),
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

  private backgroundLogs(t: number): void {
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

  // ---- records ---------------------------------------------------------------------------------

  private behaviorRecord(
    user: number,
    ts: number,
    type: BehaviorEvent["type"],
    targetUid: number | null,
    roomId: number | null,
    extra: { phone: string | null; method: string | null; success: boolean; text: string | null } | null,
    trace: string,
  ): BehaviorEvent {
    const pop = this.pop;
    return {
      id: this.nextId("b-"),
      ts: Math.floor(ts),
      type,
      uid: pop.uid(user),
      targetUid,
      roomId,
      deviceId: pop.deviceId[pop.device[user] as number] as string,
      ip: pop.homeIp[user] as string,
      appVersion: pop.appVersionOf(user),
      platform: pop.platformOf(user),
      phone: extra?.phone ?? null,
      method: extra?.method ?? null,
      success: extra?.success ?? true,
      text: extra?.text ?? null,
      traceId: trace,
      source: null,
    };
  }

  private coinRecord(
    user: number,
    ts: number,
    type: CoinTxn["type"],
    amount: number,
    counterpartUid: number | null,
    roomId: number | null,
    giftId: string | null,
    payment: { cardToken: string; channel: string; cents: number } | null,
    trace: string,
  ): CoinTxn {
    const pop = this.pop;
    return {
      id: this.nextId("c-"),
      ts: Math.floor(ts),
      type,
      uid: pop.uid(user),
      counterpartUid,
      roomId,
      amount,
      balanceAfter: Math.max(0, Math.round(pop.balance[user] as number)),
      giftId,
      cardToken: payment?.cardToken ?? null,
      paymentChannel: payment?.channel ?? null,
      fiatAmountCents: payment?.cents ?? null,
      currency: payment ? "CNY" : null,
      deviceId: pop.deviceId[pop.device[user] as number] as string,
      ip: pop.homeIp[user] as string,
      traceId: trace,
      source: null,
    };
  }
}

/** Share of the evening peak at time t: highest at 21:00 Beijing time, lowest around 09:00. */
export function diurnal(t: number): number {
  const hour = (((t / 3_600_000 + 8) % 24) + 24) % 24;
  const phase = (1 + Math.cos((2 * Math.PI * (hour - 21)) / 24)) / 2;
  return 0.15 + 0.85 * phase ** 1.5;
}

/** 8 hex digits from a run's seed and start (FNV-1a over both): the same run gives the same ids. */
export function runTagOf(seed: number, start: number): string {
  let h = 0x811c9dc5;
  for (const c of `${seed}:${start}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}
