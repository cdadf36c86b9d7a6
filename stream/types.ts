// The record that flows between operators, and the small value types every part of the runtime shares.

/** Keys are strings: Kafka message keys in weir are scalar ids (uid, service, deviceId) or composites of them. */
export type Key = string | null;

export interface Rec<V = unknown> {
  key: Key;
  value: V;
  /** Event time, milliseconds since the epoch (UTC). */
  ts: number;
  headers?: Record<string, string>;
}

/** How state and repartitioned values become bytes. JSON unless a topology says otherwise. */
export interface Serde<T> {
  encode(value: T): Buffer;
  decode(bytes: Buffer): T;
}

export const jsonSerde: Serde<unknown> = {
  encode: (v) => Buffer.from(JSON.stringify(v)),
  decode: (b) => JSON.parse(b.toString("utf8")),
};

export function json<T>(): Serde<T> {
  return jsonSerde as Serde<T>;
}

/** A duration as milliseconds or as text: 500ms, 10s, 5m, 1h, 7d. */
export type Duration = number | string;

export function ms(d: Duration): number {
  if (typeof d === "number") {
    if (!Number.isFinite(d) || d < 0) throw new RangeError(`not a duration: ${d}`);
    return d;
  }
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(d.trim());
  if (!m) throw new RangeError(`not a duration: ${JSON.stringify(d)} (use e.g. 500ms, 10s, 5m, 1h, 7d)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms" | "s" | "m" | "h" | "d"];
  return Math.round(Number(m[1]) * unit);
}

/** What a failing record costs: a DLQ record (the default), a counter, or the worker. */
export type ErrorPolicy = "dlq" | "skip" | "fail";

/** Thrown for topology mistakes found before any record flows. */
export class TopologyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TopologyError";
  }
}
