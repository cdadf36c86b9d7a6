// How long a sink waits before trying a failed request again.

/**
 * Exponential backoff with equal jitter: half the step is fixed, half random, so the retries of many
 * workers that failed together spread out instead of arriving together again.
 */
export function backoff(attempt: number, initial: number, max: number, random: () => number = Math.random): number {
  const step = Math.min(max, initial * 2 ** (attempt - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

/** The pause before retry `attempt`: the backoff, or longer when the server asked for it (never above `max`). */
export function retryDelay(
  attempt: number,
  initial: number,
  max: number,
  retryAfterMs: number | null,
  random: () => number = Math.random,
): number {
  const b = backoff(attempt, initial, max, random);
  return retryAfterMs === null ? b : Math.max(b, Math.min(max, retryAfterMs));
}
