// Event-time progress of a task. Each input channel (a source partition, or an upstream task whose
// records reach us through a repartition topic) has a watermark: for a partition, the newest
// timestamp seen minus the allowed out-of-orderness, minus 1 ms (a watermark W says no record at
// or before W is expected); for an upstream task, what it announced. The
// task's watermark is the minimum over channels that are not idle, so the slowest input decides,
// but a channel that is caught up and silent for its idle timeout stops holding the others back.
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
}

export class WatermarkTracker {
  private readonly channels = new Map<string, Channel>();
  private current = Number.NEGATIVE_INFINITY;
  /** Highest record timestamp seen on any channel: Kafka Streams' "stream time". */
  streamTime = Number.NEGATIVE_INFINITY;

  addChannel(id: string, outOfOrderness: number, idleTimeout: number, now: number): void {
    if (this.channels.has(id)) return;
    this.channels.set(id, {
      watermark: Number.NEGATIVE_INFINITY,
      outOfOrderness,
      idleTimeout,
      lastActive: now,
      caughtUp: true,
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

  /** An upstream task announced its watermark. */
  announce(id: string, watermark: number, now: number): boolean {
    const c = this.channels.get(id);
    if (!c) throw new Error(`watermark: unknown channel ${id}`);
    if (watermark > c.watermark) {
      c.watermark = watermark;
      c.lastActive = now;
    }
    return this.recompute(now);
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

  idleChannels(now: number): string[] {
    return [...this.channels].filter(([, c]) => this.isIdle(c, now)).map(([id]) => id);
  }

  private isIdle(c: Channel, now: number): boolean {
    return c.caughtUp && now - c.lastActive >= c.idleTimeout;
  }

  private recompute(now: number): boolean {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    let active = 0;
    for (const c of this.channels.values()) {
      if (c.watermark > max) max = c.watermark;
      if (this.isIdle(c, now)) continue;
      active++;
      if (c.watermark < min) min = c.watermark;
    }
    // All idle: nothing holds back what has been seen.
    const next = active === 0 ? max : min;
    if (next > this.current) {
      this.current = next;
      return true;
    }
    return false;
  }
}
