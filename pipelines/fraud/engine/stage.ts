// One stage of the fraud pipeline (see snapshot.ts for what runs where): an operator that, for every
// event, joins what its stage joins (the registration facts in the uid stage, the latest device report
// in the device stage), runs the rules of its stage that can act on the event's type, and sends the
// event on to the stages that need it. Signals leave keyed by (rule, entity) for the cool-down.
//
// The rules come from the process's RuleEngine, read at every event: when the engine switches snapshots
// (at a checkpoint boundary), the next event runs the new rules. The stage then reconciles its rules'
// state: rules it keeps (same state id) keep their state and operator; rules that left, or whose state
// changed meaning, lose theirs (deleted, so their changelog forgets it too); new ones start empty.
import { type AbsenceResult, absence } from "../../../stream/operators/absence.ts";
import { type SequenceMatch, sequence } from "../../../stream/operators/sequence.ts";
import type { Emit, Operator, OperatorContext, Processor } from "../../../stream/runtime/processor.ts";
import type { KeyValueStore } from "../../../stream/state/store.ts";
import type { Rec, Serde } from "../../../stream/types.ts";
import { type DistinctCount, distinctCount } from "../../../stream/windows/distinct-count.ts";
import { type RollingSum, rollingSum } from "../../../stream/windows/rolling.ts";
import type { Windowed } from "../../../stream/windows/window.ts";
import { RegistrationFacts, type StreamName } from "../cel/environment.ts";
import type { CompiledExpression } from "../cel/expression.ts";
import { networkOf } from "../lists/matchers.ts";
import { phoneDigits } from "../normalize.ts";
import { ENRICHMENT_LIMITS, type RulePlan, STATE_LIMITS, type StepPlan } from "../rules/plan.ts";
import {
  decodeEvent,
  deviceIdOf,
  type Envelope,
  encodeEvent,
  envelopeSerde,
  type HeldDevice,
  heldDeviceSerde,
  registrationSerde,
} from "./envelope.ts";
import { eventActivation, holds, type RuleCounters, safeEvaluate, withVariable } from "./evaluate.ts";
import type { RuleEngine, StateHolder } from "./rule-engine.ts";
import { ruleStateSerde, ScopedStore, splitScopedKey } from "./rule-state.ts";
import { buildSignal, type Firing, keyedHash } from "./signals.ts";
import {
  isDeviceKey,
  isUidKey,
  type KeyRoute,
  type RuleRun,
  type RuntimeSnapshot,
  type StageName,
} from "./snapshot.ts";

/** The stores of the stages (their changelogs are `<appId>-<name>-changelog`). */
export const STAGE_STORES = {
  registrations: "registrations",
  devices: "devices",
  rules: (stage: StageName) => `rules-${stage}`,
};

/**
 * The rules' state operators hear of the watermark (to expire state and decide absences) when it has
 * moved this far since they last did: a stage with a hundred rules would otherwise call a hundred
 * operators for every record that moves event time. An absence is decided at most this late in event
 * time; lateness is always judged against the exact watermark.
 */
export const RULE_WATERMARK_STEP_MS = 500;

type Activation = Record<string, unknown>;

export function stageOperator(engine: RuleEngine, stage: StageName): Operator {
  const stores = [
    {
      name: STAGE_STORES.rules(stage),
      serde: ruleStateSerde,
    },
  ] as Array<{ name: string; serde: Serde<unknown>; ttl?: number; maxEntries?: number }>;
  if (stage === "uid")
    stores.push({
      name: STAGE_STORES.registrations,
      serde: registrationSerde as Serde<unknown>,
      ttl: ENRICHMENT_LIMITS.registration.ttlMs,
      maxEntries: ENRICHMENT_LIMITS.registration.maxEntries,
    });
  if (stage === "device")
    stores.push({
      name: STAGE_STORES.devices,
      serde: heldDeviceSerde as Serde<unknown>,
      ttl: ENRICHMENT_LIMITS.device.ttlMs,
      maxEntries: ENRICHMENT_LIMITS.device.maxEntries,
    });
  return {
    name: `fraud ${stage} stage`,
    stores,
    create: (ctx) => new StageProcessor(engine, stage, ctx),
  };
}

/**
 * A state in one task: its part of the store and the runtime operator that keeps it, shared by the
 * rules whose state means the same (one state id: the same counted events, key and window, five
 * thresholds over one window). Each event reaches the operator once; each rule judges what it emits.
 */
class RuleSlot {
  processor!: Processor;
  /** The event the operator was last given: the other rules of the slot give it no second time. */
  fed: Envelope | null = null;

  constructor(
    public runs: RuleRun[],
    readonly view: ScopedStore<unknown>,
    public counters: RuleCounters,
  ) {}

  /** The rule whose expressions the operator's callbacks evaluate (the others' are the same). */
  get rule(): RulePlan {
    return (this.runs[0] as RuleRun).rule;
  }
}

class StageProcessor implements Processor, StateHolder {
  private snap: RuntimeSnapshot | null = null;
  private readonly slots = new Map<string, RuleSlot>();
  private readonly rules: KeyValueStore<unknown>;
  private readonly registrations: KeyValueStore<RegistrationFacts> | null;
  private readonly devices: KeyValueStore<HeldDevice> | null;
  private readonly forward: Emit;
  private adopted = false;
  private ruleWatermark = Number.NEGATIVE_INFINITY;
  private readonly hashKey: Buffer;
  private readonly grace: number;

  constructor(
    private readonly engine: RuleEngine,
    private readonly stage: StageName,
    private readonly ctx: OperatorContext,
  ) {
    this.rules = ctx.store(STAGE_STORES.rules(stage));
    this.registrations = stage === "uid" ? ctx.store(STAGE_STORES.registrations) : null;
    this.devices = stage === "device" ? ctx.store(STAGE_STORES.devices) : null;
    this.forward = ctx.forward;
    this.hashKey = engine.options.hashKey;
    this.grace = engine.options.grace;
    engine.register(this);
  }

  // --- the operator contract ------------------------------------------------------------------------

  process(rec: Rec): void {
    const snap = this.engine.current;
    if (snap !== this.snap) this.reconcile(snap);
    const env = rec.value as Envelope;
    switch (this.stage) {
      case "uid":
        this.uidStage(snap, env, rec.ts);
        return;
      case "device":
        this.deviceStage(snap, env, rec.ts);
        return;
      case "key":
        this.keyStage(snap, env, rec.key, rec.ts);
        return;
    }
  }

  onWatermark(watermark: number): void {
    if (watermark - this.ruleWatermark < RULE_WATERMARK_STEP_MS) return;
    this.ruleWatermark = watermark;
    const snap = this.engine.current;
    if (snap !== this.snap) this.reconcile(snap);
    this.registrations?.expire(watermark);
    this.devices?.expire(watermark);
    for (const slot of this.slots.values()) slot.processor.onWatermark?.(watermark);
  }

  restored(): void {
    this.adopted = false;
    this.reconcile(this.engine.current);
  }

  openCount(): number {
    let n = 0;
    for (const slot of this.slots.values()) n += slot.view.size;
    return n;
  }

  dropped(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [rule, reasons] of this.droppedByRule())
      for (const [reason, n] of Object.entries(reasons)) out[`${rule}: ${reason}`] = n;
    return out;
  }

  /** The rules' changes since the last checkpoint into the stage's store, whose changelog the checkpoint writes. */
  onCheckpoint(): void {
    for (const slot of this.slots.values()) slot.view.flush();
  }

  close(): void {
    this.engine.unregister(this);
  }

  // --- StateHolder ------------------------------------------------------------------------------------

  entries(): Map<string, number> {
    const out = new Map<string, number>();
    for (const slot of this.slots.values())
      for (const { rule } of slot.runs) out.set(rule.id, (out.get(rule.id) ?? 0) + slot.view.size);
    return out;
  }

  droppedByRule(): Map<string, Record<string, number>> {
    const out = new Map<string, Record<string, number>>();
    for (const slot of this.slots.values()) {
      const reasons: Record<string, number> = { ...slot.processor.dropped?.() };
      if (slot.view.evictions > 0) reasons["max-keys"] = slot.view.evictions;
      for (const { rule } of slot.runs) out.set(rule.id, reasons);
    }
    return out;
  }

  // --- the stages -------------------------------------------------------------------------------------

  private uidStage(snap: RuntimeSnapshot, env: Envelope, ts: number): void {
    const s = env.s;
    const e = env.e;
    const type = e.type;
    let key: string | null = null;
    if (s !== "access") {
      key = String(e.uid);
      const reg = this.registrations as KeyValueStore<RegistrationFacts>;
      if (snap.tables.registration) {
        if (s === "behavior" && type === "REGISTER" && e.success === true)
          reg.put(key, registrationFacts(e, this.hashKey), ts);
        env.r = reg.get(key) ?? null;
      }
    }
    const runs = snap.uid.get(s)?.get(type);
    if (runs && runs.length > 0) this.runRules(runs, env, key, ts);
    if ((snap.uidToDevice.get(s)?.get(type).length ?? 0) > 0) {
      const deviceId = deviceIdOf(env);
      if (deviceId !== null) this.forward({ key: deviceId, value: env, ts });
      else this.countSkippedForDevice(snap, env);
    }
    const routes = snap.uidToKey.get(s)?.get(type);
    if (routes && routes.length > 0) this.route(routes, env, ts);
  }

  private deviceStage(snap: RuntimeSnapshot, env: Envelope, ts: number): void {
    const s = env.s;
    const e = env.e;
    const devices = this.devices as KeyValueStore<HeldDevice>;
    const deviceId = deviceIdOf(env);
    if (s === "device") {
      if (snap.tables.device && deviceId !== null) {
        const held = devices.get(deviceId);
        if (!held || held.report.ts <= (e.ts as number)) {
          // A copy: env.raw may be a view of a whole fetched batch.
          const raw = Buffer.from(env.raw ?? encodeEvent("device", e));
          devices.put(deviceId, { report: e as never, raw }, ts);
        }
      }
    } else if (snap.tables.device && deviceId !== null && env.d === null) {
      const held = devices.get(deviceId);
      if (held) {
        env.d = held.report;
        env.dRaw = held.raw;
      }
    }
    const type = e.type;
    const runs = snap.device.get(s)?.get(type);
    if (runs && runs.length > 0) this.runRules(runs, env, deviceId, ts);
    const routes = snap.deviceToKey.get(s)?.get(type);
    if (routes && routes.length > 0) this.route(routes, env, ts);
  }

  private keyStage(snap: RuntimeSnapshot, env: Envelope, key: string | null, ts: number): void {
    const ids = env.keys;
    const byKey = snap.key.get(env.s);
    if (!ids || !byKey || key === null) return;
    const type = env.e.type;
    for (const id of ids) {
      const runs = byKey.get(id)?.get(type);
      if (runs && runs.length > 0) this.runRules(runs, env, key, ts);
    }
  }

  /** Sends the event to the keyed stage: one record per distinct key value, naming the key expressions. */
  private route(routes: readonly KeyRoute[], env: Envelope, ts: number): void {
    const act = activation(env);
    let byValue: Map<string, string[]> | null = null;
    let firstValue: string | null = null;
    let firstIds: string[] | null = null;
    for (const r of routes) {
      const v = keyText(evaluateKey(r.expression, act));
      if (v === null) continue;
      if (firstValue === null) {
        firstValue = v;
        firstIds = [r.id];
      } else if (v === firstValue) (firstIds as string[]).push(r.id);
      else {
        byValue ??= new Map();
        const ids = byValue.get(v);
        if (ids) ids.push(r.id);
        else byValue.set(v, [r.id]);
      }
    }
    if (firstValue === null) return;
    const out = env.copy();
    out.keys = firstIds;
    this.forward({ key: firstValue, value: out, ts });
    if (byValue)
      for (const [v, ids] of byValue) {
        const other = env.copy();
        other.keys = ids;
        this.forward({ key: v, value: other, ts });
      }
  }

  private countSkippedForDevice(snap: RuntimeSnapshot, env: Envelope): void {
    for (const r of snap.device.get(env.s)?.get(env.e.type) ?? [])
      if (r.rule.enrich.device) this.engine.counters(r.rule.id).skipped++;
  }

  // --- rules ------------------------------------------------------------------------------------------

  private runRules(runs: readonly RuleRun[], env: Envelope, stageKey: string | null, ts: number): void {
    const act = activation(env);
    for (let i = 0; i < runs.length; i++) {
      const run = runs[i] as RuleRun;
      const rule = run.rule;
      const c = run.counters;
      if (
        (rule.enrich.device && env.s !== "device" && env.d === null) ||
        (rule.enrich.registration && env.r === null)
      ) {
        c.skipped++;
        continue;
      }
      const shape = rule.shape;
      switch (shape.kind) {
        case "match":
          if (shape.stream === env.s && holds(shape.when, act, c))
            this.fire(c, {
              rule,
              activation: act,
              counts: {},
              window: null,
              sourceEventIds: [String(env.e.id)],
              ts: env.e.ts as number,
            });
          continue;
        case "aggregate": {
          if (shape.stream !== env.s) continue;
          if (shape.when && !holds(shape.when, act, c)) continue;
          const agg = shape.aggregates[0];
          if (!agg || (agg.where && !holds(agg.where, act, c))) continue;
          this.feed(run, env, act, stageKey, ts, c);
          continue;
        }
        case "sequence":
        case "absence":
          this.feed(run, env, act, stageKey, ts, c);
          continue;
      }
    }
  }

  /** The event to the rule's state, unless another rule sharing that state gave it already. */
  private feed(
    run: RuleRun,
    env: Envelope,
    act: Activation,
    stageKey: string | null,
    ts: number,
    c: RuleCounters,
  ): void {
    const slot = this.slotOf(run);
    if (slot.fed === env) return;
    const key = this.keyOf(run, env.s, act, stageKey, c);
    if (key === null) return;
    slot.fed = env;
    slot.processor.process({ key, value: env, ts }, "main");
  }

  /** The rule's key for this event: the stage's own when the rule is keyed by it, else its expression's value. */
  private keyOf(run: RuleRun, s: StreamName, act: Activation, stageKey: string | null, c: RuleCounters): string | null {
    const k = run.keys[s];
    if (!k) return null;
    if (stageKey !== null) {
      if (this.stage === "key") return stageKey;
      if (this.stage === "uid" && isUidKey(k.id)) return stageKey;
      if (this.stage === "device" && isDeviceKey(k.id)) return stageKey;
    }
    return keyText(safeEvaluate(k.expression, act, c));
  }

  private fire(c: RuleCounters, f: Firing): void {
    const signal = buildSignal(f, this.hashKey, c);
    if (!signal) return;
    this.forward({ key: `${signal.ruleId}|${signal.entity.type}|${signal.entity.id}`, value: signal, ts: signal.ts });
  }

  private slotOf(run: RuleRun): RuleSlot {
    const slot = this.slots.get(run.stateId as string);
    if (!slot) throw new Error(`internal: rule ${run.rule.id} has no state in the ${this.stage} stage`);
    return slot;
  }

  /** Brings the stage's rules and their state in line with the engine's current snapshot. */
  private reconcile(snap: RuntimeSnapshot): void {
    this.snap = snap;
    const wanted = new Map<string, RuleRun[]>();
    for (const run of snap.runs) {
      if (run.stage !== this.stage || !run.stateId) continue;
      const runs = wanted.get(run.stateId);
      if (runs) runs.push(run);
      else wanted.set(run.stateId, [run]);
    }
    for (const [id, slot] of this.slots) {
      if (wanted.has(id)) continue;
      slot.view.drop();
      this.slots.delete(id);
    }
    for (const [id, runs] of wanted) {
      const slot = this.slots.get(id);
      if (slot) {
        slot.runs = runs;
        slot.counters = this.engine.counters((runs[0] as RuleRun).rule.id);
      } else this.slots.set(id, this.newSlot(runs));
    }
    if (!this.adopted) this.adopt();
  }

  /** After a restore: every entry of the store goes to its rule's part, or is deleted if no rule owns it. */
  private adopt(): void {
    this.adopted = true;
    const st = this.ctx.streamTime;
    const now = Number.isFinite(st) ? st : 0;
    const orphans: string[] = [];
    // The store now holds what was restored: each rule's part is rebuilt from it.
    for (const slot of this.slots.values()) slot.view.forget();
    for (const [k] of this.rules.entries()) {
      const parts = splitScopedKey(k);
      const slot = parts ? this.slots.get(parts.stateId) : undefined;
      if (slot && parts) slot.view.adopt(parts.key, now);
      else orphans.push(k);
    }
    for (const k of orphans) this.rules.delete(k);
    for (const slot of this.slots.values()) slot.processor.restored?.();
  }

  private newSlot(runs: RuleRun[]): RuleSlot {
    const run = runs[0] as RuleRun;
    const c = this.engine.counters(run.rule.id);
    const operator = this.ruleOperator(run, () => slot);
    const config = operator.stores[0];
    const view = new ScopedStore<unknown>(this.rules, run.stateId as string, config?.ttl, config?.maxEntries);
    const slot = new RuleSlot(runs, view, c);
    const stage = this.ctx;
    const ctx: OperatorContext = {
      taskId: stage.taskId,
      partition: stage.partition,
      get watermark() {
        return stage.watermark;
      },
      get streamTime() {
        return stage.streamTime;
      },
      store: <V>() => view.asStore() as unknown as KeyValueStore<V>,
      forward: (rec) => this.concluded(slot, rec),
      late: () => {
        for (const r of slot.runs) this.engine.counters(r.rule.id).late++;
      },
    };
    slot.processor = operator.create(ctx);
    return slot;
  }

  /** The runtime operator that keeps a rule's state; its callbacks read the slot's current rule. */
  private ruleOperator(run: RuleRun, slotRef: () => RuleSlot): Operator {
    const name = run.stateId as string;
    const grace = this.grace;
    const shape = run.rule.shape;
    const current = () => slotRef().rule;
    const counters = () => slotRef().counters;
    switch (shape.kind) {
      case "aggregate": {
        const agg = shape.aggregates[0];
        if (!agg) throw new Error(`rule ${run.rule.id}: an aggregate rule without its aggregate`);
        const value = (env: Envelope): unknown => {
          const a = aggregateOf(current());
          return a.of ? safeEvaluate(a.of, activation(env), counters()) : undefined;
        };
        if (agg.fn === "distinct_count")
          return distinctCount(
            {
              size: agg.withinMs,
              grace,
              cap: agg.maxDistinct,
              maxKeys: agg.maxKeys,
              of: (v) => {
                const x = value(v as Envelope);
                return x === null || x === undefined ? null : typeof x === "string" ? x : String(x);
              },
            },
            name,
          );
        return rollingSum(
          {
            size: agg.withinMs,
            grace,
            maxKeys: agg.maxKeys,
            of: (v) => {
              if (aggregateOf(current()).fn === "count") return 1;
              const x = value(v as Envelope);
              return typeof x === "number" ? x : typeof x === "bigint" ? Number(x) : null;
            },
          },
          name,
        );
      }
      case "sequence":
        return sequence<Envelope>(
          {
            steps: shape.steps.map((_, i) => ({
              name: shape.steps[i]?.name as string,
              matches: (env, _key, earlier) => {
                const steps = sequenceSteps(current());
                const step = steps[i] as StepPlan;
                return (
                  env.s === step.stream &&
                  holds(step.when, { ...activation(env), ...earlierSteps(steps, earlier) }, counters())
                );
              },
              capture: (env) => {
                const steps = sequenceSteps(current());
                return capture(env, steps[i] as StepPlan, i < steps.length - 1);
              },
            })),
            maxspan: shape.maxspanMs,
            grace,
            maxPending: shape.maxPending,
            maxKeys: shape.maxKeys,
          },
          name,
        );
      case "absence":
        return absence<Envelope>(
          {
            starts: (env) => {
              const a = absenceOf(current());
              return env.s === a.after.stream && holds(a.after.when, activation(env), counters());
            },
            capture: (env) => ({ id: String(env.e.id), b: envelopeBase64(env) }),
            mayCancel: (env) => {
              const a = absenceOf(current());
              return (
                env.s === a.missing.stream &&
                (readsAfter(a.missing) || holds(a.missing.when, activation(env), counters()))
              );
            },
            captureCancel: (env) => (readsAfter(absenceOf(current()).missing) ? envelopeBase64(env) : null),
            cancels: (b, started) => {
              const a = absenceOf(current());
              if (!readsAfter(a.missing)) return true;
              const env = envelopeSerde.decode(Buffer.from(b as string, "base64"));
              const after = envelopeSerde.decode(Buffer.from((started as { b: string }).b, "base64"));
              return holds(a.missing.when, { ...activation(env), after: after.e }, counters());
            },
            within: shape.withinMs,
            grace,
            maxPending: STATE_LIMITS.defaultMaxPending,
            maxKeys: shape.maxKeys,
          },
          name,
        );
      case "match":
        throw new Error(`internal: rule ${run.rule.id} keeps no state`);
    }
  }

  /** What a rule's state operator emitted: the rule's condition, then a signal. */
  private concluded(slot: RuleSlot, rec: Rec): void {
    const runs = slot.runs;
    // The rules of a slot name their aggregate alike (it is part of the state): one activation for all.
    const shared: { act?: Activation } = {};
    for (let i = 0; i < runs.length; i++) {
      const run = runs[i] as RuleRun;
      this.concludedFor(run.rule, run.counters, rec, shared);
    }
  }

  private concludedFor(rule: RulePlan, c: RuleCounters, rec: Rec, shared: { act?: Activation }): void {
    const shape = rule.shape;
    switch (shape.kind) {
      case "aggregate": {
        const agg = shape.aggregates[0];
        if (!agg) return;
        const w = rec.value as Windowed<DistinctCount<Envelope> | RollingSum<Envelope>>;
        const v = w.value;
        const env = v.record;
        const value = "distinct" in v ? v.count : agg.fn === "count" ? v.count : (v as RollingSum<Envelope>).sum;
        shared.act ??= withVariable(activation(env), agg.name, value);
        const act = shared.act;
        if (!holds(shape.condition, act, c)) return;
        this.fire(c, {
          rule,
          activation: act,
          counts: { [agg.name]: Math.round(value) },
          window: { start: w.start, end: w.end },
          sourceEventIds: [String(env.e.id)],
          ts: env.e.ts as number,
        });
        return;
      }
      case "sequence": {
        const m = rec.value as SequenceMatch<Envelope>;
        const env = m.record;
        const earlier = m.steps.slice(0, -1).map((s) => s.captured);
        const last = m.steps[m.steps.length - 1] as { ts: number };
        this.fire(c, {
          rule,
          activation: { ...activation(env), ...earlierSteps(shape.steps, earlier) },
          counts: {},
          window: { start: m.start, end: last.ts },
          sourceEventIds: m.steps.map((s) => (s.captured as Captured).id),
          ts: last.ts,
        });
        return;
      }
      case "absence": {
        const r = rec.value as AbsenceResult;
        const started = r.started as { id: string; b: string };
        const env = envelopeSerde.decode(Buffer.from(started.b, "base64"));
        this.fire(c, {
          rule,
          activation: activation(env),
          counts: {},
          window: { start: r.startTs, end: r.deadline },
          sourceEventIds: [started.id],
          ts: r.deadline,
        });
        return;
      }
      case "match":
        return;
    }
  }
}

/**
 * The event's activation: the one the rules before saw when the event is the same (every rule of a
 * stage, and the state operators' callbacks, evaluate the same event in turn), so that an expression
 * several rules share is evaluated once per event (evaluate.ts).
 */
let lastEnv: Envelope | null = null;
let lastAct: Activation = {};
function activation(env: Envelope): Activation {
  if (env === lastEnv && lastAct.event === env.e && lastAct.device === env.d && lastAct.registration === env.r)
    return lastAct;
  lastEnv = env;
  lastAct = eventActivation(env.e, env.d, env.r);
  return lastAct;
}

/** A key expression's value: errors are the rule's problem, counted where the rule runs; here the event just has no key. */
function evaluateKey(e: CompiledExpression, act: Activation): unknown {
  try {
    return e.evaluate(act);
  } catch {
    return undefined;
  }
}

function keyText(v: unknown): string | null {
  if (v === null || v === undefined || v === "") return null;
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : String(v);
}

function aggregateOf(rule: RulePlan) {
  const s = rule.shape;
  if (s.kind !== "aggregate" || !s.aggregates[0]) throw new Error(`internal: rule ${rule.id} is not an aggregate`);
  return s.aggregates[0];
}

function sequenceSteps(rule: RulePlan): StepPlan[] {
  const s = rule.shape;
  if (s.kind !== "sequence") throw new Error(`internal: rule ${rule.id} is not a sequence`);
  return s.steps;
}

function absenceOf(rule: RulePlan) {
  const s = rule.shape;
  if (s.kind !== "absence") throw new Error(`internal: rule ${rule.id} is not an absence`);
  return s;
}

function readsAfter(step: StepPlan): boolean {
  return step.when.variables.includes("after");
}

/** An envelope as the absence's state keeps it (without the keys it was routed by). */
function envelopeBase64(env: Envelope): string {
  return envelopeSerde.encode(env.copy()).toString("base64");
}

/** The registration facts of a REGISTER event: the number's range and keyed hash, never the number. */
export function registrationFacts(e: Record<string, unknown>, hashKey: Buffer): RegistrationFacts {
  const digits = typeof e.phone === "string" ? phoneDigits(e.phone) : "";
  const ip = String(e.ip ?? "");
  return new RegistrationFacts(
    e.uid as number,
    e.ts as number,
    digits.slice(0, 4),
    digits === "" ? "" : keyedHash(hashKey, digits),
    String(e.deviceId ?? ""),
    ip,
    networkOf(ip, ip.includes(":") ? 64 : 24),
    String(e.method ?? ""),
  );
}

interface Captured {
  id: string;
  s: StreamName;
  /** The step's event (Avro, base64) when a later expression reads the step. */
  b?: string;
}

/** Decoded captures, kept beside the state (not enumerable: never in the changelog's JSON). */
const DECODED = Symbol("decoded");

function capture(env: Envelope, step: StepPlan, notLast: boolean): Captured {
  const out: Captured = { id: String(env.e.id), s: env.s };
  if (notLast && step.captures.length > 0) {
    out.b = encodeEvent(env.s, env.e).toString("base64");
    Object.defineProperty(out, DECODED, { value: env.e, enumerable: false });
  }
  return out;
}

/** The earlier steps' events, by step name, for the expressions that read them. */
function earlierSteps(steps: readonly StepPlan[], earlier: readonly unknown[]): Activation {
  const out: Activation = {};
  for (let i = 0; i < earlier.length; i++) {
    const cap = earlier[i] as Captured & { [DECODED]?: Record<string, unknown> };
    const step = steps[i];
    if (!step || !cap.b) continue;
    let e = cap[DECODED];
    if (!e) {
      e = decodeEvent(cap.s, Buffer.from(cap.b, "base64"));
      Object.defineProperty(cap, DECODED, { value: e, enumerable: false });
    }
    out[step.name] = e;
  }
  return out;
}
