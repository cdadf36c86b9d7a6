// Property tests over what the traffic simulator writes: every phone number it puts in chat texts
// and registrations, in every shape it types them, is masked, and none of its ordinary text is touched.
// The values come from the simulator's own code (infra/simulator), not from a copy of its formats.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { EventWriter, SimStream, StreamSummary } from "../../../infra/simulator/event-writer.ts";
import { TrafficGenerator } from "../../../infra/simulator/generator.ts";
import { GroundTruth, type TruthRecord } from "../../../infra/simulator/ground-truth.ts";
import { CHAT_PHRASES, contactOnce, legitPhone, spamMessage } from "../../../infra/simulator/population.ts";
import { Rng } from "../../../infra/simulator/random.ts";
import { loadScenario } from "../../../infra/simulator/scenario.ts";
import type { BehaviorEvent } from "../../../schemas/types.generated.ts";
import { foldDigits } from "./detector.ts";
import { PiiKey } from "./key.ts";
import { PiiMasker } from "./masker.ts";
import { piiToken } from "./token.ts";

const key = new PiiKey("simulator-test-key-0123456789abcdef01234", "given");
const masker = new PiiMasker({}, key);

/** The templates that carry a phone end with 联系 and the number (population.ts, SPAM_TEMPLATES). */
function phoneOfSpam(text: string): string | undefined {
  const at = text.indexOf("联系");
  return at < 0 ? undefined : text.slice(at + 2).trim();
}

/**
 * The "number given once" look-alike messages (contactOnce, which look-alikes.ts writes into chat) as
 * the text before and after the phone: drawn from the simulator's own code with a marker for the phone.
 */
const CONTACT_ONCE: [string, string][] = (() => {
  const rng = new Rng(5);
  const forms = new Map<string, [string, string]>();
  for (let k = 0; k < 500; k++) {
    const text = contactOnce(rng, "\u0000");
    const at = text.indexOf("\u0000");
    if (at >= 0) forms.set(text, [text.slice(0, at), text.slice(at + 1)]);
  }
  return [...forms.values()];
})();

function phoneOfLookalike(text: string): string | undefined {
  for (const [before, after] of CONTACT_ONCE) {
    if (text.length > before.length + after.length && text.startsWith(before) && text.endsWith(after))
      return text.slice(before.length, text.length - after.length);
  }
  return undefined;
}

/** The 11 digits of a number as typed: Chinese numerals and full-width digits read as digits, +86 dropped. */
function digitsOf(typed: string): string {
  return foldDigits(typed)
    .replace(/\D/g, "")
    .replace(/^(?:00)?86(?=\d{11}$)/, "");
}

function assertMasked(line: string, typed: string): void {
  const masked = masker.maskText(line);
  const national = digitsOf(typed);
  assert.equal(national.length, 11, typed);
  assert.ok(!masked.replace(/\D/g, "").includes(national), `${line} -> ${masked}`);
  assert.ok(!masked.includes(typed), `${line} -> ${masked}`);
  // However the number is written (一三八…, １３８…, 1 3 8 …), its token is the plain 11 digits' one, so
  // searching for the number finds every line that held it; piiToken of the typed form agrees.
  assert.ok(masked.includes(`[${piiToken("phone", national, key)}]`), `${line} -> ${masked}`);
  assert.equal(piiToken("phone", typed, key), piiToken("phone", national, key), typed);
}

/** Keeps the behaviour events and counts the rest, like a file or Kafka sink would write them. */
class BehaviorCapture implements EventWriter {
  readonly events: BehaviorEvent[] = [];
  written = 0;
  stream<K extends keyof import("../../../infra/simulator/event-writer.ts").RecordTypes>(
    _service: string,
    kind: K,
  ): SimStream<never> {
    return {
      write: (record: unknown) => {
        this.written++;
        if (kind === "behavior") this.events.push(record as BehaviorEvent);
      },
    };
  }
  async flush(): Promise<void> {}
  async close(): Promise<StreamSummary[]> {
    return [];
  }
}

class TruthCapture extends GroundTruth {
  readonly records: TruthRecord[] = [];
  constructor() {
    super(undefined);
  }
  override add(record: TruthRecord): void {
    this.records.push(record);
  }
}

describe("the simulator's phone numbers", () => {
  test("every shape formatPhone types, from every prefix legitPhone picks, in the contexts logs put them", () => {
    const rng = new Rng(7);
    const shapes = new Set<string>();
    for (let k = 0; k < 3000; k++) {
      const typed = legitPhone(rng);
      shapes.add(typed.replace(/\d/g, "9")); // the shape: +86-138-0013-8000 -> +99-999-9999-9999
      assertMasked(typed, typed);
      assertMasked(`register phone=${typed} method=sms`, typed);
      assertMasked(`{"phone":${JSON.stringify(typed)},"uid":100043296}`, typed);
      assertMasked(`联系${typed}。`, typed);
    }
    // 13800138000, +8613800138000, 138 0013 8000, +86-138-0013-8000: all four were drawn
    assert.deepEqual(
      [...shapes].sort(),
      ["+99-999-9999-9999", "+9999999999999", "999 9999 9999", "99999999999"].sort(),
    );
  });

  test("spam messages: each phone masked, every other message (QQ groups, WeChat ids, links) untouched", () => {
    const rng = new Rng(11);
    let withPhone = 0;
    for (let k = 0; k < 3000; k++) {
      const text = spamMessage(rng);
      const phone = phoneOfSpam(text);
      if (phone) {
        withPhone++;
        assertMasked(text, phone);
      } else {
        assert.equal(masker.maskText(text), text, text);
      }
    }
    assert.ok(withPhone > 300, `only ${withPhone} messages with a phone`);
    for (const phrase of CHAT_PHRASES) assert.equal(masker.maskText(phrase), phrase);
  });

  test("a simulated run with fraud: chat texts, registrations and the campaigns' phones all masked", () => {
    const sink = new BehaviorCapture();
    const truth = new TruthCapture();
    const start = Date.UTC(2026, 10, 20, 12, 30);
    const gen = new TrafficGenerator(
      {
        seed: 3,
        start,
        runMs: 60_000,
        rate: 1500,
        diurnal: false,
        users: 5000,
        streamers: 100,
        scenario: loadScenario("fraud"),
        scenarioName: "fraud",
        fraud: 2,
      },
      sink,
      truth,
    );
    gen.runUntil(start + 60_000, Number.POSITIVE_INFINITY);
    gen.finish();

    let chats = 0;
    let spamPhones = 0;
    let lookalikePhones = 0;
    let registrations = 0;
    const maskedPhones = new Set<string>();
    for (const e of sink.events) {
      if (e.text !== null) {
        chats++;
        // A phone is in spam (after 联系) and in the look-alike of a number given once, nowhere else.
        // (`@小王 我号码 … 晚点联系` has its 联系 after the number: the look-alike is asked first.)
        const given = phoneOfLookalike(e.text);
        const phone = given === undefined ? phoneOfSpam(e.text) : undefined;
        if (given) {
          lookalikePhones++;
          assertMasked(e.text, given);
        } else if (phone) {
          spamPhones++;
          assertMasked(e.text, phone);
        } else {
          assert.equal(masker.maskText(e.text), e.text, e.text);
        }
      }
      if (e.phone !== null) {
        registrations++;
        assertMasked(`${e.type} phone=${e.phone}`, e.phone);
        assert.equal(masker.maskValue("phone", e.phone), masker.maskText(e.phone));
        maskedPhones.add(digitsOf(e.phone));
      }
    }
    assert.ok(
      chats > 500 && spamPhones > 20 && lookalikePhones > 0 && registrations > 50,
      `${chats} chats, ${spamPhones} spam phones, ${lookalikePhones} look-alike phones, ${registrations} phones`,
    );

    // The SMS farm's numbers (digits, as the ground truth holds them) are among those masked.
    const farm = truth.records.find((r) => r.kind === "fraud" && r.campaign === "virtual_phone_registration");
    assert.ok(farm && farm.kind === "fraud");
    const farmPhones = (farm.entities.phone ?? []).map(String);
    assert.ok(farmPhones.length >= 20);
    for (const p of farmPhones) assert.ok(maskedPhones.has(digitsOf(p)), p);
  });
});
