// Top-k keys per dimension over sliding windows, in two stages (the DSL's `topK`):
//
// 1. `topKPartial`, in every task of the input: each dimension's records go into a ring of HeavyKeeper
//    sketches, one per `slide` of event time (sketches/sliding-top-k.ts). Each time the task's stream
//    time crosses a slide boundary B, it emits, per dimension and window, its own heaviest `partialK`
//    keys of [B - window, B), keyed by the dimension, with its total and its floor (the most a key
//    missing from its list counted there). The input is never repartitioned for this: a task sketches
//    what its partitions hold, which is the point of sketching.
// 2. `topKMerge`, after a repartition by dimension: it keeps each task's latest partial list per
//    dimension and window and merges them (sketches/merge-top-k.ts) into the global top `k` once every
//    task heard from lately has sent its list for B, or as soon as one sends a later one (a task that
//    stopped sending is left out after two slides). One result per dimension, window and slide.
//
// The sketches live in memory, not in a store: a changelog of them would write every sketch of the
// current slide at each checkpoint (tens of KiB per dimension and task, several times a second), and a
// hot-key list is a view of the last minute, not a record. After a restart or a move, a task's
// windows refill over their own length, and the counts of that span are low; the records replayed
// from the last commit are counted once (the ring starts empty). Counted, never silent: records older
// than a ring's oldest slide (`behind-window`), records of dimensions past `maxDimensions`.
import type { Operator, OperatorContext, Processor } from "../runtime/processor.ts";
import type { SketchKey } from "../sketches/hash.ts";
import { mergeTopK } from "../sketches/merge-top-k.ts";
import { SlidingTopK } from "../sketches/sliding-top-k.ts";
import { type Rec, TopologyError } from "../types.ts";

export interface TopKItem {
  dimension: string;
  key: SketchKey;
}

export interface TopKSketchSize {
  /** Buckets per row of each slide's sketch. */
  width: number;
  depth?: number;
  /** Hash seeds (tests fix them; by default each process draws its own). */
  seeds?: { s1: number; s2: number };
}

export interface TopKSpec {
  /** What a record counts for; null or undefined: nothing. */
  of: (value: unknown, key: string | null) => TopKItem | null | undefined;
  /** Window lengths, each a multiple of `slide`. */
  windows: number[];
  /** Event time per sketch, and how often lists are emitted. */
  slide: number;
  /** Keys in each merged result. */
  k: number;
  /** Keys each task sends (more than k, so a key cut from one task's list loses little). */
  partialK: number;
  /** The size of each slide's sketch, per dimension. */
  sketch: (dimension: string) => TopKSketchSize;
  /** Dimensions a task keeps; records of more are dropped and counted. */
  maxDimensions: number;
}

/** One task's list for a dimension and window: what stage 1 sends to stage 2. */
export interface TopKPartial {
  dimension: string;
  window: number;
  end: number;
  total: number;
  /** [key, count], heaviest first. */
  keys: Array<[SketchKey, number]>;
  floor: number;
  /** The sending task. */
  source: string;
}

/** A merged top-k list: what `topK` emits, keyed by the dimension. */
export interface TopKResult {
  dimension: string;
  /** The window [start, end), end a slide boundary. */
  start: number;
  end: number;
  window: number;
  /** Records counted in the window by the tasks merged. */
  total: number;
  /** Heaviest first; count is a lower bound, upper the most it could be. */
  keys: Array<{ key: SketchKey; count: number; upper: number }>;
  /** Tasks whose lists were merged. */
  parts: number;
}

export function validateTopKSpec(spec: TopKSpec, name: string): void {
  const fail = (m: string) => {
    throw new TopologyError(`topK ${name}: ${m}`);
  };
  if (!Number.isInteger(spec.slide) || spec.slide < 1) fail(`slide must be a whole number of ms, got ${spec.slide}`);
  if (spec.windows.length === 0) fail("give at least one window");
  for (const w of spec.windows) {
    if (!Number.isInteger(w) || w <= 0 || w % spec.slide !== 0) {
      fail(`window ${w} ms is not a positive multiple of the slide (${spec.slide} ms)`);
    }
    if (w / spec.slide > 3600) fail(`window ${w} ms holds more than 3599 slides of ${spec.slide} ms`);
  }
  if (new Set(spec.windows).size !== spec.windows.length) fail("a window is given twice");
  if (!Number.isInteger(spec.k) || spec.k < 1 || spec.k > 10_000) fail(`k must be from 1 to 10000, got ${spec.k}`);
  if (!Number.isInteger(spec.partialK) || spec.partialK < spec.k) fail(`partialK must be at least k (${spec.k})`);
}

/** Stage 1: per task, a ring of sketches per dimension; partial lists at every slide boundary. */
export function topKPartial(spec: TopKSpec, name: string): Operator {
  validateTopKSpec(spec, name);
  return {
    name: `topK ${name}`,
    stores: [],
    create: (ctx) => new TopKPartialProcessor(spec, ctx),
  };
}

class TopKPartialProcessor implements Processor {
  private readonly rings = new Map<string, SlidingTopK<SketchKey>>();
  private readonly slides: number;
  private emittedUpTo = Number.NEGATIVE_INFINITY;
  private behindWindow = 0;
  private tooManyDimensions = 0;

  constructor(
    private readonly spec: TopKSpec,
    private readonly ctx: OperatorContext,
  ) {
    // One more than the longest window: a list for boundary B is made after the record that crossed
    // B went into its slide, which must not push out the window's oldest one.
    this.slides = Math.max(...spec.windows) / spec.slide + 1;
  }

  process(rec: Rec): void {
    const item = this.spec.of(rec.value, rec.key);
    if (item === null || item === undefined) return;
    let ring = this.rings.get(item.dimension);
    if (!ring) {
      if (this.rings.size >= this.spec.maxDimensions) {
        this.tooManyDimensions++;
        return;
      }
      const size = this.spec.sketch(item.dimension);
      ring = new SlidingTopK<SketchKey>({
        slide: this.spec.slide,
        slides: this.slides,
        k: this.spec.partialK,
        width: size.width,
        ...(size.depth !== undefined ? { depth: size.depth } : {}),
        ...(size.seeds !== undefined ? { seeds: size.seeds, randomSeed: size.seeds.s1 } : {}),
      });
      this.rings.set(item.dimension, ring);
    }
    if (!ring.add(item.key, rec.ts)) this.behindWindow++;
  }

  onStreamTime(streamTime: number): void {
    const boundary = Math.floor(streamTime / this.spec.slide) * this.spec.slide;
    if (boundary <= this.emittedUpTo) return;
    this.emittedUpTo = boundary;
    for (const [dimension, ring] of this.rings) {
      // A ring whose newest records are older than every window has nothing to say.
      if (ring.newestEnd <= boundary - Math.max(...this.spec.windows)) continue;
      for (const window of this.spec.windows) {
        const top = ring.top(boundary, window / this.spec.slide, this.spec.partialK);
        if (top.total === 0) continue;
        const partial: TopKPartial = {
          dimension,
          window,
          end: boundary,
          total: top.total,
          keys: top.keys.map((e) => [e.key, e.count]),
          floor: top.floor,
          source: this.ctx.taskId,
        };
        this.ctx.forward({ key: dimension, value: partial, ts: boundary - 1 });
      }
    }
  }

  openCount(): number {
    return this.rings.size;
  }

  dropped(): Record<string, number> {
    return { "behind-window": this.behindWindow, "max-dimensions": this.tooManyDimensions };
  }
}

/** Stage 2: the partial lists of every task merged into one list per dimension, window and slide. */
export function topKMerge(spec: Pick<TopKSpec, "k" | "slide">, name: string): Operator {
  return {
    name: `topK ${name} merge`,
    stores: [],
    create: (ctx) => new TopKMergeProcessor(spec, ctx),
  };
}

interface MergeState {
  /** The last end published. */
  published: number;
  /** The newest end heard of, not published yet while > published. */
  pending: number;
  /** Each task's latest list. */
  latest: Map<string, TopKPartial>;
}

class TopKMergeProcessor implements Processor {
  private readonly states = new Map<string, MergeState>();
  private superseded = 0;

  constructor(
    private readonly spec: Pick<TopKSpec, "k" | "slide">,
    private readonly ctx: OperatorContext,
  ) {}

  process(rec: Rec): void {
    const p = rec.value as TopKPartial;
    const id = `${p.dimension}\u0000${p.window}`;
    let st = this.states.get(id);
    if (!st) {
      st = { published: Number.NEGATIVE_INFINITY, pending: Number.NEGATIVE_INFINITY, latest: new Map() };
      this.states.set(id, st);
    }
    if (p.end <= st.published) {
      // Too late for its list, but the task is known from now on: the next lists wait for it.
      const prev = st.latest.get(p.source);
      if (!prev || prev.end < p.end) st.latest.set(p.source, p);
      this.superseded++;
      return;
    }
    // A later slide from any task: the pending one will hear from nobody else that matters.
    if (p.end > st.pending && st.pending > st.published) this.publish(st, st.pending);
    const prev = st.latest.get(p.source);
    if (!prev || prev.end < p.end) st.latest.set(p.source, p);
    if (p.end > st.pending) st.pending = p.end;
    if (this.complete(st, st.pending)) this.publish(st, st.pending);
  }

  openCount(): number {
    return this.states.size;
  }

  dropped(): Record<string, number> {
    return { superseded: this.superseded };
  }

  /** Tasks heard from in the last two slides have all sent their list for `end`. */
  private complete(st: MergeState, end: number): boolean {
    const recent = end - 2 * this.spec.slide;
    for (const p of st.latest.values()) if (p.end > recent && p.end < end) return false;
    return true;
  }

  private publish(st: MergeState, end: number): void {
    const recent = end - 2 * this.spec.slide;
    const parts: TopKPartial[] = [];
    for (const [source, p] of st.latest) {
      if (p.end <= recent) st.latest.delete(source);
      else if (p.end <= end) parts.push(p);
    }
    st.published = end;
    const first = parts[0];
    if (!first) return;
    const merged = mergeTopK(
      parts.map((p) => ({ total: p.total, floor: p.floor, keys: p.keys.map(([key, count]) => ({ key, count })) })),
      this.spec.k,
    );
    const result: TopKResult = {
      dimension: first.dimension,
      start: end - first.window,
      end,
      window: first.window,
      total: merged.total,
      keys: merged.keys,
      parts: merged.parts,
    };
    this.ctx.forward({ key: first.dimension, value: result, ts: end - 1 });
  }
}
