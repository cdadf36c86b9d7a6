// Stream-table join: each stream record looks its key up in the table's store, which the task
// materializes from the table topic's partition with the same number (co-partitioned).
import type { Operator } from "../runtime/processor.ts";

export interface TableJoinSpec {
  type: "inner" | "left";
  /** The table's store (the DSL compiles the join into the task that materializes it). */
  tableStore: string;
  joiner: (value: unknown, row: unknown, key: string | null) => unknown;
}

/** Inner-join records without a row are dropped (counted as `no-row`); left-join ones meet null. */
export function tableJoin(spec: TableJoinSpec, name: string): Operator {
  return {
    name,
    stores: [],
    create: (ctx) => {
      const table = ctx.store<unknown>(spec.tableStore);
      const out = ctx.forward;
      const { joiner, type } = spec;
      let unmatched = 0;
      return {
        process: (rec) => {
          const row = rec.key === null ? undefined : table.get(rec.key);
          if (row === undefined && type === "inner") {
            unmatched++;
            return;
          }
          out({ key: rec.key, value: joiner(rec.value, row ?? null, rec.key), ts: rec.ts });
        },
        dropped: () => ({ "no-row": unmatched }),
      };
    },
  };
}
