// The traffic of a live-streaming platform, one user action at a time. Actions arrive as a Poisson
// process whose rate follows the day (evening peak in Beijing time); each action (actions.ts) is
// served by the platform's endpoints (service-fleet.ts: their latency, errors and internal calls)
// and leaves access logs, app logs and business events behind. Incidents change endpoints' latency
// and errors while they last, a hot event floods one room, and fraud campaigns (fraud.ts) schedule
// their own actions.
//
// Every record is written at its own timestamp (a request's access log when its response is sent),
// through a timing wheel, so files are in time order as services would write them.
import { UserActions } from "./actions.ts";
import type { EventWriter, SimStream } from "./event-writer.ts";
import { FraudCampaigns } from "./fraud.ts";
import type { GroundTruth } from "./ground-truth.ts";
import { ENDPOINTS, endpointIndex } from "./platform.ts";
import { CHAT_PHRASES, homeIp, legitPhone, Population } from "./population.ts";
import { AliasTable, Rng, zipfWeights } from "./random.ts";
import { RunIds, runTagOf } from "./run-ids.ts";
import { offsetMs, type Scenario } from "./scenario.ts";
import { type Emit, ServiceFleet } from "./service-fleet.ts";
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

const RECHARGE_YUAN = [6, 30, 68, 128, 328, 648, 1298];
const RECHARGE_WEIGHTS = [0.3, 0.25, 0.18, 0.12, 0.08, 0.05, 0.02];

const WHEEL_MS = 32_768; // > the longest a record waits: the gateway timeout plus call offsets

export class TrafficGenerator {
  readonly rng: Rng;
  readonly pop: Population;
  now: number;
  readonly end: number;
  /** The platform's services: they serve the actions' requests and write their logs. */
  private readonly fleet: ServiceFleet;
  /** What users do: normal traffic and fraud campaigns alike. */
  readonly actions: UserActions;

  private readonly mix: AliasTable;
  private readonly actionLinesAvg: number;
  private readonly rooms: AliasTable;
  private readonly roomShare: Float64Array;
  private readonly users: AliasTable;
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

  constructor(
    readonly opts: GeneratorOptions,
    private readonly writer: EventWriter,
    private readonly truth: GroundTruth,
  ) {
    this.rng = new Rng(opts.seed);
    const ids = new RunIds(runTagOf(opts.seed, opts.start));
    this.now = opts.start;
    this.end = opts.start + opts.runMs;
    this.wheel = new TimingWheel(opts.start, WHEEL_MS);
    const emit: Emit = (stream, record, atMs) => this.wheel.push(atMs, stream, record);
    const expectedNewUsers =
      Math.ceil((opts.rate * opts.runMs) / 1000 / 2.7) * 0.006 + 2000 * Math.max(1, opts.fraud) + 100;
    this.pop = new Population(this.rng.fork(), opts.users, opts.streamers, Math.ceil(expectedNewUsers));

    this.fleet = new ServiceFleet(writer, this.rng, this.pop, ids, emit);
    this.actions = new UserActions(this.rng, this.pop, this.fleet, ids, emit);

    this.mix = new AliasTable(MIX.map((m) => m[1]));
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
        // Time passes without events too: a quiet stretch longer than a chunk (a low rate at night)
        // must not hold the clock where it is.
        if (t >= stop && stop > this.now) this.now = stop;
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
          this.fleet.backgroundLogs(t);
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
      const apply = (on: boolean) => () => this.fleet.applyIncident(eps, inc, on);
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
    const action = (MIX[this.mix.sample(rng)] as [Action, number, number])[0];
    const user = this.users.sample(rng);
    if (ROOM_ACTIONS.has(action)) {
      this.roomAction(user, this.rooms.sample(rng), t, action);
      return;
    }
    switch (action) {
      case "room_list":
        this.actions.roomList(user, t);
        break;
      case "gift_list":
        this.actions.giftList(user, t);
        break;
      case "balance":
        this.actions.balance(user, t);
        break;
      case "follow":
        this.actions.follow(user, this.rooms.sample(rng), t, true);
        break;
      case "unfollow":
        this.actions.follow(user, this.rooms.sample(rng), t, false);
        break;
      case "login":
        this.actions.login(user, t, rng.pick(["password", "password", "sms", "one_click", "oauth_wechat"]));
        break;
      case "register": {
        const platform = rng.chance(0.72) ? 0 : 1;
        const u = this.pop.addUser(platform, homeIp(rng));
        this.actions.register(u, t, legitPhone(rng), "sms");
        break;
      }
      case "recharge": {
        const yuan = RECHARGE_YUAN[this.rechargeTable.sample(rng)] as number;
        this.actions.recharge(user, t, this.actions.instrumentOf(user), yuan);
        break;
      }
      case "withdraw":
        this.actions.withdraw(this.pop.streamers[this.rooms.sample(rng)] as number, t);
        break;
      case "device_report":
        this.actions.deviceReport(this.pop.device[user] as number, user, t);
        break;
      case "refund":
        this.actions.refund(user, this.rooms.sample(rng), t);
        break;
      case "chargeback":
        this.actions.chargeback(
          user,
          t,
          this.actions.instrumentOf(user),
          RECHARGE_YUAN[this.rechargeTable.sample(rng)] as number,
        );
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
        this.actions.roomEnter(user, streamer, t);
        break;
      case "room_leave":
        this.actions.roomLeave(user, streamer, t);
        break;
      case "room_info":
        this.actions.roomInfo(user, streamer, t);
        break;
      case "chat":
        this.actions.chat(user, streamer, t, rng.pick(CHAT_PHRASES));
        break;
      case "like":
        this.actions.like(user, streamer, t);
        break;
      case "share":
        this.actions.share(user, streamer, t);
        break;
      case "gift":
        this.actions.gift(user, streamer, t);
        break;
      default:
        break;
    }
  }
}

/** Share of the evening peak at time t: highest at 21:00 Beijing time, lowest around 09:00. */
export function diurnal(t: number): number {
  const hour = (((t / 3_600_000 + 8) % 24) + 24) % 24;
  const phase = (1 + Math.cos((2 * Math.PI * (hour - 21)) / 24)) / 2;
  return 0.15 + 0.85 * phase ** 1.5;
}
