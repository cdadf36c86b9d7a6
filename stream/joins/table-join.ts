// Stream-table join: each stream record looks its key up in the table's store, which the task
// materializes from the table topic's partition with the same number (co-partitioned).
import type { TableJoinNode } from "../dsl/graph.ts";
import type { Emit, Processor } from "../runtime/processor.ts";
import type { KeyValueStore } from "../state/store.ts";
import type { Rec } from "../types.ts";

export class TableJoin implements Processor {
  /** Inner-join records dropped for want of a row. */
  unmatched = 0;

  constructor(
    private readonly node: TableJoinNode,
    private readonly table: KeyValueStore<unknown>,
    private readonly out: Emit,
  ) {}

  process(rec: Rec): void {
    const row = rec.key === null ? undefined : this.table.get(rec.key);
    if (row === undefined && this.node.type === "inner") {
      this.unmatched++;
      return;
    }
    this.out({ key: rec.key, value: this.node.joiner(rec.value, row ?? null, rec.key), ts: rec.ts });
  }
}

/** Keeps the table's store up to date: the latest value per key, a null value deletes. */
export class TableMaterializer implements Processor {
  constructor(private readonly store: KeyValueStore<unknown>) {}

  process(rec: Rec): void {
    if (rec.key === null) return;
    if (rec.value === null || rec.value === undefined) this.store.delete(rec.key);
    else this.store.put(rec.key, rec.value, rec.ts);
  }
}
