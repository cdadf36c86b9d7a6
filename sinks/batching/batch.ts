// A batch: records encoded one after another into one buffer, as the store's request body will carry
// them. A request body is a slice of the buffer (a run of records, or all of them), not a copy, and
// the buffer and arrays are used again once the batch is settled, so filling a batch allocates nothing
// per record that the garbage collector would have to move to the old generation.
import type { Rec } from "../../stream/types.ts";

/** A buffer being filled: `buf[0, size)` is written. The shape a store's encoder writes into. */
export interface ByteBuffer {
  buf: Buffer;
  size: number;
}

/** Makes room for `n` more bytes at `out.size`, replacing `out.buf` with a bigger copy when it must. */
export function reserve(out: ByteBuffer, n: number): void {
  const need = out.size + n;
  if (need > out.buf.length) out.buf = grown(out, need);
}

function grown(out: ByteBuffer, need: number): Buffer {
  const next = Buffer.allocUnsafe(Math.max(out.buf.length * 2, need));
  out.buf.copy(next, 0, 0, out.size);
  return next;
}

const NONE = new Uint8Array(0);

export class Batch<V> implements ByteBuffer {
  /** Sequence number, given when the batch is sealed (of the last batch merged into it, for a merged one). */
  seq = 0;
  /** Bytes of `buf` in use. */
  size = 0;
  /** Records in the batch. */
  count = 0;
  /** settled[i] is 1 once record i is acknowledged or refused. Valid from the seal on. */
  settled: Uint8Array = NONE;
  /** Records not settled yet. */
  left = 0;

  constructor(
    public buf: Buffer,
    /** The records [0, count); a record's slot is cleared once it is settled. The array may be longer. */
    readonly recs: Array<Rec<V> | undefined>,
    /** ends[i]: the offset just past record i's bytes. The array may be longer. */
    readonly ends: number[],
  ) {}

  /** Where record i's bytes begin. */
  start(i: number): number {
    return i === 0 ? 0 : (this.ends[i - 1] as number);
  }

  /** The bytes of records [lo, hi): a slice of the buffer. */
  bytes(lo: number, hi: number): Buffer {
    return this.buf.subarray(this.start(lo), hi === 0 ? 0 : (this.ends[hi - 1] as number));
  }

  /** The bytes of records `items` (ascending), consecutive records taken as one run. */
  bytesOf(items: readonly number[]): Buffer {
    const parts: Buffer[] = [];
    let k = 0;
    while (k < items.length) {
      const first = items[k] as number;
      let last = first;
      while (k + 1 < items.length && items[k + 1] === last + 1) last = items[++k] as number;
      k++;
      parts.push(this.bytes(first, last + 1));
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  /** The records not settled yet, ascending. */
  unsettled(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.count; i++) if (!this.settled[i]) out.push(i);
    return out;
  }

  /** The first record not settled yet (`count` when none is left). */
  firstUnsettled(): number {
    let i = 0;
    while (i < this.count && this.settled[i]) i++;
    return i;
  }
}
