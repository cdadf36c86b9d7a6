// The last step before signals leave: one signal per (rule, entity) per cool-down (the rule's
// `cooldown`, default its window, else 1 h), before or after the one let through in event time, the
// rest counted as cooled down, never silent. Signals arrive keyed by rule and entity from every
// stage. Each entry lives until its cool-down has passed in event time (timers rebuilt from the store
// after a restore); at most STATE_LIMITS.maxCooldownEntries, the least recently updated evicted first
// (counted by the store).
import type { RiskSignal } from "../../../schemas/types.generated.ts";
import type { Operator, OperatorContext, Processor } from "../../../stream/runtime/processor.ts";
import type { KeyValueStore } from "../../../stream/state/store.ts";
import { EventTimers } from "../../../stream/time/timers.ts";
import { json, type Rec, type Serde } from "../../../stream/types.ts";
import { STATE_LIMITS } from "../rules/plan.ts";
import type { RuleEngine } from "./rule-engine.ts";

export const COOLDOWN_STORE = "cooldowns";
/** The cool-down of a signal whose rule has left the snapshot while the signal was on its way. */
const DEFAULT_COOLDOWN_MS = 3600_000;

/** [time of the last signal let through, until when it holds back the next] */
type Held = [number, number];

export function cooldownOperator(engine: RuleEngine): Operator {
  return {
    name: "fraud cool-down",
    stores: [
      { name: COOLDOWN_STORE, serde: json<Held>() as Serde<unknown>, maxEntries: STATE_LIMITS.maxCooldownEntries },
    ],
    create: (ctx) => new CooldownProcessor(engine, ctx, ctx.store(COOLDOWN_STORE)),
  };
}

class CooldownProcessor implements Processor {
  private readonly timers = new EventTimers();

  constructor(
    private readonly engine: RuleEngine,
    private readonly ctx: OperatorContext,
    private readonly store: KeyValueStore<Held>,
  ) {}

  process(rec: Rec): void {
    const signal = rec.value as RiskSignal;
    const key = rec.key ?? `${signal.ruleId}|${signal.entity.type}|${signal.entity.id}`;
    const rule = this.engine.current.byId.get(signal.ruleId);
    const cooldown = rule?.cooldownMs ?? DEFAULT_COOLDOWN_MS;
    const c = this.engine.counters(signal.ruleId);
    const held = this.store.get(key);
    // Held back on both sides of the signal let through: records reach the rules out of order (within
    // the source's out-of-orderness), and a record older than the triggering one that holds the
    // condition too must not make a second signal, or the count of signals would depend on arrival order.
    if (held && rec.ts > held[0] - cooldown && rec.ts < held[1]) {
      c.cooledDown++;
      return;
    }
    const last = held ? Math.max(held[0], rec.ts) : rec.ts;
    const until = last === rec.ts ? rec.ts + cooldown : (held as Held)[1];
    this.store.put(key, [last, until], last);
    this.timers.add(until, key);
    c.hits++;
    this.ctx.forward(rec);
  }

  onWatermark(watermark: number): void {
    this.timers.popUntil(watermark, (_t, key) => {
      const held = this.store.get(key);
      if (held && held[1] <= watermark) this.store.delete(key);
    });
  }

  restored(): void {
    this.timers.clear();
    for (const [key, held] of this.store.entries()) this.timers.add(held[1], key);
  }

  openCount(): number {
    return this.store.size;
  }
}
