// A transaction coordinator answers CONCURRENT_TRANSACTIONS while it still completes the previous
// transaction of the same producer (writing its commit markers to every partition it touched). On a
// single broker that takes a moment nobody sees; on a cluster, with markers going to other brokers
// (or a broker just restarted), the next transaction's AddOffsetsToTxn arrives first. Java's producer
// retries it with a backoff; kafkajs retries it for AddPartitionsToTxn but not for AddOffsetsToTxn,
// and the worker dropped a good checkpoint and stopped (the cluster test's broker kill found it).
// Nothing was added to the transaction when the coordinator says so, so sending again is safe.

export interface ConcurrentRetry {
  /** First wait, doubled after each refusal. Default 20 ms. */
  initialMs?: number;
  /** Longest wait. Default 500 ms. */
  maxMs?: number;
  /** Total time given before the error is passed on. Default 15 s. */
  budgetMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export function isConcurrentTransactions(e: unknown): boolean {
  return (e as { type?: unknown } | null)?.type === "CONCURRENT_TRANSACTIONS";
}

/** Runs `op`, again after a backoff while the coordinator answers CONCURRENT_TRANSACTIONS, within a budget. */
export async function retryConcurrentTransactions<T>(op: () => Promise<T>, options: ConcurrentRetry = {}): Promise<T> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = options.now ?? Date.now;
  const maxMs = options.maxMs ?? 500;
  const deadline = now() + (options.budgetMs ?? 15_000);
  let wait = options.initialMs ?? 20;
  for (;;) {
    try {
      return await op();
    } catch (e) {
      if (!isConcurrentTransactions(e) || now() + wait > deadline) throw e;
      await sleep(wait);
      wait = Math.min(wait * 2, maxMs);
    }
  }
}
