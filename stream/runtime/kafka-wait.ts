// Waiting out a Kafka that does not answer when a worker starts (issue 21, defect 1): each step that
// talks to Kafka is tried again with exponential backoff and jitter, every attempt logged with the
// brokers and the reason, and what is waited for shown on /health and in metrics until Kafka answers.
import type { Logger } from "pino";
import { isUnreachable } from "../kafka/stream-client.ts";

/** start() ended because stop() was called while it waited for Kafka. */
export class WorkerStoppedError extends Error {
  constructor(appId: string) {
    super(`${appId}: stopped while waiting for Kafka`);
    this.name = "WorkerStoppedError";
  }
}

/** The worker is waiting for Kafka: since when, how many attempts failed, and the last one's reason. */
interface Waiting {
  since: number;
  attempts: number;
  reason: string;
}

export class KafkaWait {
  private waiting: Waiting | null = null;
  /** Failed attempts since the worker was made (weir_stream_kafka_connect_retries_total). */
  retries = 0;
  private readonly stopSignal = new AbortController();

  constructor(
    private readonly appId: string,
    private readonly log: Logger,
    private readonly backoff: { initialMs: number; maxMs: number } = { initialMs: 500, maxMs: 30_000 },
  ) {}

  /** Ends every wait at once: the step under way rejects with WorkerStoppedError. */
  stop(): void {
    this.stopSignal.abort();
  }

  get reachable(): boolean {
    return this.waiting === null;
  }

  /** Runs `step` until Kafka answers it; an unreachable Kafka is waited out, other errors throw. */
  async until<T>(step: () => Promise<T>): Promise<T> {
    const { initialMs, maxMs } = this.backoff;
    for (let attempt = 1; ; attempt++) {
      if (this.stopSignal.signal.aborted) throw new WorkerStoppedError(this.appId);
      try {
        const result = await step();
        const wait = this.waiting;
        if (wait) {
          this.waiting = null;
          this.log.info(
            { attempts: wait.attempts, waitedMs: Date.now() - wait.since },
            `Kafka answered after ${wait.attempts} attempts (${((Date.now() - wait.since) / 1000).toFixed(1)} s)`,
          );
        }
        return result;
      } catch (e) {
        if (!isUnreachable(e)) throw e;
        if (this.stopSignal.signal.aborted) throw new WorkerStoppedError(this.appId);
        this.waiting ??= { since: Date.now(), attempts: 0, reason: "" };
        const wait = this.waiting;
        wait.attempts++;
        wait.reason = e.reason;
        this.retries++;
        const delay = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 20));
        const next = Math.round(delay / 2 + Math.random() * (delay / 2));
        this.log.warn(
          { attempt: wait.attempts, brokers: e.brokers, reason: e.reason, retryInMs: next },
          `waiting for Kafka at ${e.brokers.join(",")} to answer (attempt ${wait.attempts}; next in ${next} ms): ${e.reason}`,
        );
        await abortableSleep(next, this.stopSignal.signal);
      }
    }
  }

  /** What /health says while Kafka does not answer; empty once it does. */
  healthDetail(brokers: readonly string[]): Record<string, string> {
    const wait = this.waiting;
    if (!wait) return {};
    return {
      kafka: `unreachable for ${((Date.now() - wait.since) / 1000).toFixed(1)} s (${wait.attempts} attempts): ${wait.reason}`,
      waitingFor: `Kafka at ${brokers.join(",")}`,
    };
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
