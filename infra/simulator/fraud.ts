// Fraud campaigns mixed into the traffic, each built from the platform's ordinary actions (so they
// look like traffic, not like markers), each recorded in the ground truth with every entity it used:
// - virtual_phone_registration: accounts registered with virtual-operator numbers (170/171/162/165/167),
//   an SMS farm reusing each number for several accounts, typed differently each time;
// - emulator_farm: emulators (generic builds, goldfish/ranchu hardware, no IMEI, full battery on a
//   charger) each registering and driving several accounts from one datacenter /24;
// - rooted_devices: genuine-looking users whose phones are rooted (su, Magisk) or jailbroken (Cydia);
// - coin_brushing: new accounts recharging with many different cards, then gifting nearly all the
//   coins to one streamer within the campaign; some cards are charged back at the end;
// - fake_followers: a burst of accounts from a few devices and one /24 following one streamer and
//   crowding into the room;
// - chat_spam: accounts posting contact details, links and forbidden words across many rooms.
import type { UserActions } from "./actions.ts";
import type { GroundTruth } from "./ground-truth.ts";
import {
  DEVICE_EMULATOR,
  DEVICE_JAILBROKEN,
  DEVICE_ROOTED,
  datacenterSubnet,
  formatPhone,
  legitPhone,
  type Population,
  spamMessage,
  VIRTUAL_PHONE_PREFIXES,
} from "./population.ts";
import type { Rng } from "./random.ts";
import { offsetMs, type Scenario } from "./scenario.ts";

/** What campaigns act through: the platform's user actions, on the traffic generator's clock. */
export interface CampaignHost {
  readonly opts: { readonly start: number; readonly runMs: number };
  readonly rng: Rng;
  readonly pop: Population;
  readonly actions: UserActions;
  /** The simulated time now. */
  readonly now: number;
  /** Runs `run` at simulated time t. */
  at(t: number, run: () => void): void;
}

type Entities = Record<string, Set<string | number>>;

interface Campaign {
  id: string;
  name: string;
  start: number;
  end: number;
  entities: Entities;
  params: Record<string, number | string>;
}

export class FraudCampaigns {
  private readonly campaigns: Campaign[] = [];
  private readonly rng: Rng;

  constructor(
    private readonly gen: CampaignHost,
    scenario: Scenario,
    intensity: number,
    private readonly truth: GroundTruth,
  ) {
    this.rng = gen.rng.fork();
    if (intensity <= 0) return;
    const opts = gen.opts;
    const scale = (n: number) => Math.max(1, Math.round(n * intensity));
    const window = (c: { at: string; for: string }) => {
      const start = opts.start + offsetMs(c.at, opts.runMs);
      return [start, start + offsetMs(c.for, opts.runMs)] as const;
    };
    const f = scenario.fraud;
    if (f.virtual_phone_registration)
      this.virtualPhones(
        ...window(f.virtual_phone_registration),
        scale(f.virtual_phone_registration.accounts),
        scale(f.virtual_phone_registration.phones),
      );
    if (f.emulator_farm)
      this.emulatorFarm(...window(f.emulator_farm), scale(f.emulator_farm.devices), f.emulator_farm.accountsPerDevice);
    if (f.rooted_devices) this.rootedDevices(...window(f.rooted_devices), scale(f.rooted_devices.devices));
    if (f.coin_brushing)
      this.coinBrushing(...window(f.coin_brushing), scale(f.coin_brushing.accounts), f.coin_brushing.cardsPerAccount);
    if (f.fake_followers)
      this.fakeFollowers(
        ...window(f.fake_followers),
        scale(f.fake_followers.accounts),
        scale(f.fake_followers.devices),
      );
    if (f.chat_spam) this.chatSpam(...window(f.chat_spam), scale(f.chat_spam.accounts), f.chat_spam.messages);
  }

  private campaign(name: string, start: number, end: number, params: Record<string, number | string>): Campaign {
    const c: Campaign = { id: `fraud-${this.campaigns.length + 1}`, name, start, end, entities: {}, params };
    this.campaigns.push(c);
    return c;
  }

  /** A campaign aimed at one streamer, of popularity rank in [fromRank, fromRank + spread): noted with its room. */
  private aimedCampaign(
    name: string,
    start: number,
    end: number,
    fromRank: number,
    spread: number,
    params: Record<string, number>,
  ): { c: Campaign; streamer: number } {
    const pop = this.gen.pop;
    const streamer = Math.min(pop.streamers.length - 1, fromRank + this.rng.int(spread));
    const uid = pop.uid(pop.streamers[streamer] as number);
    const c = this.campaign(name, start, end, { ...params, streamerUid: uid });
    this.note(c, "streamer", uid);
    this.note(c, "room", pop.roomId(streamer));
    return { c, streamer };
  }

  private note(c: Campaign, type: string, value: string | number): void {
    c.entities[type] ??= new Set();
    (c.entities[type] as Set<string | number>).add(value);
  }

  /** A new account on a given device and network, noted as the campaign's. */
  private newAccount(c: Campaign, device: number, ip: string): number {
    const pop = this.gen.pop;
    const user = pop.addUser(0, ip, device);
    this.note(c, "uid", pop.uid(user));
    this.note(c, "device", pop.deviceId[device] as string);
    this.note(c, "ip", ip);
    return user;
  }

  private farmIp(subnet: string): string {
    return `${subnet}.${this.rng.range(2, 254)}`;
  }

  private spread(start: number, end: number, i: number, n: number): number {
    return start + ((end - start) * (i + this.rng.next())) / n;
  }

  private virtualPhones(start: number, end: number, accounts: number, phoneCount: number): void {
    const c = this.campaign("virtual_phone_registration", start, end, { accounts, phones: phoneCount });
    const gen = this.gen;
    const digits = Array.from(
      { length: phoneCount },
      () => `${this.rng.pick(VIRTUAL_PHONE_PREFIXES)}${String(this.rng.range(0, 99_999_999)).padStart(8, "0")}`,
    );
    const subnet = datacenterSubnet(this.rng);
    const devices = Array.from({ length: Math.max(1, Math.ceil(accounts / 6)) }, () =>
      gen.pop.addDevice(0, "android", 0),
    );
    for (let i = 0; i < accounts; i++) {
      const t = this.spread(start, end, i, accounts);
      const phone = digits[i % phoneCount] as string;
      gen.at(t, () => {
        const user = this.newAccount(c, devices[i % devices.length] as number, this.farmIp(subnet));
        // The farm's number, typed the way each form got it: +86, spaces, dashes.
        const typed = formatPhone(this.rng, phone);
        this.note(c, "phone", phone);
        gen.actions.register(user, t, typed, "sms");
        gen.at(t + 5_000 + this.rng.int(30_000), () => gen.actions.login(user, gen.now, "sms"));
        gen.at(t + 40_000 + this.rng.int(60_000), () =>
          gen.actions.roomEnter(user, this.rng.int(gen.pop.streamers.length), gen.now),
        );
      });
    }
  }

  private emulatorFarm(start: number, end: number, deviceCount: number, perDevice: number): void {
    const c = this.campaign("emulator_farm", start, end, { devices: deviceCount, accountsPerDevice: perDevice });
    const gen = this.gen;
    const subnet = datacenterSubnet(this.rng);
    for (let d = 0; d < deviceCount; d++) {
      const device = gen.pop.addDevice(0, "android", DEVICE_EMULATOR);
      for (let k = 0; k < perDevice; k++) {
        const t = this.spread(start, end, d * perDevice + k, deviceCount * perDevice);
        gen.at(t, () => {
          const user = this.newAccount(c, device, this.farmIp(subnet));
          gen.actions.register(
            user,
            t,
            this.rng.chance(0.5)
              ? legitPhone(this.rng)
              : formatPhone(
                  this.rng,
                  `${this.rng.pick(VIRTUAL_PHONE_PREFIXES)}${String(this.rng.range(0, 99_999_999)).padStart(8, "0")}`,
                ),
            "sms",
          );
          const streamer = this.rng.int(Math.min(50, gen.pop.streamers.length));
          gen.at(t + 3_000 + this.rng.int(10_000), () => gen.actions.roomEnter(user, streamer, gen.now));
          gen.at(t + 15_000 + this.rng.int(20_000), () => gen.actions.follow(user, streamer, gen.now, true));
          gen.at(t + 30_000 + this.rng.int(30_000), () => gen.actions.deviceReport(device, user, gen.now));
        });
      }
    }
  }

  private rootedDevices(start: number, end: number, count: number): void {
    const c = this.campaign("rooted_devices", start, end, { devices: count });
    const gen = this.gen;
    const pop = gen.pop;
    for (let i = 0; i < count; i++) {
      const t = this.spread(start, end, i, count);
      const user = pop.streamers.length + this.rng.int(Math.max(1, pop.users - pop.streamers.length));
      gen.at(t, () => {
        const device = pop.device[user] as number;
        pop.deviceFlags[device] =
          (pop.deviceFlags[device] as number) | (pop.isIos(device) ? DEVICE_JAILBROKEN : DEVICE_ROOTED);
        this.note(c, "device", pop.deviceId[device] as string);
        this.note(c, "uid", pop.uid(user));
        gen.actions.deviceReport(device, user, t);
        gen.at(t + 2_000 + this.rng.int(20_000), () => gen.actions.login(user, gen.now, "password"));
      });
    }
  }

  private coinBrushing(start: number, end: number, accounts: number, cards: number): void {
    const gen = this.gen;
    const pop = gen.pop;
    // A small streamer, whose income jumps.
    const { c, streamer } = this.aimedCampaign("coin_brushing", start, end, 300, 200, {
      accounts,
      cardsPerAccount: cards,
    });
    const subnet = datacenterSubnet(this.rng);
    const devices = Array.from({ length: 3 }, () => pop.addDevice(0, "android", 0));
    const span = end - start;
    for (let a = 0; a < accounts; a++) {
      const t0 = start + span * 0.3 * this.rng.next();
      gen.at(t0, () => {
        const user = this.newAccount(c, devices[a % devices.length] as number, this.farmIp(subnet));
        gen.actions.register(user, t0, legitPhone(this.rng), "sms");
        const tokens: string[] = [];
        // Many cards, one after another: stolen or borrowed instruments.
        for (let k = 0; k < cards; k++) {
          const token = `card_${this.rng.hex(10)}`;
          tokens.push(token);
          const tr = t0 + (span * 0.3 * (k + 1)) / (cards + 1);
          gen.at(tr, () => {
            if (gen.actions.recharge(user, gen.now, token, this.rng.pick([328, 648, 1298])))
              this.note(c, "card", token);
          });
        }
        // Then nearly everything goes to the one streamer.
        // A bot retries a gift that failed (an incident, a timeout) a few seconds later.
        const gifts = 6;
        const attempt = (g: number, tries: number) => () => {
          const amount = Math.floor(
            Math.floor((pop.balance[user] as number) / (gifts - g)) * (g === gifts - 1 ? 0.9 : 1),
          );
          if (amount > 0 && gen.actions.gift(user, streamer, gen.now, amount) === 0 && tries > 0)
            gen.at(gen.now + 3_000 + this.rng.int(5_000), attempt(g, tries - 1));
        };
        for (let g = 0; g < gifts; g++) gen.at(t0 + span * (0.62 + (0.3 * g) / gifts), attempt(g, 3));
        // Some of those cards come back as chargebacks.
        for (const token of tokens) {
          if (this.rng.chance(0.3)) gen.at(t0 + span * 0.97, () => gen.actions.chargeback(user, gen.now, token, 328));
        }
      });
    }
  }

  private fakeFollowers(start: number, end: number, accounts: number, deviceCount: number): void {
    const gen = this.gen;
    const pop = gen.pop;
    const { c, streamer } = this.aimedCampaign("fake_followers", start, end, 100, 100, {
      accounts,
      devices: deviceCount,
    });
    const subnet = datacenterSubnet(this.rng);
    const devices = Array.from({ length: deviceCount }, () =>
      pop.addDevice(0, "android", this.rng.chance(0.5) ? DEVICE_EMULATOR : 0),
    );
    for (let i = 0; i < accounts; i++) {
      // Bulk-registered first, then all of them follow within a short burst.
      const tr = start + (end - start) * 0.3 * this.rng.next();
      const tf = start + (end - start) * (0.5 + 0.4 * this.rng.next());
      gen.at(tr, () => {
        const user = this.newAccount(c, devices[i % deviceCount] as number, this.farmIp(subnet));
        gen.actions.register(user, tr, legitPhone(this.rng), "one_click");
        gen.at(tf, () => {
          gen.actions.follow(user, streamer, gen.now, true);
          gen.at(gen.now + 500 + this.rng.int(5_000), () => gen.actions.roomEnter(user, streamer, gen.now));
        });
      });
    }
  }

  private chatSpam(start: number, end: number, accounts: number, messages: number): void {
    const gen = this.gen;
    const pop = gen.pop;
    const c = this.campaign("chat_spam", start, end, { accounts, messagesPerAccount: messages });
    const subnet = datacenterSubnet(this.rng);
    for (let a = 0; a < accounts; a++) {
      const t0 = start + (end - start) * 0.2 * this.rng.next();
      gen.at(t0, () => {
        const user = this.newAccount(c, pop.addDevice(0, "android", 0), this.farmIp(subnet));
        gen.actions.register(user, t0, legitPhone(this.rng), "sms");
        for (let m = 0; m < messages; m++) {
          gen.at(this.spread(t0 + 2_000, end, m, messages), () => {
            const streamer = this.rng.int(pop.streamers.length);
            gen.actions.roomEnter(user, streamer, gen.now);
            gen.actions.chat(user, streamer, gen.now + 1_500, spamMessage(this.rng));
            this.note(c, "room", pop.roomId(streamer));
          });
        }
      });
    }
  }

  /** Records each campaign that started, with the entities its actions actually used. */
  finish(lastTime: number): void {
    for (const c of this.campaigns) {
      if (c.start >= lastTime) continue;
      const entities = Object.fromEntries(Object.entries(c.entities).map(([k, v]) => [k, [...v]]));
      this.truth.add({
        kind: "fraud",
        id: c.id,
        campaign: c.name,
        start: c.start,
        end: Math.min(c.end, lastTime),
        entities,
        params: c.params,
      });
    }
  }
}
