// What happens during a simulated run besides normal traffic: incidents, hot events and fraud
// campaigns. A scenario is YAML (or a named preset); its times are shares of the run ("25%") or
// offsets ("90s", "10m"), so one scenario fits a 60 s test and an hour-long demo alike.
import { readFileSync } from "node:fs";
import { z } from "zod";
import { ConfigError, parseYamlConfig, validateConfig } from "../../schemas/config/yaml-config.ts";
import { ENDPOINTS, SERVICES } from "./platform.ts";

const When = z
  .string()
  .regex(/^(\d+(\.\d+)?%|\d+(ms|s|m|h))$/, 'a share of the run such as "25%" or an offset such as "90s"');
const serviceNames = SERVICES.map((s) => s.name) as [string, ...string[]];

const Incident = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("latency_spike"),
    service: z.enum(serviceNames),
    endpoint: z.string(),
    at: When,
    for: When,
    /** Latency is multiplied by this. */
    factor: z.number().min(1).default(8),
  }),
  z.strictObject({
    type: z.literal("error_burst"),
    service: z.enum(serviceNames),
    endpoint: z.string(),
    at: When,
    for: When,
    /** Share of requests answered 5xx while it lasts. */
    errorRate: z.number().min(0).max(1).default(0.3),
  }),
  z.strictObject({
    type: z.literal("dependency_slowdown"),
    /** Every endpoint of this service slows down, and so does every caller waiting on it. */
    service: z.enum(serviceNames),
    at: When,
    for: When,
    addedMs: z.number().min(1).default(900),
  }),
]);

const HotEvent = z.strictObject({
  at: When,
  for: When,
  /** Time to reach full strength; a celebrity's audience arrives within a minute. */
  ramp: When.default("60s"),
  /** The room's traffic at full strength, as a multiple of its normal traffic. */
  multiplier: z.number().min(1).default(100),
  /** Which room: its popularity rank (1 = the most popular). */
  roomRank: z.number().int().min(1).default(8),
});

const Campaign = z.strictObject({ at: When, for: When });
const Fraud = z
  .strictObject({
    virtual_phone_registration: Campaign.extend({
      accounts: z.number().int().min(1).default(60),
      phones: z.number().int().min(1).default(20),
    }).optional(),
    emulator_farm: Campaign.extend({
      devices: z.number().int().min(1).default(12),
      accountsPerDevice: z.number().int().min(1).default(8),
    }).optional(),
    rooted_devices: Campaign.extend({ devices: z.number().int().min(1).default(40) }).optional(),
    coin_brushing: Campaign.extend({
      accounts: z.number().int().min(1).default(15),
      cardsPerAccount: z.number().int().min(1).default(5),
    }).optional(),
    fake_followers: Campaign.extend({
      accounts: z.number().int().min(1).default(200),
      devices: z.number().int().min(1).default(20),
    }).optional(),
    chat_spam: Campaign.extend({
      accounts: z.number().int().min(1).default(10),
      messages: z.number().int().min(1).default(30),
    }).optional(),
  })
  .prefault({});

const Lookalike = z.strictObject({ at: When, for: When });
/** Genuine traffic that looks like fraud: what a rule pack must not catch. */
const Lookalikes = z
  .strictObject({
    /** Old accounts recharging big with their one card and gifting a favourite small streamer. */
    whales: Lookalike.extend({ accounts: z.number().int().min(1).default(8) }).optional(),
    /** A campus or office behind one NAT following a popular streamer during an event (some sign up on the spot). */
    campus_nat: Lookalike.extend({ users: z.number().int().min(1).default(60) }).optional(),
    /** Cheap phones and tablets (few sensors, no SIM, on a charger), some shared by two family members. */
    cheap_devices: Lookalike.extend({ devices: z.number().int().min(1).default(30) }).optional(),
    /** Stock vendor ROMs shipping busybox, some signed with test-keys. */
    busybox_roms: Lookalike.extend({ devices: z.number().int().min(1).default(20) }).optional(),
    /** Users giving a friend their number or WeChat id once in chat. */
    contact_once: Lookalike.extend({ users: z.number().int().min(1).default(15) }).optional(),
    /** Genuine sign-ups with virtual-operator numbers, at home on their own phone. */
    virtual_number_users: Lookalike.extend({ users: z.number().int().min(1).default(20) }).optional(),
  })
  .prefault({});

export const ScenarioSchema = z
  .strictObject({
    description: z.string().default(""),
    incidents: z.array(Incident).default([]),
    hotEvents: z.array(HotEvent).default([]),
    fraud: Fraud,
    lookalikes: Lookalikes,
  })
  .superRefine((s, ctx) => {
    s.incidents.forEach((inc, i) => {
      if ("endpoint" in inc && !ENDPOINTS.some((e) => e.service === inc.service && e.path === inc.endpoint)) {
        const known = ENDPOINTS.filter((e) => e.service === inc.service).map((e) => e.path);
        ctx.addIssue({
          code: "custom",
          path: ["incidents", i, "endpoint"],
          message: `${inc.service} has no endpoint ${inc.endpoint} (it has ${known.join(", ")})`,
        });
      }
    });
  });

export type Scenario = z.output<typeof ScenarioSchema>;
export type IncidentSpec = z.output<typeof Incident>;
export type FraudKind = keyof Scenario["fraud"];
export type LookalikeKind = keyof Scenario["lookalikes"];

const DEFAULT: z.input<typeof ScenarioSchema> = {
  description: "a normal evening with three incidents, a celebrity going live, and every fraud campaign",
  incidents: [
    { type: "latency_spike", service: "gift-svc", endpoint: "/gift/send", at: "20%", for: "10%", factor: 8 },
    { type: "error_burst", service: "room-svc", endpoint: "/room/{id}/enter", at: "45%", for: "8%", errorRate: 0.3 },
    { type: "dependency_slowdown", service: "pay-svc", at: "70%", for: "12%", addedMs: 900 },
  ],
  hotEvents: [{ at: "30%", for: "40%", ramp: "60s", multiplier: 100, roomRank: 8 }],
  fraud: {
    virtual_phone_registration: { at: "5%", for: "60%" },
    emulator_farm: { at: "10%", for: "60%" },
    rooted_devices: { at: "0%", for: "90%" },
    coin_brushing: { at: "15%", for: "70%" },
    fake_followers: { at: "55%", for: "10%" },
    chat_spam: { at: "30%", for: "50%" },
  },
  lookalikes: {
    whales: { at: "10%", for: "80%" },
    campus_nat: { at: "50%", for: "15%" },
    cheap_devices: { at: "0%", for: "90%" },
    busybox_roms: { at: "0%", for: "90%" },
    contact_once: { at: "20%", for: "70%" },
    virtual_number_users: { at: "5%", for: "80%" },
  },
};

export const PRESETS: Record<string, z.input<typeof ScenarioSchema>> = {
  default: DEFAULT,
  calm: { description: "normal traffic only: no incident, no hot event, no fraud" },
  incidents: {
    description: "the default scenario's incidents and hot event, no fraud",
    incidents: DEFAULT.incidents,
    hotEvents: DEFAULT.hotEvents,
  },
  fraud: {
    description: "the default scenario's fraud campaigns and their look-alikes, no incident",
    fraud: DEFAULT.fraud,
    lookalikes: DEFAULT.lookalikes,
  },
};

/** A preset name or a YAML file. */
export function loadScenario(nameOrFile: string): Scenario {
  const preset = PRESETS[nameOrFile];
  if (preset) return validateConfig(`preset ${nameOrFile}`, ScenarioSchema, preset);
  let text: string;
  try {
    text = readFileSync(nameOrFile, "utf8");
  } catch {
    throw new ConfigError(nameOrFile, [
      {
        line: 0,
        column: 0,
        field: "",
        message: `no such preset or file (presets: ${Object.keys(PRESETS).join(", ")})`,
      },
    ]);
  }
  const { value, locate } = parseYamlConfig(nameOrFile, text);
  return validateConfig(nameOrFile, ScenarioSchema, value, locate);
}

/** A scenario time as an offset in ms from the start of a run lasting `runMs`. */
export function offsetMs(when: string, runMs: number): number {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(when);
  if (pct) return Math.round((Number(pct[1]) / 100) * runMs);
  const m = /^(\d+)(ms|s|m|h)$/.exec(when);
  if (!m) throw new Error(`not a scenario time: ${when}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
}

/** Parses a duration given on the command line: 60s, 10m, 1h, 500ms. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text} (use 500ms, 60s, 10m or 1h)`);
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"]);
}
