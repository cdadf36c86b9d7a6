// The stateless steps: no store, nothing to restore, one record in, zero or more out.
import type { Operator } from "../runtime/processor.ts";
import type { Rec } from "../types.ts";

export function filterOperator(predicate: (rec: Rec) => boolean): Operator {
  return {
    name: "filter",
    stores: [],
    create: ({ forward }) => ({
      process: (r) => {
        if (predicate(r)) forward(r);
      },
    }),
  };
}

/** One record out per record in (map, keyBy). */
export function mapOperator(fn: (rec: Rec) => Rec, name = "map"): Operator {
  return { name, stores: [], create: ({ forward }) => ({ process: (r) => forward(fn(r)) }) };
}

export function flatMapOperator(fn: (rec: Rec) => Iterable<Rec>): Operator {
  return {
    name: "flatMap",
    stores: [],
    create: ({ forward }) => ({
      process: (r) => {
        for (const x of fn(r)) forward(x);
      },
    }),
  };
}

export function peekOperator(fn: (rec: Rec) => void): Operator {
  return {
    name: "peek",
    stores: [],
    create: ({ forward }) => ({
      process: (r) => {
        fn(r);
        forward(r);
      },
    }),
  };
}

/** Records of every input, as they come. */
export function mergeOperator(): Operator {
  return { name: "merge", stores: [], create: ({ forward }) => ({ process: (r) => forward(r) }) };
}
