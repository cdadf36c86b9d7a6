// What a user does on the platform, one action at a time: each action makes its requests to the
// platform's services (service-fleet.ts) and leaves the business events of the services that record
// it (behaviour, coin, device reports). Normal traffic (generator.ts) and the fraud campaigns
// (fraud.ts) are both made of these actions, so a campaign looks like traffic, not like a marker.
import type { BehaviorEvent, CoinTxn } from "../../schemas/types.generated.ts";
import type { SimStream } from "./event-writer.ts";
import { ENDPOINTS, endpointIndex } from "./platform.ts";
import { homeIp, legitPhone, type Population } from "./population.ts";
import { AliasTable, type Rng } from "./random.ts";
import type { RunIds } from "./run-ids.ts";
import type { Emit, ServiceFleet } from "./service-fleet.ts";

const GIFTS: [string, number, number][] = [
  ["rose", 1, 0.5],
  ["heart", 10, 0.25],
  ["star", 52, 0.13],
  ["car", 520, 0.07],
  ["rocket", 1314, 0.04],
  ["castle", 5200, 0.01],
];

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

export class UserActions {
  private readonly giftTable = new AliasTable(GIFTS.map((g) => g[2]));

  constructor(
    readonly rng: Rng,
    readonly pop: Population,
    private readonly fleet: ServiceFleet,
    private readonly ids: RunIds,
    private readonly emit: Emit,
  ) {}

  newTrace(): string {
    return this.ids.trace(this.rng);
  }

  instrumentOf(user: number): string {
    return `tok_${((user * 2654435761) >>> 0).toString(16).padStart(8, "0")}`;
  }

  /** Returns whether the registration succeeded (user-svc may fail it during an incident). */
  register(user: number, t: number, phone: string, method: string): boolean {
    const pop = this.pop;
    pop.phone[user] = phone;
    const trace = this.newTrace();
    const ok = this.fleet.serve(EP.register, t, user, null, trace, null, null) < 400;
    this.emit(
      this.fleet.behavior["user-svc"] as SimStream<unknown>,
      this.behaviorRecord(
        user,
        this.fleet.outEnd,
        "REGISTER",
        null,
        null,
        { phone, method, success: ok, text: null },
        trace,
      ),
      this.fleet.outEnd,
    );
    // The SDK reports the device at first launch.
    this.deviceReport(pop.device[user] as number, user, this.fleet.outEnd + 200 + this.rng.int(2000));
    return ok;
  }

  login(user: number, t: number, method: string): void {
    const trace = this.newTrace();
    const status = this.fleet.serve(EP.login, t, user, null, trace, null, null);
    let phone: string | null = null;
    if (method === "sms") {
      this.pop.phone[user] ??= legitPhone(this.rng);
      phone = this.pop.phone[user] as string;
    }
    this.emit(
      this.fleet.behavior["user-svc"] as SimStream<unknown>,
      this.behaviorRecord(
        user,
        this.fleet.outEnd,
        "LOGIN",
        null,
        null,
        { phone, method, success: status < 400, text: null },
        trace,
      ),
      this.fleet.outEnd,
    );
  }

  roomEnter(user: number, streamer: number, t: number): void {
    this.simpleBehavior(user, streamer, t, EP.roomEnter, "ROOM_ENTER");
  }

  chat(user: number, streamer: number, t: number, text: string): void {
    const trace = this.newTrace();
    const roomId = this.pop.roomId(streamer);
    const status = this.fleet.serve(EP.imSend, t, user, roomId, trace, null, null);
    if (status >= 400) return;
    const rec = this.behaviorRecord(
      user,
      this.fleet.outEnd,
      "CHAT",
      this.pop.uid(this.pop.streamers[streamer] as number),
      roomId,
      { phone: null, method: null, success: true, text },
      trace,
    );
    this.emit(this.fleet.behavior["im-svc"] as SimStream<unknown>, rec, this.fleet.outEnd);
  }

  follow(user: number, streamer: number, t: number, on: boolean): void {
    this.simpleBehavior(user, streamer, t, on ? EP.follow : EP.unfollow, on ? "FOLLOW" : "UNFOLLOW");
  }

  roomLeave(user: number, streamer: number, t: number): void {
    this.simpleBehavior(user, streamer, t, EP.roomLeave, "ROOM_LEAVE");
  }

  roomInfo(user: number, streamer: number, t: number): void {
    this.browse(user, EP.roomInfo, t, this.pop.roomId(streamer));
  }

  roomList(user: number, t: number): void {
    this.browse(user, EP.roomList, t);
  }

  like(user: number, streamer: number, t: number): void {
    this.simpleBehavior(user, streamer, t, EP.like, "LIKE");
  }

  share(user: number, streamer: number, t: number): void {
    this.simpleBehavior(user, streamer, t, EP.share, "SHARE");
  }

  giftList(user: number, t: number): void {
    this.browse(user, EP.giftList, t);
  }

  balance(user: number, t: number): void {
    this.browse(user, EP.balance, t);
  }

  /** A request to `ep` whose service records a behaviour event of `type` about the streamer. */
  private simpleBehavior(user: number, streamer: number, t: number, ep: number, type: BehaviorEvent["type"]): void {
    const trace = this.newTrace();
    const roomId = this.pop.roomId(streamer);
    const status = this.fleet.serve(ep, t, user, roomId, trace, null, null);
    if (status >= 400) return;
    const target = this.pop.uid(this.pop.streamers[streamer] as number);
    this.emit(
      this.fleet.behavior[(ENDPOINTS[ep] as (typeof ENDPOINTS)[number]).service] as SimStream<unknown>,
      this.behaviorRecord(
        user,
        this.fleet.outEnd,
        type,
        target,
        type === "FOLLOW" || type === "UNFOLLOW" ? null : roomId,
        null,
        trace,
      ),
      this.fleet.outEnd,
    );
  }

  private browse(user: number, ep: number, t: number, roomId: number | null = null): void {
    this.fleet.serve(ep, t, user, roomId, this.newTrace(), null, null);
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
    const status = this.fleet.serve(
      EP.giftSend,
      t,
      user,
      roomId,
      trace,
      null,
      null,
      enough ? null : "BALANCE_NOT_ENOUGH",
    );
    if (status >= 400 || !enough) return 0;
    pop.balance[user] = balance - price;
    const streamerUser = pop.streamers[streamer] as number;
    pop.balance[streamerUser] = (pop.balance[streamerUser] as number) + price;
    this.emit(
      this.fleet.coin["gift-svc"] as SimStream<unknown>,
      this.coinRecord(user, this.fleet.outEnd, "GIFT", price, pop.uid(streamerUser), roomId, giftId, null, trace),
      this.fleet.outEnd,
    );
    return price;
  }

  recharge(user: number, t: number, cardToken: string, yuan: number): boolean {
    const trace = this.newTrace();
    const status = this.fleet.serve(EP.recharge, t, user, null, trace, null, null);
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
      this.fleet.coin["pay-svc"] as SimStream<unknown>,
      this.coinRecord(
        user,
        this.fleet.outEnd,
        "RECHARGE",
        coins,
        null,
        null,
        null,
        { cardToken, channel, cents: yuan * 100 },
        trace,
      ),
      this.fleet.outEnd,
    );
    return true;
  }

  chargeback(user: number, t: number, cardToken: string, yuan: number): void {
    const trace = this.newTrace();
    this.fleet.serve(EP.notify, t, null, null, trace, null, null);
    const coins = Math.min(yuan * 10, Math.max(0, this.pop.balance[user] as number));
    this.pop.balance[user] = (this.pop.balance[user] as number) - coins;
    this.emit(
      this.fleet.coin["pay-svc"] as SimStream<unknown>,
      this.coinRecord(
        user,
        this.fleet.outEnd,
        "CHARGEBACK",
        yuan * 10,
        null,
        null,
        null,
        { cardToken, channel: "card", cents: yuan * 100 },
        trace,
      ),
      this.fleet.outEnd,
    );
  }

  withdraw(streamerUser: number, t: number): void {
    const trace = this.newTrace();
    const balance = this.pop.balance[streamerUser] as number;
    if (balance < 100) return;
    if (this.fleet.serve(EP.withdraw, t, streamerUser, null, trace, null, null) >= 400) return;
    const amount = Math.floor(balance * 0.8);
    this.pop.balance[streamerUser] = balance - amount;
    this.emit(
      this.fleet.coin["pay-svc"] as SimStream<unknown>,
      this.coinRecord(streamerUser, this.fleet.outEnd, "WITHDRAW", amount, null, null, null, null, trace),
      this.fleet.outEnd,
    );
  }

  refund(user: number, streamer: number, t: number): void {
    const trace = this.newTrace();
    this.fleet.serve(EP.notify, t, null, null, trace, null, null);
    const amount = GIFTS[1]?.[1] as number;
    this.pop.balance[user] = (this.pop.balance[user] as number) + amount;
    this.emit(
      this.fleet.coin["pay-svc"] as SimStream<unknown>,
      this.coinRecord(
        user,
        this.fleet.outEnd,
        "REFUND",
        amount,
        this.pop.uid(this.pop.streamers[streamer] as number),
        null,
        null,
        null,
        trace,
      ),
      this.fleet.outEnd,
    );
  }

  deviceReport(device: number, user: number | null, t: number): void {
    const trace = this.newTrace();
    this.fleet.serve(EP.sdkReport, t, user, null, trace, null, null);
    const ip = user === null ? homeIp(this.rng) : (this.pop.homeIp[user] as string);
    const report = this.pop.deviceReport(
      device,
      this.ids.next("r-"),
      Math.floor(this.fleet.outEnd),
      user === null ? null : this.pop.uid(user),
      ip,
    );
    this.emit(this.fleet.device as SimStream<unknown>, report, this.fleet.outEnd);
  }

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
      id: this.ids.next("b-"),
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
      id: this.ids.next("c-"),
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
