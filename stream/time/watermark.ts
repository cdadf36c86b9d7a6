// Event-time progress of a task. Each input channel (a source partition, or an upstream task whose
// records reach us through a repartition topic) has a watermark: for a partition, the newest
// timestamp seen minus the allowed out-of-orderness, minus 1 ms (a watermark W says no record at
// or before W is expected); for an upstream task, what it announced. The
// task's watermark is the minimum over channels that are not idle, so the slowest input decides,
// but a partition that is caught up and silent for its idle timeout stops holding the others back.
// An upstream task's channel is idle only when that task says so (all its inputs are idle): a task
// that is silent because its process died holds the watermark until its next owner speaks, so a
// failover never turns the replayed records into late ones. When every channel is idle the
// watermark holds (Flink's rule): nothing is known about what comes next.
// It never goes backwards.

export interface WatermarkState {
  watermark: number | null;
  streamTime: number | null;
  channels: Record<string, number>;
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
}

export class WatermarkTracker {
  private readonly channels = new Map<string, Channel>();
  private current = Number.NEGATIVE_INFINITY;
  /** Highest record timestamp seen on any channel: Kafka Streams' "stream time". */
  streamTime = Number.NEGATIVE_INFINITY;

  /** A source partition: idle after `idleTimeout` of silence once caught up. */
  addChannel(id: string, outOfOrderness: number, idleTimeout: number, now: number): void {
    if (this.channels.has(id)) return;
    this.channels.set(id, {
      watermark: Number.NEGATIVE_INFINITY,
      outOfOrderness,
      idleTimeout,
      lastActive: now,
      caughtUp: true,
      announced: false,
      idle: false,
    });
  }

  /** An upstream task reached through a repartition topic: idle only when it announces so. */
  addAnnouncedChannel(id: string, now: number): void {
    if (this.channels.has(id)) return;
    this.channels.set(id, {
      watermark: Number.NEGATIVE_INFINITY,
      outOfOrderness: 0,
      idleTimeout: Number.POSITIVE_INFINITY,
      lastActive: now,
      caughtUp: true,
      announced: true,
      idle: false,
    });
  }

  get watermark(): number {
    return this.current;
  }

  /** A record at `ts` on a channel; returns true if the task's watermark advanced. */
  observe(id: string, ts: number, now: number): boolean {
    const c = this.channels.get(id);
    if (!c) throw new Error(`watermark: unknown channel ${id}`);
    c.lastActive = now;
    if (ts > this.streamTime) this.streamTime = ts;
    // Flink's convention: a watermark W promises no more records at or before W.
    const wm = ts - c.outOfOrderness - 1;
    if (wm > c.watermark) c.watermark = wm;
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

  /** Wall clock advanced: idle channels may stop holding the watermark back. */
  tick(now: number): boolean {
    return this.recompute(now);
  }

  /** What a checkpoint keeps, so that a restored task decides lateness as the old one did. */
  state(): WatermarkState {
    const channels: Record<string, number> = {};
    for (const [id, c] of this.channels) if (c.watermark !== Number.NEGATIVE_INFINITY) channels[id] = c.watermark;
    return { watermark: finiteOrNull(this.current), streamTime: finiteOrNull(this.streamTime), channels };
  }

  restoreState(s: WatermarkState): void {
    for (const [id, wm] of Object.entries(s.channels)) {
      const c = this.channels.get(id);
      if (c && wm > c.watermark) c.watermark = wm;
    }
    if (s.watermark !== null && s.watermark > this.current) this.current = s.watermark;
    if (s.streamTime !== null && s.streamTime > this.streamTime) this.streamTime = s.streamTime;
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
