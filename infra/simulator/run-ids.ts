// The ids a run gives its requests, business events, device reports and traces. They name the run
// (seed and start): the counters and the rng restart with every run, and two runs of one seed would
// otherwise reuse ids, so the stores (which keep the first line of an id) would drop the second
// run's lines and mix both runs' traces.
import type { Rng } from "./random.ts";

export class RunIds {
  private counter = 0;

  constructor(readonly runTag: string) {}

  /** `<prefix><run tag>-<n>`, n counting every id of the run in base 36. */
  next(prefix: string): string {
    return `${prefix}${this.runTag}-${(this.counter++).toString(36)}`;
  }

  /** A trace id: the run's tag in place of the first 8 of 32 random hex digits. */
  trace(rng: Rng): string {
    // As many draws as a fully random id, so the rest of the run's traffic does not depend on the tag.
    return this.runTag + rng.hex(32).slice(8);
  }
}

/** 8 hex digits from a run's seed and start (FNV-1a over both): the same run gives the same ids. */
export function runTagOf(seed: number, start: number): string {
  let h = 0x811c9dc5;
  for (const c of `${seed}:${start}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}
