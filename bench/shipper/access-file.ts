// The shipper benchmark's input: one file of access-log JSON lines (~370 bytes each) as the
// simulated platform's services write them. The traffic generator runs with a sink that keeps the
// access logs of every service, in time order, written with the simulator's own line writer; the
// other streams (app logs, business events) are dropped. Real ids, trace ids, IPs and user agents
// keep the lines as compressible as real ones, no more.
import { closeSync, openSync, writeSync } from "node:fs";
import type { EventWriter, SimStream, StreamSummary } from "../../infra/simulator/event-writer.ts";
import { accessLine } from "../../infra/simulator/formats.ts";
import { TrafficGenerator } from "../../infra/simulator/generator.ts";
import { GroundTruth } from "../../infra/simulator/ground-truth.ts";
import { loadScenario } from "../../infra/simulator/scenario.ts";
import { DEFAULT_START, SIMULATE_DEFAULTS } from "../../infra/simulator/simulate.ts";
import type { AccessLog } from "../../schemas/types.generated.ts";
import { Digest, fieldsKey } from "./digest.ts";

export interface AccessFile {
  lines: number;
  bytes: number;
  /** Of every line's bytes without its newline: what a peer that ships raw lines must deliver. */
  lineDigest: Digest;
  /** Of every line's fields (fieldsKey): what a shipper that re-encodes the lines must deliver. */
  fieldsDigest: Digest;
}

/** Buffers lines and writes them in ~1 MiB chunks; takes no more lines after `limit`. */
class AccessLineWriter implements EventWriter {
  written = 0;
  bytes = 0;
  readonly lineDigest = new Digest();
  readonly fieldsDigest = new Digest();
  private chunk: string[] = [];
  private chunkBytes = 0;
  private readonly access: SimStream<AccessLog> = {
    write: (e) => {
      if (this.written >= this.limit) return;
      const line = accessLine(e);
      this.chunk.push(line);
      this.chunkBytes += line.length;
      this.lineDigest.add(line.slice(0, -1));
      this.fieldsDigest.add(fieldsKey(e));
      this.written++;
      if (this.chunkBytes >= 1 << 20) this.writeChunk();
    },
  };
  private readonly dropped: SimStream<unknown> = { write: () => {} };

  constructor(
    private readonly fd: number,
    private readonly limit: number,
  ) {}

  stream(_service: string, kind: string): SimStream<never> {
    return (kind === "access" ? this.access : this.dropped) as SimStream<never>;
  }

  writeChunk(): void {
    if (this.chunk.length === 0) return;
    const buf = Buffer.from(this.chunk.join(""), "utf8");
    writeSync(this.fd, buf);
    this.bytes += buf.length;
    this.chunk = [];
    this.chunkBytes = 0;
  }

  async flush(): Promise<void> {
    this.writeChunk();
  }

  async close(): Promise<StreamSummary[]> {
    this.writeChunk();
    return [];
  }
}

/**
 * Writes exactly `lines` access-log lines to `path` (truncating it), deterministic for a `seed`.
 * The simulated clock starts at the simulator's default start (the evening peak), without the
 * diurnal curve.
 */
export function writeAccessFile(path: string, lines: number, seed = 1): AccessFile {
  const fd = openSync(path, "w");
  try {
    const writer = new AccessLineWriter(fd, lines);
    const rate = 100_000;
    const gen = new TrafficGenerator(
      {
        seed,
        start: DEFAULT_START,
        // Access logs are ~40% of the generator's lines: plan a run long enough for `lines` of them.
        runMs: Math.ceil((lines / rate) * 1000 * 4) + 60_000,
        rate,
        diurnal: false,
        users: SIMULATE_DEFAULTS.users,
        streamers: SIMULATE_DEFAULTS.streamers,
        scenario: loadScenario(SIMULATE_DEFAULTS.scenario),
        scenarioName: SIMULATE_DEFAULTS.scenario,
        fraud: SIMULATE_DEFAULTS.fraud,
      },
      writer,
      new GroundTruth(undefined),
    );
    while (gen.runUntil(gen.now + 2_000, lines)) {
      // runUntil writes through the writer; nothing to do between chunks of simulated time
    }
    gen.finish();
    writer.writeChunk();
    if (writer.written < lines) {
      throw new Error(`the traffic generator stopped after ${writer.written} access lines, not ${lines}`);
    }
    return {
      lines: writer.written,
      bytes: writer.bytes,
      lineDigest: writer.lineDigest,
      fieldsDigest: writer.fieldsDigest,
    };
  } finally {
    closeSync(fd);
  }
}
