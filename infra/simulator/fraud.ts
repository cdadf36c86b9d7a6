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
// Each fraud shows itself in varied ways (seeded): an emulator imitating a real build, a farm on
// residential proxies, a brusher with two cards; look-alikes.ts adds the genuine traffic that looks
// like it. finish() also records, per category, every entity that truly belongs to it.
import type { GroundTruth } from "./ground-truth.ts";
import { type CampaignHost, Lookalikes } from "./look-alikes.ts";
import {
  DEVICE_EMULATOR,
  DEVICE_JAILBROKEN,
  DEVICE_ROOTED,
  datacenterSubnet,
  EMU_HIDES_BATTERY,
  EMU_HIDES_BUILD,
  EMU_HIDES_SENSORS,
  EMU_HIDES_TELEPHONY,
  formatPhone,
  homeIp,
  IOT_PHONE_PREFIXES,
  isVirtualNumber,
  legitPhone,
  spamMessage,
  VIRTUAL_PHONE_PREFIXES,
} from "./population.ts";
import type { Rng } from "./random.ts";
import { offsetMs, type Scenario } from "./scenario.ts";

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
    this.lookalikes = new Lookalikes(gen, this.rng, scenario, intensity, truth);
  }

  private readonly lookalikes: Lookalikes | undefined;

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

  /** Registers a farm account; a bot retries a failed registration a few seconds later (3 times). */
  private register(user: number, t: number, phone: string, method: string, tries = 3): void {
    const gen = this.gen;
    if (!gen.actions.register(user, t, phone, method) && tries > 0)
      gen.at(t + 3_000 + this.rng.int(5_000), () => this.register(user, gen.now, phone, method, tries - 1));
  }

  private farmIp(subnet: string): string {
    return `${subnet}.${this.rng.range(2, 254)}`;
  }

  private spread(start: number, end: number, i: number, n: number): number {
    return start + ((end - start) * (i + this.rng.next())) / n;
  }

  /** A farm account keeps itself alive: a few visits and likes until the campaign ends. */
  private keepAlive(user: number, from: number, end: number, n: number): void {
    const gen = this.gen;
    for (let k = 0; k < n; k++) {
      const t = from + (end - from) * this.rng.next();
      const streamer = this.rng.int(Math.min(200, gen.pop.streamers.length));
      gen.at(t, () => {
        gen.actions.roomEnter(user, streamer, gen.now);
        gen.at(gen.now + 2_000 + this.rng.int(20_000), () => gen.actions.like(user, streamer, gen.now));
      });
    }
  }

  private virtualNumber(): string {
    // Mostly virtual-operator resellers; some IoT numbers, which the farms also buy.
    const prefix = this.rng.chance(0.2) ? this.rng.pick(IOT_PHONE_PREFIXES) : this.rng.pick(VIRTUAL_PHONE_PREFIXES);
    return `${prefix}${String(this.rng.range(0, 10 ** (11 - prefix.length) - 1)).padStart(11 - prefix.length, "0")}`;
  }

  private virtualPhones(start: number, end: number, accounts: number, phoneCount: number): void {
    const c = this.campaign("virtual_phone_registration", start, end, { accounts, phones: phoneCount });
    const gen = this.gen;
    const digits = Array.from({ length: phoneCount }, () => this.virtualNumber());
    const subnet = datacenterSubnet(this.rng);
    // Most accounts come from the farm's phones, a batch at a time on each; some from a phone of their
    // own. Half through the farm's cloud /24, half through residential proxies. Every account shows at
    // least one sign besides its number's range: a shared phone, a cloud address, or an IoT number.
    let device = -1;
    let onDevice = 0;
    let batch = 0;
    for (let i = 0; i < accounts; i++) {
      const t = this.spread(start, end, i, accounts);
      const shared = this.rng.chance(0.65);
      if (shared && onDevice >= batch) {
        device = gen.pop.addDevice(0, "android", 0);
        onDevice = 0;
        batch = this.rng.range(2, 7);
      }
      const cloud = this.rng.chance(0.5);
      let phone = digits[i % phoneCount] as string;
      if (!shared && !cloud && !IOT_PHONE_PREFIXES.some((p) => phone.startsWith(p)))
        phone = `1440${String(this.rng.range(0, 9_999_999)).padStart(7, "0")}`;
      const own = shared ? device : -1;
      if (shared) onDevice++;
      gen.at(t, () => {
        const d = own >= 0 ? own : gen.pop.addDevice(0, "android", 0);
        const user = this.newAccount(c, d, cloud ? this.farmIp(subnet) : homeIp(this.rng));
        // The farm's number, typed the way each form got it: +86, spaces, dashes.
        const typed = formatPhone(this.rng, phone);
        this.note(c, "phone", phone);
        this.register(user, t, typed, "sms");
        gen.at(t + 5_000 + this.rng.int(30_000), () => gen.actions.login(user, gen.now, "sms"));
        gen.at(t + 40_000 + this.rng.int(60_000), () =>
          gen.actions.roomEnter(user, this.rng.int(gen.pop.streamers.length), gen.now),
        );
        this.keepAlive(user, t, end, 3);
      });
    }
  }

  private emulatorFarm(start: number, end: number, deviceCount: number, perDevice: number): void {
    const c = this.campaign("emulator_farm", start, end, { devices: deviceCount, accountsPerDevice: perDevice });
    const gen = this.gen;
    const subnet = datacenterSubnet(this.rng);
    const counts = Array.from({ length: deviceCount }, () => this.rng.range(Math.max(2, perDevice - 5), perDevice + 4));
    const total = counts.reduce((a, b) => a + b, 0);
    let slot = 0;
    for (let d = 0; d < deviceCount; d++) {
      const device = gen.pop.addDevice(0, "android", DEVICE_EMULATOR);
      const n = counts[d] as number;
      // A well-tuned emulator imitates a real phone's build and sensors; then only its telephony or
      // battery, and the accounts it drives, give it away.
      if (n >= 4 && this.rng.chance(0.15))
        gen.pop.deviceVariant[device] =
          EMU_HIDES_BUILD | EMU_HIDES_SENSORS | (this.rng.chance(0.5) ? EMU_HIDES_TELEPHONY : EMU_HIDES_BATTERY);
      const cloud = this.rng.chance(0.7);
      for (let k = 0; k < n; k++) {
        const t = this.spread(start, end, slot++, total);
        gen.at(t, () => {
          const user = this.newAccount(c, device, cloud ? this.farmIp(subnet) : homeIp(this.rng));
          this.register(
            user,
            t,
            this.rng.chance(0.5) ? legitPhone(this.rng) : formatPhone(this.rng, this.virtualNumber()),
            "sms",
          );
          const streamer = this.rng.int(Math.min(50, gen.pop.streamers.length));
          gen.at(t + 3_000 + this.rng.int(10_000), () => gen.actions.roomEnter(user, streamer, gen.now));
          gen.at(t + 15_000 + this.rng.int(20_000), () => gen.actions.like(user, streamer, gen.now));
          gen.at(t + 30_000 + this.rng.int(30_000), () => gen.actions.deviceReport(device, user, gen.now));
          this.keepAlive(user, t, end, 2);
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
        if (!((pop.deviceFlags[device] as number) & (DEVICE_ROOTED | DEVICE_JAILBROKEN)))
          pop.markDevice(device, pop.isIos(device) ? DEVICE_JAILBROKEN : DEVICE_ROOTED);
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
    // Most accounts share a few phones (a ring, at least three accounts a phone); the others have a
    // phone each and then burn through at least three cards. Cards per account vary around `cards`.
    const shared = Array.from({ length: accounts }, () => this.rng.chance(0.7));
    const sharedCount = shared.filter(Boolean).length;
    const ring = sharedCount >= 3 ? Math.max(1, Math.floor(sharedCount / 3)) : 0;
    const devices = Array.from({ length: ring }, () => pop.addDevice(0, "android", 0));
    let nextShared = 0;
    const span = end - start;
    for (let a = 0; a < accounts; a++) {
      const inRing = ring > 0 && (shared[a] as boolean);
      const cardCount = Math.max(inRing ? 2 : 3, this.rng.range(2, Math.max(3, 2 * cards - 2)));
      const device = inRing ? (devices[nextShared++ % ring] as number) : -1;
      const cloud = this.rng.chance(0.5);
      const t0 = start + span * 0.3 * this.rng.next();
      gen.at(t0, () => {
        const d = device >= 0 ? device : pop.addDevice(0, "android", 0);
        const user = this.newAccount(c, d, cloud ? this.farmIp(subnet) : homeIp(this.rng));
        this.register(user, t0, legitPhone(this.rng), "sms");
        const tokens: string[] = [];
        // Many cards, one after another: stolen or borrowed instruments.
        for (let k = 0; k < cardCount; k++) {
          const token = `card_${this.rng.hex(10)}`;
          tokens.push(token);
          const tr = t0 + (span * 0.3 * (k + 1)) / (cardCount + 1);
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
    // A cloud /24, or a residential proxy's /24; few devices (phones or emulators) for many accounts.
    const subnet = this.rng.chance(0.6) ? datacenterSubnet(this.rng) : residentialSubnet(this.rng);
    const devices = Array.from({ length: deviceCount }, () =>
      pop.addDevice(0, "android", this.rng.chance(0.5) ? DEVICE_EMULATOR : 0),
    );
    for (let i = 0; i < accounts; i++) {
      // Bulk-registered first, then all of them follow within a short burst.
      const tr = start + (end - start) * 0.3 * this.rng.next();
      const tf = start + (end - start) * (0.5 + 0.4 * this.rng.next());
      gen.at(tr, () => {
        const user = this.newAccount(c, devices[i % deviceCount] as number, this.farmIp(subnet));
        this.register(user, tr, legitPhone(this.rng), "one_click");
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
      // Some spam every room they can find; others work a handful of rooms over and over.
      const rooms = this.rng.chance(0.6)
        ? null
        : Array.from({ length: this.rng.range(3, 6) }, () => this.rng.int(pop.streamers.length));
      const count = this.rng.range(Math.max(4, Math.floor(messages / 3)), Math.max(4, messages));
      const cloud = this.rng.chance(0.6);
      gen.at(t0, () => {
        const user = this.newAccount(c, pop.addDevice(0, "android", 0), cloud ? this.farmIp(subnet) : homeIp(this.rng));
        this.register(user, t0, legitPhone(this.rng), "sms");
        for (let m = 0; m < count; m++) {
          gen.at(this.spread(t0 + 2_000, end, m, count), () => {
            const streamer = rooms ? (rooms[m % rooms.length] as number) : this.rng.int(pop.streamers.length);
            gen.actions.roomEnter(user, streamer, gen.now);
            gen.actions.chat(user, streamer, gen.now + 1_500, spamMessage(this.rng));
            this.note(c, "room", pop.roomId(streamer));
          });
        }
      });
    }
  }

  /**
   * Records each campaign that started, with the entities its actions actually used; then, per
   * category, every entity that truly belongs to it; then the look-alikes.
   */
  finish(lastTime: number): void {
    const pop = this.gen.pop;
    const campaignUsers = new Set<number>();
    for (const c of this.campaigns) {
      if (c.start >= lastTime) continue;
      for (const u of c.entities.uid ?? []) campaignUsers.add(u as number);
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
    // A run without campaigns or look-alikes (the calm scenario) records none of the categories' facts.
    if (this.campaigns.length === 0 && !this.lookalikes?.any) return;
    const emulators: string[] = [];
    const rooted: string[] = [];
    for (let d = 0; d < pop.devices; d++) {
      if (!pop.deviceReported[d]) continue;
      const flags = pop.deviceFlags[d] as number;
      if (flags & DEVICE_EMULATOR) emulators.push(pop.deviceId[d] as string);
      else if (flags & (DEVICE_ROOTED | DEVICE_JAILBROKEN)) rooted.push(pop.deviceId[d] as string);
    }
    const virtual = [...campaignUsers].filter((uid) => {
      const phone = pop.phone[uid - pop.uidBase];
      return phone !== undefined && isVirtualNumber(phone);
    });
    this.truth.add({
      kind: "positives",
      category: "emulator",
      entity: "device",
      ids: emulators,
      why: "every emulator that sent a device report",
    });
    this.truth.add({
      kind: "positives",
      category: "root_jailbreak",
      entity: "device",
      ids: rooted,
      why: "every rooted or jailbroken phone that sent a device report, a campaign's or not",
    });
    this.truth.add({
      kind: "positives",
      category: "fake_phone",
      entity: "uid",
      ids: virtual,
      why: "every campaign account with a virtual-operator or IoT number",
    });
    this.lookalikes?.finish(lastTime, campaignUsers);
  }
}

/** A /24 of a home ISP, rented as residential proxies. */
function residentialSubnet(rng: Rng): string {
  for (;;) {
    const ip = homeIp(rng);
    if (!ip.includes(":")) return ip.split(".").slice(0, 3).join(".");
  }
}
