// ShipAgent: one `weir ship` process. It wires each source (file tail or stdin) through its
// multiline merger and line decoder into the disk channel, and the channel into the Kafka sink:
//
//   FileSource --RawLine[]--> MultilineMerger --> LineDecoder --ShipEntry--> DiskChannel.put
//   DiskChannel.take --> KafkaSink --acks=all--> CheckpointStore.advance, DiskChannel.commit
//
// Where a file resumes after a restart: its checkpoint says what Kafka has; the channel may hold
// later lines that Kafka does not have yet, and those are sent from the channel. So a file resumes
// after the later of the two: a line is neither read twice into the channel nor skipped. Lines a
// source had read but that had not reached the channel (a half-merged stack trace) are read again.
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import type { Server } from "node:http";
import { join, resolve } from "node:path";
import type { Logger } from "pino";
import type { KafkaSecurity } from "../kafka/security.ts";
import type { TopicCatalog } from "../schemas/catalog.ts";
import { codecFor } from "../schemas/codec.ts";
import { serveMetrics } from "../telemetry/metrics-server.ts";
import { DiskChannel } from "./channel/disk-channel.ts";
import { decodeShipEntry, encodeShipEntry } from "./channel/entry.ts";
import { CheckpointStore } from "./checkpoints.ts";
import { type ShipConfig, type ShipSourceConfig, shipCatalog } from "./config.ts";
import { createLineDecoder, DLQ_RAW_LIMIT, type LineDecoder, MultilineMerger } from "./formats/index.ts";
import { ShipMetrics, type ShipView } from "./metrics.ts";
import { RecordSources } from "./record-source.ts";
import { clearIntent, committedInKafka, intentOf, readIntent, writeIntent } from "./sinks/in-doubt.ts";
import { KafkaSink } from "./sinks/kafka-sink.ts";
import { FileSourceConfigSchema } from "./sources/file/config.ts";
import { FileSource } from "./sources/file/file-source.ts";
import { StdinSource, StdinSourceConfigSchema } from "./sources/stdin/stdin-source.ts";
import type { FileState, LinePosition, RawLine, ResumePoint, ShipEntry } from "./types.ts";

export interface ShipAgentOptions {
  brokers: string[];
  /** TLS and SASL for Kafka (kafka/security.ts); none: plaintext. */
  security?: KafkaSecurity | undefined;
  logger: Logger;
  /** For stdin sources: the stream to read (process.stdin by default). */
  stdin?: NodeJS.ReadableStream;
}

/** One source and what its lines go through, with the order of its puts kept by one promise chain. */
class SourceRunner {
  readonly decoder: LineDecoder;
  readonly merger: MultilineMerger | null;
  source: FileSource | StdinSource | null = null;
  private chain: Promise<void> = Promise.resolve();
  private readonly lines: RawLine[] = [];
  private readonly entries: ShipEntry[] = [];
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly config: ShipSourceConfig,
    catalog: TopicCatalog,
    private readonly agent: ShipAgent,
  ) {
    this.decoder = createLineDecoder(config, { catalog, host: agent.config.host, dlqTopic: agent.config.dlq.topic });
    this.merger = config.multiline ? new MultilineMerger(config.multiline) : null;
  }

  /** The source's sink: resolves once the lines' events are in the channel (the source reads on then). */
  push = (lines: RawLine[]): Promise<void> => this.serial(() => this.putLines(lines, Date.now()));

  /** Starts reading, each of its files from its resume point (points of other sources are not its business). */
  start(allPoints: ResumePoint[]): void {
    const resume = allPoints.filter((p) => p.source === this.config.name);
    const log = this.agent.log.child({ source: this.config.name });
    const onError = (err: Error) => this.agent.fail(err, `source ${this.config.name}`);
    if (this.config.type === "stdin") {
      const src = new StdinSource(pick(this.config, StdinSourceConfigSchema.shape), {
        sink: this.push,
        logger: log,
        ...(this.agent.stdin ? { input: this.agent.stdin as never } : {}),
      });
      this.source = src;
      src.start();
      src.done.then(
        () => this.agent.sourceEnded(this),
        (e: Error) => onError(e),
      );
    } else {
      const src = new FileSource(pick(this.config, FileSourceConfigSchema.shape), {
        sink: this.push,
        resume,
        logger: log,
        onError,
      });
      this.source = src;
      src.start().catch(onError);
    }
    if (this.merger) {
      const every = Math.max(50, Math.floor((this.config.multiline?.flushMs ?? 1000) / 2));
      this.flushTimer = setInterval(() => {
        this.serial(() => this.flushMerged(Date.now(), false)).catch((e: Error) => onError(e));
      }, every);
      this.flushTimer.unref();
    }
  }

  /** Stops reading. Events a merger still holds are dropped: their lines are read again from the resume point. */
  async stop(): Promise<void> {
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = null;
    await this.source?.stop();
    await this.chain.catch(() => {});
  }

  /** The stream ended (stdin): whatever the merger holds is complete. */
  finish(): Promise<void> {
    return this.serial(() => this.flushMerged(Number.POSITIVE_INFINITY, true));
  }

  stats(): { lines: number; bytes: number; states: FileState[] } {
    const src = this.source;
    if (!src) return { lines: 0, bytes: 0, states: [] };
    const s = src.stats();
    return { lines: s.linesRead, bytes: s.bytesRead, states: src instanceof FileSource ? src.states() : [] };
  }

  private serial(work: () => Promise<void>): Promise<void> {
    const next = this.chain.then(work);
    this.chain = next.catch(() => {});
    return next;
  }

  private async putLines(lines: RawLine[], now: number): Promise<void> {
    let events = lines;
    if (this.merger) {
      this.lines.length = 0;
      for (const l of lines) this.merger.push(l, this.lines, now);
      events = this.lines;
    }
    await this.put(events);
  }

  private async flushMerged(now: number, all: boolean): Promise<void> {
    if (!this.merger || this.merger.pendingEvents() === 0) return;
    this.lines.length = 0;
    if (all) {
      this.merger.flush(now, this.lines);
    } else {
      // Only files read to their end are quiet: one whose next line waits behind backpressure is not,
      // and flushing it would split an event whose rest is already on disk.
      const src = this.source;
      const quiet = new Set<string>();
      if (src instanceof FileSource) for (const f of src.states()) if (f.offset >= f.size) quiet.add(f.fileId);
      this.merger.flush(now, this.lines, (fileId) => quiet.has(fileId));
    }
    await this.put(this.lines);
  }

  private async put(events: RawLine[]): Promise<void> {
    if (events.length === 0) return;
    const entries = this.entries;
    entries.length = 0;
    for (const line of events) this.decoder.decode(line, entries);
    const payloads = new Array<Buffer>(entries.length);
    for (let i = 0; i < entries.length; i++) payloads[i] = encodeShipEntry(entries[i] as ShipEntry);
    await this.agent.channel.put(payloads);
    for (const e of entries) this.agent.queued(e.position);
  }
}

export class ShipAgent {
  readonly log: Logger;
  readonly stdin: NodeJS.ReadableStream | undefined;
  channel!: DiskChannel;
  private checkpoints!: CheckpointStore;
  private sink!: KafkaSink;
  private catalog!: TopicCatalog;
  private runners: SourceRunner[] = [];
  /** The furthest position per file already in the channel: where a restarted source resumes. */
  private readonly inChannel = new Map<string, ResumePoint>();
  private readonly deadLetters = new Map<string, number>();
  private metrics: ShipMetrics | null = null;
  private server: Server | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private fatal: Error | null = null;
  /** Stdin sources whose stream has ended. */
  private readonly ended = new Set<SourceRunner>();
  /** Resolves when the agent has stopped: after stop(), after every stdin source ended and drained, or on a fatal error (rejects). */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (e: Error) => void;
  metricsPort = 0;

  constructor(
    public config: ShipConfig,
    private readonly options: ShipAgentOptions,
  ) {
    this.log = options.logger;
    this.stdin = options.stdin;
    this.done = new Promise((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    this.done.catch(() => {});
  }

  /**
   * Opens what the shipper needs and starts shipping. /metrics and /health are bound first: a taken
   * port stops the start before the channel is locked. A start that fails half-way closes what it
   * opened (the channel's lock included) before it rejects.
   */
  async start(): Promise<void> {
    const dataDir = resolve(this.config.dataDir);
    mkdirSync(dataDir, { recursive: true });
    this.catalog = shipCatalog(this.config);
    // Decoders are built first: a config problem they find (a topic the catalog lacks) stops the
    // start before anything is opened.
    const runners = this.config.sources.map((s) => new SourceRunner(s, this.catalog, this));
    this.metrics = new ShipMetrics(this.view());
    const served = await serveMetrics(
      this.metrics.registry,
      () => this.health(),
      this.config.metrics.port,
      this.config.metrics.host,
      "metrics.port in the config or --metrics-port",
    );
    this.server = served.server;
    this.metricsPort = served.port;
    try {
      await this.open(dataDir, runners);
    } catch (e) {
      await this.sink?.stop().catch(() => {});
      await this.channel?.close().catch(() => {});
      await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
      throw e;
    }
    this.log.info(
      {
        metricsPort: served.port,
        sources: this.config.sources.map((s) => s.name),
        dataDir,
        resumed: this.resumed,
      },
      `weir ship: shipping; /metrics and /health on ${this.config.metrics.host}:${served.port}`,
    );
  }

  private resumed = 0;

  private async open(dataDir: string, runners: SourceRunner[]): Promise<void> {
    this.channel = await DiskChannel.open({
      dir: join(dataDir, "channel"),
      maxBytes: this.config.channel.maxBytes,
      segmentBytes: this.config.channel.segmentBytes,
      fsync: this.config.channel.fsync,
      fsyncIntervalMs: this.config.channel.fsyncIntervalMs,
      logger: this.log,
    });
    this.checkpoints = CheckpointStore.load(join(dataDir, "checkpoints.json"), (m) => this.log.error(m));
    let held = 0;
    for await (const batch of this.channel.uncommitted()) {
      for (const p of batch.payloads) this.queued(decodeShipEntry(p).position);
      held += batch.payloads.length;
    }
    if (held > 0)
      this.log.info({ records: held }, "the channel holds records Kafka has not acknowledged: sending them first");

    const intentFile = join(dataDir, "commit-intent.json");
    const sources = new RecordSources(this.config.host);
    this.sink = new KafkaSink(
      this.channel,
      {
        ...this.config.kafka,
        brokers: this.config.kafka.brokers ?? this.options.brokers,
        security: this.options.security,
        transactionalId:
          this.config.kafka.transactionalId ??
          `weir-ship-${createHash("sha256").update(`${this.config.host}\0${dataDir}`).digest("hex").slice(0, 16)}`,
      },
      {
        decode: decodeShipEntry,
        beforeCommit: (entries) => writeIntent(intentFile, intentOf(entries)),
        alreadyDelivered: (e) => this.checkpoints.ackedOffset(e.position.fileId) >= e.position.end,
        delivered: (entries) => {
          for (const e of entries) {
            this.checkpoints.advance(e.position);
            if (e.topic === this.config.dlq.topic) this.countDeadLetter(e);
          }
          // Before the channel commits: a crash now re-reads the channel, and these are skipped.
          this.saveCheckpoints(false);
        },
        refused: (entry, reason, message) => this.refusedByKafka(entry, reason, message),
        sent: (seconds) => this.metrics?.sendSeconds.observe(seconds),
        sourceOf: (e) => (e.topic === this.config.dlq.topic ? null : sources.of(e.position)),
      },
      this.log,
    );
    await this.settleInDoubt(intentFile);
    this.sink.start().catch((e: Error) => this.fail(e, "the Kafka sink"));

    const resume = this.resumePoints();
    for (const r of runners) r.start(resume);
    this.runners = runners;
    this.resumed = resume.length;
    this.timer = setInterval(() => this.saveCheckpoints(true), this.config.checkpoints.intervalMs);
    this.timer.unref();
  }

  /** Events Kafka has acknowledged, by topic (dead letters included). */
  delivered(): Map<string, number> {
    return this.sink.stats.sent;
  }

  /**
   * SIGHUP: applies a new config's sources without losing position. Sources whose config changed
   * (or that are gone) stop, then start again from what is already in the channel. Channel, Kafka
   * and metrics settings need a restart; they are reported and left as they were.
   */
  async reload(next: ShipConfig): Promise<void> {
    const fixed = ["dataDir", "channel", "kafka", "metrics", "dlq", "topics"] as const;
    const changed = fixed.filter((k) => JSON.stringify(next[k]) !== JSON.stringify(this.config[k]));
    if (changed.length > 0) {
      this.log.warn({ settings: changed }, "reload: these settings apply only after a restart; they are unchanged");
    }
    const catalog = this.catalog;
    const keep: SourceRunner[] = [];
    const restart: SourceRunner[] = [];
    for (const r of this.runners) {
      const same = next.sources.find((s) => s.name === r.config.name);
      if (same && JSON.stringify(same) === JSON.stringify(r.config)) keep.push(r);
      else restart.push(r);
    }
    // Build the new decoders before stopping anything: a bad source config leaves the old ones running.
    const fresh = next.sources
      .filter((s) => !keep.some((k) => k.config.name === s.name))
      .map((s) => new SourceRunner(s, catalog, this));
    await Promise.all(restart.map((r) => r.stop()));
    const resume = this.resumePoints();
    for (const r of fresh) r.start(resume);
    this.runners = [...keep, ...fresh];
    this.config = {
      ...this.config,
      sources: next.sources,
      host: next.host,
      checkpoints: next.checkpoints,
      shutdown: next.shutdown,
    };
    this.log.info(
      {
        kept: keep.map((r) => r.config.name),
        restarted: fresh.map((r) => r.config.name),
        stopped: restart.filter((r) => !next.sources.some((s) => s.name === r.config.name)).map((r) => r.config.name),
      },
      "reload: sources applied",
    );
  }

  /**
   * Graceful stop: sources stop reading, Kafka gets up to drainTimeoutMs to take what is in the
   * channel, checkpoints are written. What Kafka did not take stays in the channel for the next start.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    try {
      await Promise.all(this.runners.map((r) => r.stop()));
      const deadline = Date.now() + this.config.shutdown.drainTimeoutMs;
      while (this.channel.stats().records > 0 && Date.now() < deadline && !this.fatal) await sleep(50);
      const left = this.channel.stats().records;
      await this.sink.stop();
      if (left > 0)
        this.log.warn(
          { records: left },
          "stopping with records Kafka has not taken: they stay in the channel for the next start",
        );
      this.saveCheckpoints(true);
      if (this.timer) clearInterval(this.timer);
      await this.channel.close();
      await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
      this.resolveDone();
    } catch (e) {
      this.rejectDone(e as Error);
      throw e;
    }
  }

  /** A part failed in a way that cannot be retried: stop, keeping what is in the channel. */
  fail(err: Error, where: string): void {
    if (this.fatal) return;
    this.fatal = err;
    this.log.error({ err }, `${where} failed; stopping`);
    this.stop().then(
      () => this.rejectDone(err),
      () => this.rejectDone(err),
    );
  }

  /** A stdin source reached the end of its stream; once all have, the agent drains and stops. */
  async sourceEnded(runner: SourceRunner): Promise<void> {
    await runner.finish();
    const stdin = this.runners.filter((r) => r.config.type === "stdin");
    const files = this.runners.filter((r) => r.config.type === "file");
    if (files.length > 0 || stdin.some((r) => r !== runner && !this.ended.has(r))) {
      this.ended.add(runner);
      return;
    }
    this.ended.add(runner);
    // Everything read: wait for Kafka to take all of it, however long, then stop.
    while (this.channel.stats().records > 0 && !this.fatal) await sleep(50);
    await this.stop();
  }

  /**
   * The batch whose commit was in flight when the last run died: if Kafka has it, its checkpoints
   * move, and the channel's copy is skipped instead of sent twice (sinks/in-doubt.ts).
   */
  private async settleInDoubt(intentFile: string): Promise<void> {
    const intent = readIntent(intentFile);
    if (!intent) return;
    const open = intent.positions.filter((p) => this.checkpoints.ackedOffset(p.fileId) < p.end);
    if (open.length > 0) {
      const committed = await committedInKafka(this.sink.client.native, intent, this.catalog, this.log);
      this.log.info(
        { committed, probe: intent.probe },
        committed
          ? "the batch in flight when the shipper stopped had committed: not sending it again"
          : "the batch in flight when the shipper stopped had not committed: sending it again",
      );
      if (committed) {
        for (const p of open) this.checkpoints.advance(p);
        this.checkpoints.save(true);
      }
    }
    clearIntent(intentFile);
  }

  /** An entry is in the channel: its file resumes after it on a reload or restart. */
  queued(p: LinePosition): void {
    const cur = this.inChannel.get(p.fileId);
    if (cur && cur.offset >= p.end) return;
    this.inChannel.set(p.fileId, { source: p.source, fileId: p.fileId, offset: p.end, seq: p.seq + 1, path: p.file });
  }

  private resumePoints(): ResumePoint[] {
    const points = new Map<string, ResumePoint>();
    for (const r of this.checkpoints.resumePoints()) points.set(r.fileId, r);
    for (const [id, r] of this.inChannel) {
      const cur = points.get(id);
      if (!cur || cur.offset < r.offset) points.set(id, r);
    }
    return [...points.values()];
  }

  private saveCheckpoints(sync: boolean): void {
    try {
      if (this.checkpoints.save(sync) && sync) {
        const open = new Set<string>();
        for (const r of this.runners) for (const f of r.stats().states) open.add(f.fileId);
        this.checkpoints.prune(this.config.checkpoints.forgetAfterMs, open);
      }
    } catch (e) {
      // The next save tries again; until then a restart re-sends a little more.
      this.log.error({ err: e }, "could not write the checkpoints");
    }
  }

  private countDeadLetter(e: ShipEntry): void {
    const reason = DEAD_LETTER.decode(e.value).reason;
    this.deadLetters.set(reason, (this.deadLetters.get(reason) ?? 0) + 1);
  }

  /** A record Kafka will never take (too large for the topic): its dead letter goes in its place. */
  private refusedByKafka(entry: ShipEntry, reason: string, message: string): ShipEntry | null {
    if (entry.topic === this.config.dlq.topic) return null; // a dead letter refused too: counted, logged
    const now = Date.now();
    const p = entry.position;
    const raw = entry.value.length > DLQ_RAW_LIMIT ? entry.value.subarray(0, DLQ_RAW_LIMIT) : entry.value;
    const id = `${p.fileId}:${p.offset}:${reason}`;
    return {
      topic: this.config.dlq.topic,
      key: Buffer.from(id),
      ts: now,
      position: p,
      value: DEAD_LETTER.encode({
        id,
        ts: now,
        component: "ship",
        reason,
        message: `Kafka refused the ${entry.topic} record: ${message}`.slice(0, 4096),
        origin: {
          topic: entry.topic,
          partition: null,
          offset: null,
          file: p.file,
          fileId: p.fileId,
          fileOffset: p.offset,
          host: this.config.host,
        },
        schema: this.catalog.topic(entry.topic).schema,
        raw,
        rawSize: entry.value.length,
        truncated: raw.length < entry.value.length,
        headers: {},
      }),
    };
  }

  private health(): { ok: boolean; detail: Record<string, unknown> } {
    const kafka = this.sink?.health();
    const c = this.channel?.stats();
    const kafkaOk = !kafka || kafka.ok;
    // A channel whose disk stays full takes no new lines: an outage, like Kafka's.
    const diskFullS = c ? Math.floor(c.diskFullMs / 1000) : 0;
    return {
      ok: kafkaOk && !this.fatal && diskFullS < CHANNEL_DISK_FULL_UNHEALTHY_S,
      detail: {
        kafka: kafka?.detail ?? "ok",
        channelFill: c ? Number(c.fill.toFixed(3)) : null,
        ...(diskFullS > 0 ? { channelDiskFullSeconds: diskFullS } : {}),
        sources: this.runners.map((r) => r.config.name),
      },
    };
  }

  /** What the metrics read; answers zeros for what the start has not opened yet (metrics are served first). */
  private view(): ShipView {
    return {
      sources: () => this.runners.map((r) => ({ name: r.config.name, ...r.stats() })),
      ackedOffset: (fileId) => this.checkpoints?.get(fileId)?.offset ?? 0,
      sent: () => this.sink?.stats.sent ?? new Map(),
      deadLetters: () => this.deadLetters,
      channel: () => {
        const c = this.channel?.stats();
        return {
          bytes: c?.bytes ?? 0,
          records: c?.records ?? 0,
          fill: c?.fill ?? 0,
          diskFullTimes: c?.diskFullTimes ?? 0,
          diskFullMs: c?.diskFullMs ?? 0,
        };
      },
      sink: () =>
        this.sink
          ? { ...this.sink.stats, ...this.sink.health() }
          : { retries: 0, refused: 0, failing: 0, waitingMs: 0 },
    };
  }
}

const DEAD_LETTER = codecFor("DeadLetter");
/** /health turns not ok once the channel's writes have waited this long for disk space. */
const CHANNEL_DISK_FULL_UNHEALTHY_S = 30;

/** The keys of a source's config that belong to its reader (the rest are the decoder's). */
function pick<T extends object>(config: object, shape: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(shape)) if (k in config) out[k] = (config as Record<string, unknown>)[k];
  return out as T;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
