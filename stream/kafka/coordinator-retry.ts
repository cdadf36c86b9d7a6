// Requests to a group or transaction coordinator that is not settled are sent again, after a backoff,
// to the coordinator found again. On a cluster a coordinator moves when its broker dies and again
// when the broker comes back and takes its partitions' leadership back; the new one loads the group's
// or the transactions' state before it answers. Meanwhile it answers NOT_COORDINATOR,
// COORDINATOR_NOT_AVAILABLE or COORDINATOR_LOAD_IN_PROGRESS, and, while it still completes the
// previous transaction (writing its markers to every partition it touched), CONCURRENT_TRANSACTIONS.
// Java's producer retries all four with a backoff. kafkajs 2.2.4 retries CONCURRENT_TRANSACTIONS for
// AddPartitionsToTxn only, and its TxnOffsetCommit retry lists Kafka's names (NOT_COORDINATOR,
// COORDINATOR_LOAD_IN_PROGRESS) where its errors carry its own (NOT_COORDINATOR_FOR_GROUP,
// GROUP_LOAD_IN_PROGRESS), so it gives up at once: on the 3-broker cluster with a broker SIGKILLed and
// brought back, the surviving worker's checkpoints failed and it stopped (cluster-health.test.ts).
// The request that got such an answer did nothing, so sending it again is safe. kafkajs finds the
// coordinator again for each call (FindCoordinator), so a call made again reaches the new one.
import { isCoordinatorUnsettled, isUnreachable } from "./stream-client.ts";

export interface CoordinatorRetry {
  /** First wait, doubled after each refusal. Default 20 ms. */
  initialMs?: number;
  /** Longest wait. Default 1 s. */
  maxMs?: number;
  /** Total time given before the error is passed on. Default 60 s. */
  budgetMs?: number;
  /** Also wait out a Kafka that does not answer (KafkaUnreachableError): a coordinator's broker just killed. */
  unreachable?: boolean;
  /** Told of each refusal before the wait (to log it). */
  onRetry?: (e: unknown, attempt: number, waitMs: number) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/** Runs `op`, again after a doubling backoff while the coordinator is not settled, within a budget. */
export async function retryCoordinator<T>(op: () => Promise<T>, options: CoordinatorRetry = {}): Promise<T> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = options.now ?? Date.now;
  const maxMs = options.maxMs ?? 1000;
  const deadline = now() + (options.budgetMs ?? 60_000);
  let wait = options.initialMs ?? 20;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      const retriable = isCoordinatorUnsettled(e) || (options.unreachable === true && isUnreachable(e));
      if (!retriable || now() + wait > deadline) throw e;
      options.onRetry?.(e, attempt, wait);
      await sleep(wait);
      wait = Math.min(wait * 2, maxMs);
    }
  }
}
