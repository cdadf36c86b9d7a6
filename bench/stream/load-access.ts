// Loads AccessLog records into a Kafka topic for the stream-runtime benchmark (weir's runtime vs the
// Kafka Streams peer in bench/peers/kafka-streams/).
//
//   node --import tsx bench/stream/load-access.ts --topic T --records N
//        [--partitions 6] [--brokers 127.0.0.1:9092] [--keys 64] [--rate R]
//        [--batch 500] [--compression none|gzip] [--seed 1] [--keep-topic]
//        [--key service-endpoint|service]
//
// (Re)creates the topic (deleted first if it exists, replication 1; with --keep-topic an existing
// topic is kept and appended to, e.g. to start a consumer on it first), then produces N records in
// Avro single-object encoding (schemas/codec.ts) over --keys distinct `${service}|${endpoint}`
// pairs (Zipf-skewed, s = 0.8), deterministic for a given --seed. The Kafka key is
// `${service}|${endpoint}` (--key service-endpoint, the default) or the record's `service` (--key
// service, as logs.access is keyed: the health pipeline needs a service's endpoints in one partition).
//
// Backlog mode (default): event time `ts` starts at 2026-11-20T12:00:00Z and advances by 1 ms every
// 100 records (100,000 events per second of event time, N/100000 s in all). ts never decreases, in
// the whole topic and so in each partition (no out-of-order jitter). The Kafka timestamp equals ts.
// Live mode (--rate R): R records/s, ts = Date.now() when the record is made, until N are sent.
//
// Prints one JSON line at the end: {topic, records, partitions, keys, firstTs, lastTs, elapsedMs, ...}.
import kafkajs from "kafkajs";
import { ENDPOINTS, SERVICES } from "../../infra/simulator/platform.ts";
import { AliasTable, Rng, zipfWeights } from "../../infra/simulator/random.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { AccessLog } from "../../schemas/types.generated.ts";

const { Kafka, logLevel, CompressionTypes, Partitioners } = kafkajs;

const EPOCH = Date.UTC(2026, 10, 20, 12, 0, 0); // 2026-11-20T12:00:00Z
const EVENTS_PER_SECOND = 100_000;

function args(): Map<string, string> {
  const m = new Map<string, string>();
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const k = a[i] as string;
    if (!k.startsWith("--")) throw new Error(`unexpected argument ${k}`);
    const v = a[i + 1];
    if (v === undefined || v.startsWith("--")) m.set(k.slice(2), "true");
    else {
      m.set(k.slice(2), v);
      i++;
    }
  }
  return m;
}

const opts = args();
const num = (name: string, dflt?: number): number => {
  const v = opts.get(name);
  if (v === undefined) {
    if (dflt === undefined) throw new Error(`--${name} is required`);
    return dflt;
  }
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number, got ${v}`);
  return n;
};
const TOPIC = opts.get("topic");
if (!TOPIC) throw new Error("--topic is required");
const RECORDS = num("records");
let PARTITIONS = num("partitions", 6);
const KEYS = num("keys", 64);
const RATE = opts.has("rate") ? num("rate") : 0;
// Messages per produce request (one partition's). Small on purpose: kafkajs groups a request's
// messages by partition in time quadratic in their number.
const BATCH = num("batch", 500);
const SEED = num("seed", 1);
const BROKERS = (opts.get("brokers") ?? "127.0.0.1:9092").split(",");
const COMPRESSION = opts.get("compression") ?? "none";
const KEEP_TOPIC = opts.has("keep-topic");
const KEY = opts.get("key") ?? "service-endpoint";
if (KEY !== "service-endpoint" && KEY !== "service") throw new Error("--key must be service-endpoint or service");
if (COMPRESSION !== "none" && COMPRESSION !== "gzip") throw new Error("--compression must be none or gzip");
if (KEYS < 1 || PARTITIONS < 1) throw new Error("--keys and --partitions must be at least 1");

// ---- the key space: real endpoints of the simulated platform first, then versioned variants ----

interface KeyProfile {
  key: string;
  service: string;
  system: string;
  endpoint: string;
  method: string;
  medianUs: number;
  sigma: number;
  errorRate: number;
  clientErrorRate: number;
  bytesOut: number;
  hosts: number;
  caller: string | null;
}

function keyProfiles(n: number): KeyProfile[] {
  const systemOf = new Map(SERVICES.map((s) => [s.name, s]));
  const calledBy = new Map<string, string>();
  for (const e of ENDPOINTS) if (e.calls) calledBy.set(`${e.calls.service}|${e.calls.path}`, e.service);
  const out: KeyProfile[] = [];
  for (let round = 0; out.length < n; round++) {
    for (const e of ENDPOINTS) {
      if (out.length >= n) break;
      const svc = systemOf.get(e.service);
      const endpoint = round === 0 ? e.path : `/v${round + 1}${e.path}`;
      const caller = calledBy.get(`${e.service}|${e.path}`) ?? null;
      out.push({
        key: `${e.service}|${endpoint}`,
        service: e.service,
        system: svc?.system ?? "misc",
        endpoint,
        method: e.method,
        // The simulator's medians are the service's own work; scale so the overall median is ~20 ms.
        medianUs: Math.round(e.medianMs * 1000 * (1 + 0.15 * round)),
        sigma: e.sigma + 0.2,
        errorRate: Math.max(e.errorRate, 0.005) * 2,
        clientErrorRate: e.clientErrorRate,
        bytesOut: e.bytesOut,
        hosts: svc?.hosts ?? 2,
        caller,
      });
    }
  }
  return out;
}

const profiles = keyProfiles(KEYS);
const keyTable = new AliasTable(zipfWeights(profiles.length, 0.8));
const keyBuffers = profiles.map((p) => Buffer.from(KEY === "service" ? p.service : p.key));
const hostNames = profiles.map((p) => Array.from({ length: p.hosts }, (_, i) => `${p.service}-7d9f-${i + 1}`));
const STATUS_5XX = [500, 502, 503, 504, 503, 500];
const CODE_5XX: Record<number, string> = {
  500: "INTERNAL",
  502: "BAD_GATEWAY",
  503: "UPSTREAM_UNAVAILABLE",
  504: "UPSTREAM_TIMEOUT",
};
const STATUS_4XX = [400, 401, 403, 404, 429];
const CODE_4XX: Record<number, string> = {
  400: "BAD_REQUEST",
  401: "NOT_SIGNED_IN",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  429: "RATE_LIMITED",
};
const AGENTS = ["inke-android/8.4.1", "inke-ios/8.4.0", "inke-android/8.3.9", "inke-web/2.1.0", "okhttp/4.12.0"];

const rng = new Rng(SEED);
const codec = codecFor("AccessLog");
let seq = 0;

function makeRecord(ts: number): { k: number; key: Buffer; value: Buffer } {
  const k = keyTable.sample(rng);
  const p = profiles[k] as KeyProfile;
  const r = rng.next();
  let status = 200;
  let errorCode: string | null = null;
  let latencyUs = Math.round(rng.logNormal(p.medianUs, p.sigma));
  if (r < p.errorRate) {
    status = rng.pick(STATUS_5XX);
    errorCode = CODE_5XX[status] as string;
    // Timeouts sit at the gateway's limit; other server errors are fast or slow at random.
    if (status === 504) latencyUs = 3_000_000 + rng.int(50_000);
  } else if (r < p.errorRate + p.clientErrorRate) {
    status = rng.pick(STATUS_4XX);
    errorCode = CODE_4XX[status] as string;
    latencyUs = Math.round(latencyUs / 4);
  } else if (rng.chance(0.001)) {
    latencyUs *= 20; // the long tail: GC pauses, cold caches, lock waits
  }
  if (latencyUs < 50) latencyUs = 50;
  const signedIn = p.caller === null && rng.chance(0.85);
  const internal = p.caller !== null;
  const value: AccessLog = {
    id: `req-${(seq++).toString(36)}`,
    ts,
    app: "live",
    system: p.system,
    service: p.service,
    endpoint: p.endpoint,
    method: p.method,
    status,
    latencyUs,
    bytesIn: p.method === "GET" ? 0 : 64 + rng.int(512),
    bytesOut: status >= 400 ? 48 + rng.int(64) : Math.round(p.bytesOut * (0.5 + rng.next())),
    errorCode,
    traceId: rng.hex(32),
    caller: p.caller,
    uid: signedIn ? 100_000_000 + rng.int(5_000_000) : null,
    deviceId: internal ? null : `d-${rng.hex(6)}`,
    clientIp: internal
      ? `10.4.${rng.int(16)}.${1 + rng.int(250)}`
      : `${36 + rng.int(180)}.${rng.int(256)}.${rng.int(256)}.${1 + rng.int(254)}`,
    roomId: p.system === "room" || p.system === "gifting" ? 700_000 + rng.int(20_000) : null,
    userAgent: internal ? null : rng.pick(AGENTS),
    urlQuery: null,
    referrer: null,
    host: rng.pick(hostNames[k] as string[]),
    source: null,
  };
  return { k, key: keyBuffers[k] as Buffer, value: codec.encode(value) };
}

// ---- Kafka ----

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const kafka = new Kafka({ clientId: "weir-bench-load-access", brokers: BROKERS, logLevel: logLevel.ERROR });
const admin = kafka.admin();

async function recreateTopic(): Promise<void> {
  const deadline = Date.now() + 120_000;
  const exists = (await admin.listTopics()).includes(TOPIC as string);
  if (exists && KEEP_TOPIC) {
    PARTITIONS = (await admin.fetchTopicOffsets(TOPIC as string)).length;
    return;
  }
  if (exists) {
    await admin.deleteTopics({ topics: [TOPIC as string], timeout: 60_000 });
    while ((await admin.listTopics()).includes(TOPIC as string)) {
      if (Date.now() > deadline) throw new Error(`topic ${TOPIC} still exists after deleting it`);
      await sleep(200);
    }
  }
  for (;;) {
    try {
      // false: the topic (still) exists, e.g. while the broker finishes deleting it.
      const created = await admin.createTopics({
        waitForLeaders: true,
        timeout: 60_000,
        // Fixed 2026-11 event times are the records' timestamps: kept until the topic is deleted, or the
        // broker's retention check empties the topic while a run reads it.
        topics: [
          {
            topic: TOPIC as string,
            numPartitions: PARTITIONS,
            replicationFactor: 1,
            configEntries: [{ name: "retention.ms", value: "-1" }],
          },
        ],
      });
      if (created) break;
      if (Date.now() > deadline) throw new Error(`could not create topic ${TOPIC}: it exists`);
    } catch (e) {
      // Right after a delete the broker may still report the topic as marked for deletion.
      if (Date.now() > deadline) throw e;
    }
    await sleep(500);
  }
  // Serving: every partition answers ListOffsets.
  for (;;) {
    try {
      const offsets = await admin.fetchTopicOffsets(TOPIC as string);
      if (offsets.length === PARTITIONS) break;
    } catch (e) {
      if (!(e as { retriable?: boolean }).retriable || Date.now() > deadline) throw e;
    }
    await sleep(100);
  }
}

/** Largest record batch in one request: the broker's default message.max.bytes is 1 MiB. */
const MAX_REQUEST_BYTES = 900_000;
/** Bytes a record adds to a batch besides its key and value (varints, attributes, deltas). */
const RECORD_OVERHEAD = 24;

/**
 * One partition's messages, sent in order: each request holds this partition's messages only, and
 * the next is sent only once the previous one is acknowledged. kafkajs encodes a request
 * asynchronously before queueing it on the connection, so two requests in flight for the same
 * partition can reach the broker in either order (and a retried one after a later one); the
 * partitions' requests still overlap each other.
 */
class PartitionLane {
  private pending: { key: Buffer; value: Buffer; partition: number; timestamp: string }[] = [];
  private pendingBytes = 0;
  private inFlight: Promise<void> | null = null;
  failure: Error | undefined;

  constructor(
    private readonly producer: kafkajs.Producer,
    private readonly topic: string,
    readonly partition: number,
    private readonly compression: kafkajs.CompressionTypes,
  ) {}

  get size(): number {
    return this.pending.length;
  }

  /** False when the message would overfill the next request: send() first. */
  fits(bytes: number): boolean {
    return this.pending.length < BATCH && this.pendingBytes + bytes + RECORD_OVERHEAD <= MAX_REQUEST_BYTES;
  }

  add(key: Buffer, value: Buffer, timestamp: number): void {
    this.pendingBytes += key.length + value.length + RECORD_OVERHEAD;
    this.pending.push({ key, value, partition: this.partition, timestamp: String(timestamp) });
  }

  /** Waits for this partition's request in flight, then sends what is pending (without waiting for it). */
  async send(): Promise<void> {
    await this.idle();
    if (this.pending.length === 0) return;
    const messages = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.inFlight = this.producer.send({ topic: this.topic, acks: -1, compression: this.compression, messages }).then(
      () => {
        this.inFlight = null;
      },
      (e: Error) => {
        this.inFlight = null;
        this.failure ??= e;
      },
    );
  }

  /** Waits until this partition has no request in flight; rethrows its failure. */
  async idle(): Promise<void> {
    if (this.inFlight) await this.inFlight;
    if (this.failure) throw this.failure;
  }

  get busy(): boolean {
    return this.inFlight !== null;
  }
}

async function main(): Promise<void> {
  await admin.connect();
  await recreateTopic();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const compression = COMPRESSION === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None;

  // Each key's partition, as Kafka's Java default partitioner (murmur2) would choose it.
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: PARTITIONS }, (_, i) => ({
    partitionErrorCode: 0,
    partitionId: i,
    leader: 1,
    replicas: [1],
    isr: [1],
  }));
  const partitionOf = keyBuffers.map((key) =>
    partitioner({ topic: TOPIC as string, partitionMetadata, message: { key, value: null } }),
  );
  const lanes = Array.from(
    { length: PARTITIONS },
    (_, i) => new PartitionLane(producer, TOPIC as string, i, compression),
  );

  let bytes = 0;
  let firstTs = Number.NaN;
  let lastTs = Number.NaN;
  const queue = (lane: PartitionLane, m: ReturnType<typeof makeRecord>, ts: number) => {
    lane.add(m.key, m.value, ts);
    bytes += m.value.length;
    if (Number.isNaN(firstTs)) firstTs = ts;
    lastTs = ts;
  };
  /**
   * Makes one record and queues it. When the record would not fit, sends its partition's request
   * first and returns a promise to await (no await per record otherwise: that costs time).
   */
  const produce = (ts: number): Promise<void> | undefined => {
    const m = makeRecord(ts);
    const lane = lanes[partitionOf[m.k] as number] as PartitionLane;
    if (lane.fits(m.key.length + m.value.length)) {
      queue(lane, m, ts);
      return undefined;
    }
    return lane.send().then(() => queue(lane, m, ts));
  };

  const started = Date.now();
  let sent = 0;
  if (RATE === 0) {
    for (; sent < RECORDS; sent++) {
      const wait = produce(EPOCH + Math.floor((sent * 1000) / EVENTS_PER_SECOND));
      if (wait) await wait;
    }
  } else {
    // Live: every tick, make what is due by now (ts = now) and send each partition's share unless
    // that partition's previous request is still in flight (then it goes with the next tick).
    const TICK_MS = 5;
    while (sent < RECORDS) {
      const due = Math.min(RECORDS, Math.floor(((Date.now() - started) * RATE) / 1000) + 1);
      for (; sent < due; sent++) {
        const wait = produce(Date.now());
        if (wait) await wait;
      }
      for (const lane of lanes) {
        if (lane.failure) throw lane.failure;
        if (lane.size > 0 && !lane.busy) await lane.send();
      }
      if (sent < RECORDS) await sleep(TICK_MS);
    }
  }
  for (const lane of lanes) await lane.send();
  for (const lane of lanes) await lane.idle();
  const elapsedMs = Date.now() - started;
  await producer.disconnect();
  await admin.disconnect();
  console.log(
    JSON.stringify({
      topic: TOPIC,
      records: sent,
      partitions: PARTITIONS,
      keys: profiles.length,
      key: KEY,
      firstTs,
      lastTs,
      elapsedMs,
      mode: RATE > 0 ? `live ${RATE}/s` : "backlog",
      recordsPerSec: Math.round(sent / (elapsedMs / 1000)),
      valueBytes: bytes,
      compression: COMPRESSION,
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
