// Genuine traffic that looks like fraud: the hard negatives a rule pack must leave alone, each
// recorded in the ground truth as a `lookalike` of the category it resembles, with its entities.
// - whales: old accounts recharging big with their one card, gifting nearly all to a favourite
//   small streamer (the coin brushers' kind of target);
// - campus_nat: a campus behind one NAT address following a popular streamer during an event, a
//   few students signing up on the spot;
// - cheap_devices: cheap phones and tablets tripping single emulator checks, some shared by two
//   members of a family;
// - busybox_roms: stock vendor ROMs shipping busybox, some signed with test-keys;
// - contact_once: a user giving a friend a phone number or WeChat id once in chat;
// - virtual_number_users: genuine sign-ups with virtual-operator numbers, at home on their own phone.
// finish() adds the population's own look-alikes (its cheap, busybox and virtual-number users).
import type { UserActions } from "./actions.ts";
import type { GroundTruth } from "./ground-truth.ts";
import {
  CHAT_PHRASES,
  contactOnce,
  DEVICE_BUSYBOX,
  DEVICE_CHEAP,
  DEVICE_EMULATOR,
  DEVICE_JAILBROKEN,
  DEVICE_ROOTED,
  homeIp,
  isVirtualNumber,
  legitPhone,
  type Population,
  phoneNumber,
  VIRTUAL_PHONE_PREFIXES,
} from "./population.ts";
import type { Rng } from "./random.ts";
import { offsetMs, type Scenario } from "./scenario.ts";

/** What campaigns and look-alikes act through: the platform's user actions, on the traffic generator's clock. */
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

interface Lookalike {
  id: string;
  look: string;
  category: string;
  start: number;
  end: number;
  entities: Record<string, Set<string | number>>;
}

export class Lookalikes {
  private readonly looks: Lookalike[] = [];

  constructor(
    private readonly gen: CampaignHost,
    private readonly rng: Rng,
    scenario: Scenario,
    intensity: number,
    private readonly truth: GroundTruth,
  ) {
    const opts = gen.opts;
    const scale = (n: number) => Math.max(1, Math.round(n * Math.max(1, intensity)));
    const window = (c: { at: string; for: string }) => {
      const start = opts.start + offsetMs(c.at, opts.runMs);
      return [start, start + offsetMs(c.for, opts.runMs)] as const;
    };
    const l = scenario.lookalikes;
    if (l.whales) this.whales(...window(l.whales), scale(l.whales.accounts));
    if (l.campus_nat) this.campus(...window(l.campus_nat), scale(l.campus_nat.users));
    if (l.cheap_devices) this.cheapDevices(...window(l.cheap_devices), scale(l.cheap_devices.devices));
    if (l.busybox_roms) this.busybox(...window(l.busybox_roms), scale(l.busybox_roms.devices));
    if (l.contact_once) this.contactOnce(...window(l.contact_once), scale(l.contact_once.users));
    if (l.virtual_number_users)
      this.virtualNumberUsers(...window(l.virtual_number_users), scale(l.virtual_number_users.users));
  }

  /** Whether the scenario asked for any look-alike. */
  get any(): boolean {
    return this.looks.length > 0;
  }

  private look(look: string, category: string, start: number, end: number): Lookalike {
    const x: Lookalike = { id: `lookalike-${this.looks.length + 1}`, look, category, start, end, entities: {} };
    this.looks.push(x);
    return x;
  }

  private note(x: Lookalike, type: string, value: string | number): void {
    x.entities[type] ??= new Set();
    (x.entities[type] as Set<string | number>).add(value);
  }

  /** An existing, ordinary user (not a streamer), with a phone of their own. */
  private ordinaryUser(): number {
    const pop = this.gen.pop;
    for (;;) {
      const u = pop.streamers.length + this.rng.int(Math.max(1, pop.users - pop.streamers.length));
      const flags = pop.deviceFlags[pop.device[u] as number] as number;
      if (!(flags & (DEVICE_EMULATOR | DEVICE_ROOTED | DEVICE_JAILBROKEN | DEVICE_CHEAP | DEVICE_BUSYBOX))) return u;
    }
  }

  private at(start: number, end: number): number {
    return start + (end - start) * this.rng.next();
  }

  private whales(start: number, end: number, accounts: number): void {
    const gen = this.gen;
    const pop = gen.pop;
    const x = this.look("whale_one_card", "coin_brushing", start, end);
    for (let a = 0; a < accounts; a++) {
      const user = this.ordinaryUser();
      // A favourite among the small streamers coin brushers aim at.
      const streamer = Math.min(pop.streamers.length - 1, 300 + this.rng.int(200));
      this.note(x, "uid", pop.uid(user));
      this.note(x, "streamer", pop.uid(pop.streamers[streamer] as number));
      const card = `card_${this.rng.hex(10)}`;
      const recharges = this.rng.range(2, 5);
      for (let k = 0; k < recharges; k++) {
        const t = start + ((end - start) * (k + this.rng.next() * 0.5)) / recharges;
        gen.at(t, () => {
          gen.actions.recharge(user, gen.now, card, this.rng.pick([648, 1298, 3000]));
          for (let g = 0; g < 3; g++)
            gen.at(gen.now + 5_000 + this.rng.int(20_000), () => {
              const amount = Math.floor(((pop.balance[user] as number) * 0.9) / 3);
              if (amount > 0) gen.actions.gift(user, streamer, gen.now, amount);
            });
        });
      }
    }
  }

  private campus(start: number, end: number, users: number): void {
    const gen = this.gen;
    const pop = gen.pop;
    const x = this.look("campus_nat", "fake_followers", start, end);
    const streamer = this.rng.int(Math.min(10, pop.streamers.length)); // a popular streamer
    this.note(x, "streamer", pop.uid(pop.streamers[streamer] as number));
    const nat = homeIp(this.rng).includes(":") ? "111.200.5.1" : homeIp(this.rng);
    for (let i = 0; i < users; i++) {
      const t = this.at(start, end);
      const fresh = this.rng.chance(0.2); // signing up on the spot, each on their own phone
      gen.at(t, () => {
        let user: number;
        if (fresh) {
          user = pop.addUser(this.rng.chance(0.7) ? 0 : 1, nat);
          gen.actions.register(user, gen.now, legitPhone(this.rng), "sms");
        } else {
          user = this.ordinaryUser();
          pop.homeIp[user] = nat;
        }
        this.note(x, "uid", pop.uid(user));
        this.note(x, "device", pop.deviceId[pop.device[user] as number] as string);
        this.note(x, "ip", nat);
        gen.at(gen.now + 2_000 + this.rng.int(10_000), () => {
          gen.actions.follow(user, streamer, gen.now, true);
          gen.at(gen.now + 500 + this.rng.int(5_000), () => gen.actions.roomEnter(user, streamer, gen.now));
          if (this.rng.chance(0.4))
            gen.at(gen.now + 10_000 + this.rng.int(20_000), () =>
              gen.actions.chat(user, streamer, gen.now, this.rng.pick(CHAT_PHRASES)),
            );
        });
      });
    }
  }

  private cheapDevices(start: number, end: number, devices: number): void {
    const gen = this.gen;
    const pop = gen.pop;
    const x = this.look("cheap_device", "emulator", start, end);
    for (let i = 0; i < devices; i++) {
      const t = this.at(start, end);
      const owner = this.ordinaryUser();
      const device = pop.device[owner] as number;
      if (pop.isIos(device)) continue;
      pop.markDevice(device, DEVICE_CHEAP);
      // A family tablet: a second member signs in on it too.
      const family = this.rng.chance(0.25) ? this.ordinaryUser() : -1;
      if (family >= 0) pop.device[family] = device;
      this.note(x, "device", pop.deviceId[device] as string);
      for (const user of family >= 0 ? [owner, family] : [owner]) {
        this.note(x, "uid", pop.uid(user));
        gen.at(t + this.rng.int(60_000), () => {
          gen.actions.deviceReport(device, user, gen.now);
          gen.at(gen.now + 1_000 + this.rng.int(5_000), () => gen.actions.login(user, gen.now, "password"));
          const streamer = this.rng.int(Math.min(100, pop.streamers.length));
          gen.at(gen.now + 5_000 + this.rng.int(20_000), () => gen.actions.roomEnter(user, streamer, gen.now));
        });
      }
    }
  }

  private busybox(start: number, end: number, devices: number): void {
    const gen = this.gen;
    const pop = gen.pop;
    const x = this.look("busybox_stock_rom", "root_jailbreak", start, end);
    for (let i = 0; i < devices; i++) {
      const t = this.at(start, end);
      const user = this.ordinaryUser();
      const device = pop.device[user] as number;
      if (pop.isIos(device)) continue;
      pop.markDevice(device, DEVICE_BUSYBOX);
      this.note(x, "device", pop.deviceId[device] as string);
      this.note(x, "uid", pop.uid(user));
      gen.at(t, () => {
        gen.actions.deviceReport(device, user, gen.now);
        gen.at(gen.now + 1_000 + this.rng.int(5_000), () => gen.actions.login(user, gen.now, "password"));
      });
    }
  }

  private contactOnce(start: number, end: number, users: number): void {
    const gen = this.gen;
    const pop = gen.pop;
    const x = this.look("contact_once", "spam", start, end);
    for (let i = 0; i < users; i++) {
      const t = this.at(start, end);
      const user = this.ordinaryUser();
      const streamer = this.rng.int(Math.min(300, pop.streamers.length));
      this.note(x, "uid", pop.uid(user));
      gen.at(t, () => {
        gen.actions.roomEnter(user, streamer, gen.now);
        gen.at(gen.now + 3_000 + this.rng.int(20_000), () =>
          gen.actions.chat(user, streamer, gen.now, contactOnce(this.rng, phoneNumber(this.rng, "138"))),
        );
      });
    }
  }

  private virtualNumberUsers(start: number, end: number, users: number): void {
    const gen = this.gen;
    const pop = gen.pop;
    const x = this.look("virtual_number_user", "fake_phone", start, end);
    for (let i = 0; i < users; i++) {
      const t = this.at(start, end);
      gen.at(t, () => {
        const user = pop.addUser(this.rng.chance(0.72) ? 0 : 1, homeIp(this.rng));
        this.note(x, "uid", pop.uid(user));
        gen.actions.register(user, gen.now, phoneNumber(this.rng, this.rng.pick(VIRTUAL_PHONE_PREFIXES)), "sms");
        const streamer = this.rng.int(Math.min(100, pop.streamers.length));
        gen.at(gen.now + 10_000 + this.rng.int(30_000), () => gen.actions.roomEnter(user, streamer, gen.now));
        gen.at(gen.now + 20_000 + this.rng.int(60_000), () => gen.actions.follow(user, streamer, gen.now, true));
      });
    }
  }

  /** Writes the look-alikes that started, and the population's own (cheap and busybox phones that reported, genuine virtual numbers). */
  finish(lastTime: number, campaignUsers: ReadonlySet<number>): void {
    const pop = this.gen.pop;
    const start = this.gen.opts.start;
    const natural = {
      cheap: this.look("cheap_device", "emulator", start, lastTime),
      busybox: this.look("busybox_stock_rom", "root_jailbreak", start, lastTime),
      virtual: this.look("virtual_number_user", "fake_phone", start, lastTime),
    };
    for (let d = 0; d < pop.devices; d++) {
      if (!pop.deviceReported[d]) continue;
      const flags = pop.deviceFlags[d] as number;
      if (flags & (DEVICE_EMULATOR | DEVICE_ROOTED | DEVICE_JAILBROKEN)) continue;
      if (flags & DEVICE_CHEAP) this.note(natural.cheap, "device", pop.deviceId[d] as string);
      if (flags & DEVICE_BUSYBOX) this.note(natural.busybox, "device", pop.deviceId[d] as string);
    }
    for (let u = 0; u < pop.users; u++) {
      const phone = pop.phone[u];
      if (phone !== undefined && !campaignUsers.has(pop.uid(u)) && isVirtualNumber(phone))
        this.note(natural.virtual, "uid", pop.uid(u));
    }
    for (const x of this.looks) {
      if (x.start >= lastTime || Object.keys(x.entities).length === 0) continue;
      this.truth.add({
        kind: "lookalike",
        id: x.id,
        look: x.look,
        category: x.category,
        start: x.start,
        end: Math.min(x.end, lastTime),
        entities: Object.fromEntries(Object.entries(x.entities).map(([k, v]) => [k, [...v]])),
      });
    }
  }
}
