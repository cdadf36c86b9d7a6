// Merges top-k lists of disjoint parts of a stream (each task sketches its own partitions) into the
// list of the whole: a key's count is the sum of its counts in the lists that hold it. A list that
// does not hold it says the key counted at most that list's `floor` there, so the merged count is a
// lower bound (never above the truth, like each part's) and `upper` what it could be at most. Parts
// should send more keys than the merged list keeps, so a key heavy overall but cut from one part's
// list loses little.
import type { SketchKey } from "./hash.ts";

export interface PartialTop<K extends SketchKey = SketchKey> {
  total: number;
  keys: ReadonlyArray<{ key: K; count: number }>;
  /** A key not in `keys` counted at most this in the part. */
  floor: number;
}

export interface MergedKey<K extends SketchKey = SketchKey> {
  key: K;
  /** Sum of the counts in the parts' lists: a lower bound. */
  count: number;
  /** count plus the floors of the parts whose list misses the key: an upper bound. */
  upper: number;
}

export interface MergedTop<K extends SketchKey = SketchKey> {
  total: number;
  keys: Array<MergedKey<K>>;
  parts: number;
}

export function mergeTopK<K extends SketchKey>(parts: ReadonlyArray<PartialTop<K>>, k: number): MergedTop<K> {
  const sums = new Map<K, { count: number; missing: number }>();
  let total = 0;
  let floors = 0;
  for (const p of parts) {
    total += p.total;
    floors += p.floor;
    for (const { key, count } of p.keys) {
      const s = sums.get(key);
      if (s) {
        s.count += count;
        s.missing -= p.floor;
      } else sums.set(key, { count, missing: -p.floor });
    }
  }
  const keys: Array<MergedKey<K>> = [];
  for (const [key, s] of sums) keys.push({ key, count: s.count, upper: s.count + floors + s.missing });
  keys.sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  if (keys.length > k) keys.length = k;
  return { total, keys, parts: parts.length };
}
