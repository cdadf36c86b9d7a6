// Records on their way to Kafka through one producer (Kafka Streams' RecordCollector): buffered,
// sent a batch at a time in the background, awaited when a checkpoint needs them acknowledged. A
// failed send does not throw where the record was produced: it is kept, and the checkpoint that
// would have committed past it fails instead.
import type { OutputProducer, OutRecord } from "../kafka/stream-client.ts";

export class RecordCollector {
  private buffered: OutRecord[] = [];
  private sends: Array<Promise<void>> = [];
  private failure: unknown = null;

  constructor(
    private readonly producer: OutputProducer,
    /** Records buffered before they are sent. */
    private readonly batchSize: number,
  ) {}

  add(rec: OutRecord): void {
    this.buffered.push(rec);
    if (this.buffered.length >= this.batchSize) this.send();
  }

  /** Sends what is buffered; the send runs in the background. */
  send(): void {
    if (this.buffered.length === 0) return;
    const batch = this.buffered;
    this.buffered = [];
    this.sends.push(
      this.producer.send(batch).catch((e) => {
        this.failure ??= e;
      }),
    );
  }

  /** Sends begun and not yet awaited by `drain`. */
  get inFlight(): number {
    return this.sends.length;
  }

  /** Waits until every send begun so far has settled (see `takeFailure`). */
  async drain(): Promise<void> {
    await Promise.all(this.sends.splice(0, this.sends.length));
  }

  /** The first send that failed since the last call, if any. */
  takeFailure(): unknown {
    const e = this.failure;
    this.failure = null;
    return e;
  }
}
