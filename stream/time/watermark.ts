// Event-time progress of a task. Each input channel (a source partition, or an upstream task whose
// records reach us through a repartition topic) has a watermark; the task's watermark is the minimum
// over channels that are not idle, so the slowest input decides, but a partition that is caught up
// and silent for its idle timeout stops holding the others back. An upstream task's channel is idle
// only when that task says so (all its inputs are idle): a task that is silent because its process
// died holds the watermark until its next owner speaks, so a failover never turns the replayed
// records into late ones. When every channel is idle the watermark holds (Flink's rule): nothing is
// known about what comes next. It never goes backwards.
//
// A partition carries the records of many sources (hosts, files), each in order on its own but read
// and shipped at its own pace. So a partition's watermark is not its newest record minus the allowed
// out-of-orderness, which one fast source would run away with (a shipper reading a newer file of one
// host makes every older line of every other host on the partition late), but the minimum over the
// partition's sources (Flink's per-split watermarks): each source's newest record minus the
// out-of-orderness, minus 1 ms (a watermark W says no record at or before W is expected). Records
// without a source count as one source of their own, so a partition whose records name no source
// behaves as before. Sources stop holding the partition back when
//   - idle: no record from them for `sourceIdleTimeout` (a host that stopped, or is behind a network
//     blip, does not stall the windows of every other host), or
//   - lagging: further than `maxSourceLag` behind the partition's most advanced source. The hold is
//     bounded: the partition's watermark is never more than maxSourceLag behind its most advanced
//     source, so a lagging source's records are behind it (late, or corrections downstream).
// A partition silent as a whole (caught up, nothing for its idle timeout: a stopped shipper) that
// speaks again gets back the sources active when it fell silent, holding it until they speak or
// time out again: the first one to resume does not run ahead of the others.
// At most `maxSources` are tracked per partition: past it, the longest idle is forgotten, and when
// none is idle a new source's records count as the partition's own (counted in `overflow`), so a
// producer inventing a source per record costs bounded memory.

export interface WatermarkState {
  watermark: number | null;
  streamTime: number | null;
  channels: Record<string, number>;
  /** Per partition channel: [source, newest record, idle (1) or not (0)]. Absent in older checkpoints. */
  sources?: Record<string, Array<[string, number, number]>>;
}

export interface SourceSettings {
  /** A source silent this long (wall clock) stops holding its partition's watermark. */
  idleTimeout: number;
  /** A source further than this (event time) behind its partition's most advanced source stops holding it. */
  maxLag: number;
  /** Sources tracked per partition. */
  maxSources: number;
}

export const DEFAULT_SOURCE_SETTINGS: SourceSettings = { idleTimeout: 10_000, maxLag: 30_000, maxSources: 1000 };

/** The key of records that name no source (and of sources past the cap). */
export const NO_SOURCE = "";

/** How long an idle source is remembered (for its counters, and to hold again without a new entry). */
const FORGET_IDLE_AFTER_MS = 5 * 60_000;

export type SourceStatus = "active" | "idle" | "lagging";

/** What observability shows of one source of one partition. */
export interface SourceView {
  channel: string;
  source: string;
  status: SourceStatus;
  /** Its watermark's distance behind the partition's most advanced source, in ms. */
  lagMs: number;
  records: number;
  /** Records that arrived at or behind the task's watermark: late, or corrections, downstream. */
  behind: number;
}

interface Source {
  id: string;
  newest: number;
  watermark: number;
  lastActive: number;
  idle: boolean;
  records: number;
  behind: number;
}

function finiteOrNull(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}

interface Channel {
  watermark: number;
  outOfOrderness: number;
  idleTimeout: number;
  lastActive: number;
  caughtUp: boolean;
  /** Upstream-task channels: idle only by announcement. */
  announced: boolean;
  idle: boolean;
  /** Partition channels: the sources in it. */
  sources: Map<string, Source>;
  settings: SourceSettings;
  /** The most advanced watermark of a source that is not idle. */
  maxSource: number;
  /** The source that holds the channel back: the minimum of those not idle; null when all are idle. */
  holder: Source | null;
  overflow: number;
  forgotten: number;
}

export class WatermarkTracker {
  private readonly channels = new Map<string, Channel>();
  private current = Number.NEGATIVE_INFINITY;
  /** Highest record timestamp seen on any channel: Kafka Streams' "stream time". */
  streamTime = Number.NEGATIVE_INFINITY;

  /**
   * A source partition: idle after `idleTimeout` of silence once caught up; its sources as `sources`
   * says. `caughtUp`: whether it is known to be read to its end (a task's partitions are not, until
   * the consumer says so: a backlog not fetched yet is not silence).
   */
  addChannel(
    id: string,
    outOfOrderness: number,
    idleTimeout: number,
    now: number,
    sources: SourceSettings = { ...DEFAULT_SOURCE_SETTINGS, idleTimeout },
    caughtUp = true,
  ): void {
    if (this.channels.has(id)) return;
    this.channels.set(id, {
      ...newChannel(now),
      outOfOrderness,
      idleTimeout,
      settings: sources,
      caughtUp,
    });
  }

  /** An upstream task reached through a repartition topic: idle only when it announces so. */
  addAnnouncedChannel(id: string, now: number): void {
    if (this.channels.has(id)) return;
    this.channels.set(id, { ...newChannel(now), announced: true, idleTimeout: Number.POSITIVE_INFINITY });
  }

  get watermark(): number {
    return this.current;
  }

  /**
   * A record at `ts` from `source` (NO_SOURCE when it names none) on a partition channel; returns
   * true if the task's watermark advanced.
   */
  observe(id: string, ts: number, now: number, source: string = NO_SOURCE): boolean {
    const c = this.channels.get(id);
    if (!c) throw new Error(`watermark: unknown channel ${id}`);
    const woke = c.sources.size > 0 && this.isIdle(c, now);
    if (woke) this.revive(c, now);
    c.lastActive = now;
    if (ts > this.streamTime) this.streamTime = ts;
    const s = c.sources.get(source) ?? this.addSource(c, source, now);
    s.lastActive = now;
    s.records++;
    if (ts <= this.current) s.behind++;
    const wasIdle = s.idle;
    s.idle = false;
    if (ts > s.newest) {
      s.newest = ts;
      // Flink's convention: a watermark W promises no more records at or before W.
      s.watermark = ts - c.outOfOrderness - 1;
    }
    if (woke || wasIdle || s === c.holder || c.holder === null) this.settle(c);
    else {
      if (s.watermark < c.holder.watermark) c.holder = s;
      if (s.watermark > c.maxSource) c.maxSource = s.watermark;
      this.advanceChannel(c);
    }
    return this.recompute(now);
  }

  /** A record whose channel advances only by announcements (repartitioned): it moves stream time only. */
  observeTimeOnly(ts: number): boolean {
    if (ts > this.streamTime) this.streamTime = ts;
    return false;
  }

  /** An upstream task announced its watermark, and whether all its inputs are idle. */
  announce(id: string, watermark: number, idle: boolean, now: number): boolean {
    const c = this.channels.get(id);
    if (!c) throw new Error(`watermark: unknown channel ${id}`);
    if (watermark > c.watermark) c.watermark = watermark;
    c.idle = idle;
    c.lastActive = now;
    return this.recompute(now);
  }

  /** Every input is idle: what an upstream task tells its downstream. */
  allIdle(now: number): boolean {
    for (const c of this.channels.values()) if (!this.isIdle(c, now)) return false;
    return this.channels.size > 0;
  }

  /** Whether the channel has nothing more to read right now (its lag is zero). */
  setCaughtUp(id: string, caughtUp: boolean): void {
    const c = this.channels.get(id);
    if (c) c.caughtUp = caughtUp;
  }

  /** Wall clock advanced: idle channels and sources may stop holding the watermark back. */
  tick(now: number): boolean {
    for (const c of this.channels.values()) {
      if (c.announced) continue;
      let changed = false;
      for (const s of c.sources.values()) {
        if (!s.idle && now - s.lastActive >= c.settings.idleTimeout) {
          s.idle = true;
          changed = true;
        } else if (s.idle && now - s.lastActive >= FORGET_IDLE_AFTER_MS) {
          c.sources.delete(s.id);
          c.forgotten++;
        }
      }
      if (changed) this.settle(c);
    }
    return this.recompute(now);
  }

  /** What a checkpoint keeps, so that a restored task decides lateness as the old one did. */
  state(): WatermarkState {
    const channels: Record<string, number> = {};
    const sources: Record<string, Array<[string, number, number]>> = {};
    for (const [id, c] of this.channels) {
      if (c.watermark !== Number.NEGATIVE_INFINITY) channels[id] = c.watermark;
      if (c.sources.size === 0) continue;
      const list: Array<[string, number, number]> = [];
      for (const s of c.sources.values()) list.push([s.id, s.newest, s.idle ? 1 : 0]);
      sources[id] = list;
    }
    return {
      watermark: finiteOrNull(this.current),
      streamTime: finiteOrNull(this.streamTime),
      channels,
      ...(Object.keys(sources).length > 0 ? { sources } : {}),
    };
  }

  restoreState(s: WatermarkState, now: number): void {
    for (const [id, wm] of Object.entries(s.channels)) {
      const c = this.channels.get(id);
      if (c && wm > c.watermark) c.watermark = wm;
    }
    for (const [id, list] of Object.entries(s.sources ?? {})) {
      const c = this.channels.get(id);
      if (!c || c.announced || !Array.isArray(list)) continue;
      for (const entry of list.slice(0, c.settings.maxSources)) {
        const [source, newest, idle] = entry;
        if (typeof source !== "string" || typeof newest !== "number") continue;
        const src = c.sources.get(source) ?? this.addSource(c, source, now);
        if (newest > src.newest) {
          src.newest = newest;
          src.watermark = newest - c.outOfOrderness - 1;
        }
        src.idle = idle === 1;
      }
      this.settle(c);
    }
    if (s.watermark !== null && s.watermark > this.current) this.current = s.watermark;
    if (s.streamTime !== null && s.streamTime > this.streamTime) this.streamTime = s.streamTime;
  }

  /** The sources of every partition channel, for metrics. */
  sources(): SourceView[] {
    const out: SourceView[] = [];
    for (const [id, c] of this.channels) {
      for (const s of c.sources.values()) {
        out.push({
          channel: id,
          source: s.id,
          status: s.idle ? "idle" : this.lagging(c, s) ? "lagging" : "active",
          lagMs: Number.isFinite(c.maxSource) && Number.isFinite(s.watermark) ? c.maxSource - s.watermark : 0,
          records: s.records,
          behind: s.behind,
        });
      }
    }
    return out;
  }

  /** Sources counted as their partition's own for want of room, and idle ones forgotten, over all channels. */
  sourceCounts(): { tracked: number; overflow: number; forgotten: number } {
    let tracked = 0;
    let overflow = 0;
    let forgotten = 0;
    for (const c of this.channels.values()) {
      tracked += c.sources.size;
      overflow += c.overflow;
      forgotten += c.forgotten;
    }
    return { tracked, overflow, forgotten };
  }

  private addSource(c: Channel, id: string, now: number): Source {
    if (c.sources.size >= c.settings.maxSources && id !== NO_SOURCE) {
      // Room for a new source: forget the longest idle one; with none idle, the record is the partition's own.
      let oldest: Source | null = null;
      for (const s of c.sources.values()) if (s.idle && (!oldest || s.lastActive < oldest.lastActive)) oldest = s;
      if (oldest) {
        c.sources.delete(oldest.id);
        c.forgotten++;
        if (c.holder === oldest) c.holder = null;
      } else {
        c.overflow++;
        return c.sources.get(NO_SOURCE) ?? this.addSource(c, NO_SOURCE, now);
      }
    }
    const s: Source = {
      id,
      newest: Number.NEGATIVE_INFINITY,
      watermark: Number.NEGATIVE_INFINITY,
      lastActive: now,
      idle: false,
      records: 0,
      behind: 0,
    };
    c.sources.set(id, s);
    return s;
  }

  /**
   * The whole partition fell silent (a shipper stopped, Kafka was down) and speaks again: the sources
   * that were active when it fell silent are presumed back too, and hold it until they speak or
   * their idle timeout passes again, so the first source to resume does not run ahead of the others.
   */
  private revive(c: Channel, now: number): void {
    const since = c.lastActive - c.settings.idleTimeout;
    for (const s of c.sources.values()) {
      if (s.lastActive < since) continue;
      s.idle = false;
      s.lastActive = now;
    }
  }

  private lagging(c: Channel, s: Source): boolean {
    return s.watermark < c.maxSource - c.settings.maxLag;
  }

  /** Finds the source that holds a partition channel back (the minimum of those not idle) and the most advanced one. */
  private settle(c: Channel): void {
    let holder: Source | null = null;
    let max = Number.NEGATIVE_INFINITY;
    for (const s of c.sources.values()) {
      if (s.idle) continue;
      if (holder === null || s.watermark < holder.watermark) holder = s;
      if (s.watermark > max) max = s.watermark;
    }
    c.holder = holder;
    c.maxSource = max;
    this.advanceChannel(c);
  }

  /**
   * The channel's watermark: its holder's, but never more than maxLag behind the most advanced source
   * (the hold is bounded), and never lower than it was. Every source idle: it holds, and the
   * partition's own idle rule decides whether it holds the task back.
   */
  private advanceChannel(c: Channel): void {
    if (c.holder === null) return;
    const wm = Math.max(c.holder.watermark, c.maxSource - c.settings.maxLag);
    if (wm > c.watermark) c.watermark = wm;
  }

  private isIdle(c: Channel, now: number): boolean {
    if (c.announced) return c.idle;
    return c.caughtUp && now - c.lastActive >= c.idleTimeout;
  }

  private recompute(now: number): boolean {
    let min = Number.POSITIVE_INFINITY;
    for (const c of this.channels.values()) {
      if (this.isIdle(c, now)) continue;
      if (c.watermark < min) min = c.watermark;
    }
    const next = min; // +Infinity when all are idle: no change
    if (next > this.current && next !== Number.POSITIVE_INFINITY) {
      this.current = next;
      return true;
    }
    return false;
  }
}

function newChannel(now: number): Channel {
  return {
    watermark: Number.NEGATIVE_INFINITY,
    outOfOrderness: 0,
    idleTimeout: 0,
    lastActive: now,
    caughtUp: true,
    announced: false,
    idle: false,
    sources: new Map(),
    settings: DEFAULT_SOURCE_SETTINGS,
    maxSource: Number.NEGATIVE_INFINITY,
    holder: null,
    overflow: 0,
    forgotten: 0,
  };
}
