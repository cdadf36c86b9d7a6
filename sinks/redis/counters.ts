// Hot counters in Redis, written idempotently: a delta carries its writer (a pipeline task, or a
// service process) and a sequence number that only grows per writer (a period's end, or a flush
// number); one Lua script adds it to the counter and records the sequence in the counter's marker
// hash, unless the marker already holds that sequence or a later one. A replay after a crash, or a
// retry after a timeout that did reach Redis, is then a no-op, and nothing else is needed: no
// per-delta ids to expire, one small hash per counter with a field per writer.
//
//   <prefix>{<key>}           the counter (INCRBY)
//   <prefix>{<key>}:applied   writer -> last sequence applied (HSET), expiring `markerTtl` after the last write
//
// The braces are a Redis Cluster hash tag: a counter and its markers live in one slot, so the script
// is valid on a cluster too. Why this and not per-period fields summed on read, Kafka Streams'
// record cache or Vector's reduce: docs/hotkeys.md.
import { Redis, type RedisOptions } from "ioredis";

/**
 * A delta as a pipeline step emits it (the runtime's `coalesce`): `delta` to counter `key` for the
 * periods ending at `end`, by `writer`. The sink writes it with `end` as its sequence.
 */
export interface CounterDelta {
  key: string;
  delta: number;
  /** The periods summed: [start, end). */
  start: number;
  end: number;
  writer: string;
}

/** One write: `delta` to counter `key`, by `writer`, whose `seq` grows from write to write. */
export interface CounterWrite {
  key: string;
  delta: number;
  writer: string;
  seq: number;
}

export type WriteOutcome = "applied" | "duplicate" | { error: Error };

const APPLY_DELTA = `
local last = redis.call('HGET', KEYS[2], ARGV[2])
if last and tonumber(last) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return 1
`;

/** Keys longer than this are refused: a counter's name is an id, not a document. */
export const MAX_COUNTER_KEY_BYTES = 512;
const MAX_WRITER_BYTES = 256;

type ScriptedRedis = Redis & {
  applyDelta(
    counter: string,
    markers: string,
    delta: string,
    writer: string,
    seq: string,
    ttl: string,
  ): Promise<number>;
};

export interface CounterStoreOptions {
  /** redis://host:port[/db] */
  url: string;
  /** Prefix of every key written, e.g. `weir:gifts:`. */
  prefix: string;
  /** Seconds a counter's markers outlive its last write (a replay older than that would apply twice). Default 7 days. */
  markerTtlSeconds?: number;
  /** More ioredis options (TLS, password from a file, ...). */
  redis?: RedisOptions;
}

/** Why a write cannot be made however often it is tried (the record goes to the DLQ). */
export function writeProblem(w: CounterWrite): string | null {
  if (Buffer.byteLength(w.key) > MAX_COUNTER_KEY_BYTES) return `counter key longer than ${MAX_COUNTER_KEY_BYTES} bytes`;
  if (Buffer.byteLength(w.writer) > MAX_WRITER_BYTES || w.writer === "") return "writer id empty or too long";
  if (!Number.isSafeInteger(w.delta)) return `delta ${w.delta} is not a safe integer`;
  if (!Number.isSafeInteger(w.seq) || w.seq < 0) return `sequence ${w.seq} is not a non-negative safe integer`;
  return null;
}

export class CounterStore {
  readonly prefix: string;
  readonly redis: ScriptedRedis;
  private readonly ttl: string;

  constructor(options: CounterStoreOptions) {
    this.prefix = options.prefix;
    this.ttl = String(options.markerTtlSeconds ?? 7 * 86_400);
    // Retries are the caller's (the batching sink's backoff, or the service buffer's): a command fails
    // at once while Redis is unreachable instead of queueing behind reconnects.
    this.redis = new Redis(options.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      connectTimeout: 5000,
      retryStrategy: (times) => Math.min(times * 200, 2000),
      ...options.redis,
    }) as ScriptedRedis;
    this.redis.on("error", () => {}); // reported through the failed commands
    this.redis.defineCommand("applyDelta", { numberOfKeys: 2, lua: APPLY_DELTA });
  }

  counterKey(key: string): string {
    return `${this.prefix}{${key}}`;
  }

  /** Applies the writes in order, in one round trip; each says whether it counted or was a replay. */
  async apply(writes: readonly CounterWrite[]): Promise<WriteOutcome[]> {
    if (writes.length === 0) return [];
    const p = this.redis.pipeline();
    for (const w of writes) {
      const counter = this.counterKey(w.key);
      (p as unknown as ScriptedRedis).applyDelta(
        counter,
        `${counter}:applied`,
        String(w.delta),
        w.writer,
        String(w.seq),
        this.ttl,
      );
    }
    const results = await p.exec();
    if (!results) throw new Error("redis pipeline discarded");
    return results.map(([err, res]) => (err ? { error: err } : res === 1 ? "applied" : "duplicate"));
  }

  /** The counter's value (0 when it was never written). */
  async get(key: string): Promise<number> {
    const v = await this.redis.get(this.counterKey(key));
    return v === null ? 0 : Number(v);
  }

  async close(): Promise<void> {
    if (this.redis.status === "end") return;
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** A Redis error that a later try may not meet (the server away, busy, out of memory, loading). */
export function isTransientRedisError(e: unknown): boolean {
  const err = e as { name?: string; message?: string; code?: string };
  if (err?.code && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH)$/.test(err.code)) {
    return true;
  }
  const m = err?.message ?? "";
  if (err?.name === "MaxRetriesPerRequestError") return true;
  return /^(OOM|LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|NOREPLICAS)\b|Connection is closed|Stream isn't writeable|connect ETIMEDOUT|Command timed out/.test(
    m,
  );
}
