// A custom stateful step (the DSL's `process`): user code with its own keyed store, changelogged like
// every store, bounded by a TTL in event time and a maximum of entries (both counted in the store).
import type { Emit, Operator } from "../runtime/processor.ts";
import { json, type Rec, type Serde } from "../types.ts";

export interface StoreOptions {
  /** Drop an entry this long (event time) after its last update. */
  ttl?: number;
  /** Keep at most this many entries; the least recently updated are evicted (and counted). */
  maxEntries?: number;
  serde?: Serde<unknown>;
}

/** What a custom stateful step sees: its keyed store, the watermark, and a way to emit. */
export interface ProcessContext {
  readonly store: KeyValueAccess;
  readonly watermark: number;
  forward(rec: Rec): void;
}

export interface KeyValueAccess {
  get(key: string): unknown;
  put(key: string, value: unknown, ts: number): void;
  delete(key: string): void;
  entries(): IterableIterator<[string, unknown]>;
  readonly size: number;
}

export function processOperator(
  store: string,
  fn: (rec: Rec, ctx: ProcessContext) => void,
  options: StoreOptions & { onWatermark?: (watermark: number, ctx: ProcessContext) => void },
): Operator {
  const { onWatermark, serde, ttl, maxEntries } = options;
  return {
    name: `process ${store}`,
    stores: [
      {
        name: store,
        serde: serde ?? json(),
        ...(ttl !== undefined ? { ttl } : {}),
        ...(maxEntries !== undefined ? { maxEntries } : {}),
      },
    ],
    create: (ctx) => {
      const kv = ctx.store<unknown>(store);
      const forward: Emit = ctx.forward;
      const pctx: ProcessContext = {
        store: {
          get: (k) => kv.get(k),
          put: (k, v, ts) => kv.put(k, v, ts),
          delete: (k) => kv.delete(k),
          entries: () => kv.entries(),
          get size() {
            return kv.size;
          },
        },
        get watermark() {
          return ctx.watermark;
        },
        forward,
      };
      return {
        process: (r) => fn(r, pctx),
        onWatermark: (wm) => {
          kv.expire(wm);
          onWatermark?.(wm, pctx);
        },
      };
    },
  };
}
