// The disk channel's index of taken, un-committed records: for each, its seq and the logical offset
// just past it, in take order, so that a commit knows how far it frees the disk. A ring of two
// Float64Arrays: 16 bytes per record in flight, nothing per record committed.
/** Seq and logical end of each taken, un-committed record: how far a commit frees the disk. */
export class TakenRecords {
  private seqs = new Float64Array(1024);
  private ends = new Float64Array(1024);
  private head = 0;
  count = 0;

  push(seq: number, end: number): void {
    if (this.count === this.seqs.length) this.grow();
    const i = (this.head + this.count) & (this.seqs.length - 1);
    this.seqs[i] = seq;
    this.ends[i] = end;
    this.count++;
  }

  /** Drops the records with seq <= upto; returns how many, with the logical end of the last in `lastEnd`. */
  dropUpTo(upto: number): number {
    const mask = this.seqs.length - 1;
    let n = 0;
    while (this.count > 0 && (this.seqs[this.head] as number) <= upto) {
      this.lastEnd = this.ends[this.head] as number;
      this.head = (this.head + 1) & mask;
      this.count--;
      n++;
    }
    return n;
  }

  lastEnd = 0;

  clear(): void {
    this.head = 0;
    this.count = 0;
  }

  private grow(): void {
    const cap = this.seqs.length;
    const seqs = new Float64Array(cap * 2);
    const ends = new Float64Array(cap * 2);
    for (let k = 0; k < this.count; k++) {
      seqs[k] = this.seqs[(this.head + k) & (cap - 1)] as number;
      ends[k] = this.ends[(this.head + k) & (cap - 1)] as number;
    }
    this.seqs = seqs;
    this.ends = ends;
    this.head = 0;
  }
}
