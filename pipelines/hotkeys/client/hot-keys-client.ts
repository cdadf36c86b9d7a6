// The hot-key client for services (`weir/hotkeys`): it follows the lists `weir run hotkeys` publishes
// (hotkeys.top) and the keys marked by hand (hotkeys.marks), from Kafka or, for a service without
// Kafka access, from `weir hotkeys serve` over HTTP, and answers isHot(dimension, key) from a Set: O(1),
// no I/O. Each service sets its own thresholds ("a room is hot for me at 10,000 requests a minute"),
// and is called back when a key becomes hot (to load it into a local cache) and when it cools down.
//
// A key is hot for a consumer while it is marked (until its mark expires) or measured: it becomes hot
// when a list of its threshold's window shows it at or above the count; it stays hot while lists show
// it at or above `coolBelow` x the count (hysteresis, so a key at the threshold does not flap); it cools
// when a list shows it lower, or leaves a list that is not full or whose last count is under that
// level, or when no list has shown it for `staleAfter` (the pipeline stopped: stale knowledge is not
// kept forever).
import { hostname } from "node:os";
import { KafkaClient } from "../../../kafka/client.ts";
import type { KafkaSecurity } from "../../../kafka/security.ts";
import { codecFor } from "../../../schemas/codec.ts";
import type { HotKeyMark, HotKeys } from "../../../schemas/types.generated.ts";
import { type Duration, ms } from "../../../stream/types.ts";

export interface Threshold {
  /** The window whose lists decide: one the pipeline publishes (10s, 1m by default). */
  window: Duration;
  /** Count in that window at which a key becomes hot. */
  count: number;
}

export interface HotKeyEvent {
  dimension: string;
  key: string;
  /** Why it is (or was) hot: a list showed it, or it is marked by hand. */
  reason: "measured" | "marked";
  /** The count that decided, for measured keys. */
  count: number | null;
  window: number | null;
  mark: HotKeyMark | null;
  at: number;
}

export interface HotKeysClientOptions {
  /** Kafka brokers: the client reads the topics itself. */
  brokers?: string[];
  /** TLS and SASL of those brokers (kafka/security.ts: kafkaSecurityFromEnv reads WEIR_KAFKA_*). */
  security?: KafkaSecurity | undefined;
  /** Or the base URL of `weir hotkeys serve` (http://host:port): the client polls GET /hotkeys/<dimension>. */
  url?: string;
  /** This service's thresholds, per dimension. Dimensions without one only report marks. */
  thresholds?: Record<string, Threshold>;
  /** Dimensions followed over HTTP besides those with a threshold (marks only). */
  dimensions?: string[];
  topic?: string;
  marksTopic?: string;
  /** A measured key no list has shown for this long cools down. Default 10s. */
  staleAfter?: Duration;
  /** A hot key stays hot down to this share of its threshold. Default 0.8. */
  coolBelow?: number;
  /** HTTP: how often each dimension is asked for. Default 1s. */
  pollInterval?: Duration;
  onHot?: (e: HotKeyEvent) => void;
  onCool?: (e: HotKeyEvent) => void;
  onError?: (e: Error) => void;
  /** Every list as it arrives (dashboards, the demo). */
  onList?: (list: HotKeys) => void;
  /** Names the Kafka consumer (its group is this plus a random suffix: every client reads everything). */
  clientId?: string;
}

interface Measured {
  count: number;
  window: number;
  seenAt: number;
}

/** What the HTTP endpoint answers for a dimension. */
export interface DimensionSnapshot {
  dimension: string;
  /** The latest list of each window. */
  lists: HotKeys[];
  /** Marks in force. */
  marks: HotKeyMark[];
}

const MARK_KEY = /^([A-Za-z0-9_.-]{1,64})\/(.+)$/s;

export class HotKeysClient {
  private readonly thresholds = new Map<string, { window: number; count: number }>();
  private readonly lists = new Map<string, HotKeys>();
  private readonly measured = new Map<string, Map<string, Measured>>();
  private readonly marks = new Map<string, Map<string, HotKeyMark>>();
  /** The keys hot now, with why (a cool-down event says why the key had been hot). */
  private readonly hot = new Map<string, Map<string, { reason: "measured" | "marked"; mark: HotKeyMark | null }>>();
  private readonly staleAfter: number;
  private readonly coolBelow: number;
  private readonly topic: string;
  private readonly marksTopic: string;
  private timer: NodeJS.Timeout | null = null;
  private poller: NodeJS.Timeout | null = null;
  private consumer: ReturnType<KafkaClient["native"]["consumer"]> | null = null;
  private closed = false;

  constructor(private readonly options: HotKeysClientOptions) {
    if (!options.brokers === !options.url) throw new TypeError("HotKeysClient: give either brokers or url");
    for (const [dimension, t] of Object.entries(options.thresholds ?? {})) {
      if (!(t.count > 0)) throw new RangeError(`HotKeysClient: threshold of ${dimension} must be a positive count`);
      this.thresholds.set(dimension, { window: ms(t.window), count: t.count });
    }
    this.staleAfter = ms(options.staleAfter ?? 10_000);
    this.coolBelow = options.coolBelow ?? 0.8;
    if (!(this.coolBelow > 0 && this.coolBelow <= 1))
      throw new RangeError("HotKeysClient: coolBelow must be in (0, 1]");
    this.topic = options.topic ?? "hotkeys.top";
    this.marksTopic = options.marksTopic ?? "hotkeys.marks";
  }

  /** Starts following; resolves once the Kafka consumer has joined, or the first poll answered. */
  async start(): Promise<void> {
    this.timer = setInterval(() => this.expire(Date.now()), 500);
    this.timer.unref();
    if (this.options.brokers) await this.startKafka(this.options.brokers);
    else await this.startHttp(this.options.url as string);
  }

  /** O(1): the key is marked, or measured hot for this client's threshold. */
  isHot(dimension: string, key: string | number): boolean {
    return this.hot.get(dimension)?.has(typeof key === "string" ? key : String(key)) ?? false;
  }

  /** The keys hot for this client now. */
  hotKeys(dimension: string): string[] {
    return [...(this.hot.get(dimension)?.keys() ?? [])];
  }

  /** The latest list of a dimension's window (ms), as published. */
  latest(dimension: string, window: Duration): HotKeys | undefined {
    return this.lists.get(`${dimension}\u0000${ms(window)}`);
  }

  /** Every dimension a list or a mark was seen for. */
  dimensions(): string[] {
    const out = new Set<string>();
    for (const l of this.lists.values()) out.add(l.dimension);
    for (const [d, m] of this.marks) if (m.size > 0) out.add(d);
    return [...out].sort();
  }

  snapshot(dimension: string): DimensionSnapshot {
    const lists = [...this.lists.values()]
      .filter((l) => l.dimension === dimension)
      .sort((a, b) => a.windowMs - b.windowMs);
    const now = Date.now();
    const marks = [...(this.marks.get(dimension)?.values() ?? [])].filter((m) => m.until > now);
    return { dimension, lists, marks };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.poller) clearTimeout(this.poller);
    await this.consumer?.disconnect().catch(() => {});
  }

  // --- what the sources feed --------------------------------------------------------------------

  /** A published list. */
  onList(list: HotKeys, now = Date.now()): void {
    const id = `${list.dimension}\u0000${list.windowMs}`;
    const prev = this.lists.get(id);
    if (prev && prev.windowStart > list.windowStart) return;
    this.lists.set(id, list);
    try {
      this.options.onList?.(list);
    } catch (e) {
      this.options.onError?.(e as Error);
    }
    const t = this.thresholds.get(list.dimension);
    if (!t || t.window !== list.windowMs) return;
    let m = this.measured.get(list.dimension);
    if (!m) {
      m = new Map();
      this.measured.set(list.dimension, m);
    }
    const cool = t.count * this.coolBelow;
    const inList = new Set<string>();
    const changed: string[] = [];
    for (const e of list.keys) {
      inList.add(e.key);
      const was = m.get(e.key);
      if (e.count >= t.count || (was && e.count >= cool)) {
        m.set(e.key, { count: e.count, window: list.windowMs, seenAt: now });
        if (!was) changed.push(e.key);
      } else if (was) {
        m.delete(e.key);
        changed.push(e.key);
      }
    }
    const last = list.keys[list.keys.length - 1];
    const absentIsCold = list.keys.length < list.k || !last || last.count < cool;
    if (absentIsCold) {
      for (const key of [...m.keys()]) {
        if (inList.has(key)) continue;
        m.delete(key);
        changed.push(key);
      }
    }
    for (const key of changed) this.reconcile(list.dimension, key, now);
  }

  /** A mark (or its removal: null) for `id` = `<dimension>/<key>`. */
  onMark(id: string, mark: HotKeyMark | null, now = Date.now()): void {
    const parsed = MARK_KEY.exec(id);
    if (!parsed) return;
    const [, dimension, key] = parsed as unknown as [string, string, string];
    let m = this.marks.get(dimension);
    if (!m) {
      m = new Map();
      this.marks.set(dimension, m);
    }
    if (mark) m.set(key, mark);
    else m.delete(key);
    this.reconcile(dimension, key, now);
  }

  /** Marks and measurements whose time is up. */
  expire(now: number): void {
    for (const [dimension, m] of this.measured) {
      for (const [key, v] of m) {
        if (now - v.seenAt < this.staleAfter) continue;
        m.delete(key);
        this.reconcile(dimension, key, now);
      }
    }
    for (const [dimension, m] of this.marks) {
      for (const [key, mark] of m) {
        if (mark.until > now) continue;
        m.delete(key);
        this.reconcile(dimension, key, now);
      }
    }
  }

  private reconcile(dimension: string, key: string, now: number): void {
    const measured = this.measured.get(dimension)?.get(key);
    const mark = this.marks.get(dimension)?.get(key);
    const marked = mark !== undefined && mark.until > now;
    let map = this.hot.get(dimension);
    const was = map?.get(key);
    const is = measured !== undefined || marked;
    if ((was !== undefined) === is) {
      if (was && is) was.reason = marked ? "marked" : "measured";
      return;
    }
    if (!map) {
      map = new Map();
      this.hot.set(dimension, map);
    }
    if (is) map.set(key, { reason: marked ? "marked" : "measured", mark: marked ? mark : null });
    else map.delete(key);
    const event: HotKeyEvent = {
      dimension,
      key,
      reason: is ? (marked ? "marked" : "measured") : (was?.reason ?? "measured"),
      count: measured?.count ?? null,
      window: measured?.window ?? null,
      mark: is ? (marked ? mark : null) : (was?.mark ?? null),
      at: now,
    };
    try {
      (is ? this.options.onHot : this.options.onCool)?.(event);
    } catch (e) {
      this.options.onError?.(e as Error);
    }
  }

  // --- sources ----------------------------------------------------------------------------------

  private async startKafka(brokers: string[]): Promise<void> {
    const clientId = this.options.clientId ?? "weir-hotkeys-client";
    // The setup every weir process shares (kafka/client.ts): bounded retries, the lz4 codec.
    const kafka = new KafkaClient({ clientId, brokers, security: this.options.security }).native;
    // A group of its own: every client reads every list (a broadcast), and commits nothing.
    const groupId = `${clientId}-${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1000, maxWaitTimeInMs: 200 });
    this.consumer = consumer;
    const lists = codecFor("HotKeys");
    const marks = codecFor("HotKeyMark");
    await consumer.connect();
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.subscribe({ topics: [this.topic], fromBeginning: false });
    await consumer.subscribe({ topics: [this.marksTopic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, message }) => {
        try {
          if (topic === this.topic) {
            if (message.value) this.onList(lists.decode(message.value) as HotKeys);
          } else if (message.key) {
            this.onMark(
              message.key.toString("utf8"),
              message.value ? (marks.decode(message.value) as HotKeyMark) : null,
            );
          }
        } catch (e) {
          this.options.onError?.(e as Error);
        }
      },
    });
    await joined;
  }

  private async startHttp(url: string): Promise<void> {
    const base = url.replace(/\/+$/, "");
    const every = ms(this.options.pollInterval ?? 1000);
    const dims = [...new Set([...this.thresholds.keys(), ...(this.options.dimensions ?? [])])];
    const poll = async () => {
      await Promise.all(
        dims.map(async (dimension) => {
          try {
            const res = await fetch(`${base}/hotkeys/${encodeURIComponent(dimension)}`, {
              signal: AbortSignal.timeout(Math.max(every, 2000)),
            });
            if (res.status === 404) return; // nothing published for it yet
            if (!res.ok) throw new Error(`GET /hotkeys/${dimension}: HTTP ${res.status}`);
            const snap = (await res.json()) as DimensionSnapshot;
            for (const l of snap.lists) this.onList(l);
            const now = Date.now();
            const marked = new Set(snap.marks.map((m) => m.key));
            for (const m of snap.marks) this.onMark(m.id, m, now);
            for (const key of [...(this.marks.get(dimension)?.keys() ?? [])]) {
              if (!marked.has(key)) this.onMark(`${dimension}/${key}`, null, now);
            }
          } catch (e) {
            this.options.onError?.(e as Error);
          }
        }),
      );
    };
    await poll();
    const loop = () => {
      if (this.closed) return;
      this.poller = setTimeout(() => void poll().finally(loop), every);
      this.poller.unref();
    };
    loop();
  }
}
