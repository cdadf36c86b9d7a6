// A Sink for the worker's unit tests: acknowledges what was written when flushed, unless held (a
// store that is down: a flush with records waits), refuses the records `refuse` names (takeRejected), fails a flush on demand,
// and notes each flush and acknowledgement in a journal (FakeKafkaCluster's, for order assertions).
import type { Sink } from "../sink.ts";
import type { Rec } from "../types.ts";

export class FakeSink<V> implements Sink<V> {
  readonly highWater = 1_000_000;
  /** Records the store accepted, in order. */
  readonly acknowledged: Array<Rec<V>> = [];
  /** Flushes that found the store down. */
  flushesHeld = 0;
  /** The next flush rejects with this. */
  failNext: Error | null = null;
  private written: Array<Rec<V>> = [];
  private rejected: Array<{ rec: Rec<V>; reason: string; message: string }> = [];
  /** While set, health() reports the store down with this detail. */
  unhealthy: string | null = null;
  closed = false;
  private gate: Promise<void> | null = null;
  private openGate: () => void = () => {};
  private failGate: (e: Error) => void = () => {};

  constructor(
    readonly name: string,
    private readonly journal: string[],
    /** A reason to refuse a record for good, or null to accept it. */
    private readonly refuse: (value: V) => string | null = () => null,
  ) {}

  /** The store goes down: flushes of records wait until `release`. */
  hold(): void {
    if (this.gate) return;
    this.gate = new Promise((resolve, reject) => {
      this.openGate = resolve;
      this.failGate = reject;
    });
    this.gate.catch(() => {}); // rejected on close(), awaited by the flushes held
  }

  release(): void {
    this.gate = null;
    this.openGate();
  }

  write(rec: Rec<V>): void {
    this.written.push(rec);
  }

  async flush(): Promise<void> {
    if (this.closed) throw new Error(`${this.name}: flush after close`);
    const batch = this.written;
    this.written = [];
    this.journal.push(`sink-flush ${this.name}`);
    // Nothing to acknowledge: done, store down or not (as the real sinks answer an empty flush).
    if (this.gate && batch.length > 0) {
      this.flushesHeld++;
      await this.gate;
    }
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = null;
      this.written = [...batch, ...this.written];
      throw e;
    }
    for (const rec of batch) {
      const reason = this.refuse(rec.value);
      if (reason) this.rejected.push({ rec, reason, message: `${this.name} refused it` });
      else this.acknowledged.push(rec);
    }
    this.journal.push(`sink-ack ${this.name}`);
  }

  pending(): number {
    return this.written.length;
  }

  takeRejected(): Array<{ rec: Rec<V>; reason: string; message: string }> {
    const out = this.rejected;
    this.rejected = [];
    return out;
  }

  health(): { ok: boolean; detail: string } {
    return this.unhealthy === null ? { ok: true, detail: "ok" } : { ok: false, detail: this.unhealthy };
  }

  /** As a real sink's close(): the flushes held reject. */
  async close(): Promise<void> {
    this.closed = true;
    this.failGate(new Error(`${this.name}: closed`));
  }
}
