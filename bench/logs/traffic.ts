// The simulator's app and access logs as the logs pipeline reads them, for its end-to-end test and its
// benchmark: TrafficGenerator's records (infra/simulator) caught in memory, given the identities the
// shipper would give them, and with PII written into a share of them, so that masking has work to do.
//
// - Identity: the lines of some services are "shipped" (source set, id `<fileId>:<offset>` as
//   weir ship makes it), the others are produced straight to Kafka (source null; an app line's id
//   `<run>:<service>:<n>`, an access line keeps its request id). Both kinds of _id are exercised.
// - PII: every 10th app line gets a phone number or a resident ID number in its message, an
//   attribute or its error; every 25th access line a phone number in its user agent. The values
//   come in the shapes people type them (+86, spaces, dashes; ID numbers with a real check character).

import type { EventWriter, RecordTypes, SimStream, StreamSummary } from "../../infra/simulator/event-writer.ts";
import { TrafficGenerator } from "../../infra/simulator/generator.ts";
import { GroundTruth } from "../../infra/simulator/ground-truth.ts";
import { legitPhone } from "../../infra/simulator/population.ts";
import { Rng } from "../../infra/simulator/random.ts";
import { loadScenario } from "../../infra/simulator/scenario.ts";
import { idCheckChar } from "../../pipelines/logs/pii/validators.ts";
import type { AccessLog, AppLog } from "../../schemas/types.generated.ts";

/** Services whose lines come through the shipper (the others are produced directly). */
const SHIPPED = new Set(["user-svc", "room-svc", "gift-svc", "device-svc"]);

export interface LogTrafficOptions {
  /** Names the run: file ids and direct ids carry it, so two runs never share an id. */
  runId: string;
  seed?: number;
  /** Simulated start, ms since the epoch. */
  start: number;
  /** Simulated length. */
  seconds: number;
  /** Records per second (all kinds) at the simulator's evening peak. */
  rate?: number;
  /** Write PII into a share of the lines (default true). */
  pii?: boolean;
}

export interface LogBatch {
  app: AppLog[];
  access: AccessLog[];
}

/** Counts of the PII written into the lines, by where it went. */
export interface PiiWritten {
  phones: number;
  idCards: number;
}

class Capture implements EventWriter {
  written = 0;
  app: AppLog[] = [];
  access: AccessLog[] = [];
  stream<K extends keyof RecordTypes>(_service: string, kind: K): SimStream<RecordTypes[K]> {
    return {
      write: (record: RecordTypes[K]) => {
        this.written++;
        if (kind === "app") this.app.push(record as AppLog);
        else if (kind === "access") this.access.push(record as AccessLog);
      },
    };
  }
  async flush(): Promise<void> {}
  async close(): Promise<StreamSummary[]> {
    return [];
  }
}

/** Simulated logs, generated in slices of simulated time (a benchmark paces them to the wall clock). */
export class LogTraffic {
  readonly written: PiiWritten = { phones: 0, idCards: 0 };
  private readonly sink = new Capture();
  private readonly gen: TrafficGenerator;
  private readonly rng: Rng;
  private readonly files = new Map<string, { fileId: string; offset: number; seq: number }>();
  private direct = 0;
  private appCount = 0;
  private accessCount = 0;
  private finished = false;

  constructor(private readonly o: LogTrafficOptions) {
    this.rng = new Rng((o.seed ?? 1) ^ 0x10c5);
    this.gen = new TrafficGenerator(
      {
        seed: o.seed ?? 1,
        start: o.start,
        runMs: o.seconds * 1000,
        rate: o.rate ?? 300,
        diurnal: false,
        users: 20_000,
        streamers: 300,
        scenario: loadScenario("calm"),
        scenarioName: "calm",
        fraud: 0,
      },
      this.sink,
      new GroundTruth(undefined),
    );
  }

  get end(): number {
    return this.o.start + this.o.seconds * 1000;
  }

  /** The lines written by simulated time `t` (all of them once t is past the end). */
  until(t: number): LogBatch {
    if (!this.finished) {
      const more = this.gen.runUntil(t, Number.POSITIVE_INFINITY);
      if (!more || t >= this.end) {
        this.gen.finish();
        this.finished = true;
      }
    }
    const batch = { app: this.sink.app, access: this.sink.access };
    this.sink.app = [];
    this.sink.access = [];
    for (const l of batch.app) this.identify(l, "app");
    for (const l of batch.access) this.identify(l, "access");
    if (this.o.pii !== false) {
      for (const l of batch.app) if (this.appCount++ % 10 === 0) this.appPii(l);
      for (const l of batch.access) if (this.accessCount++ % 25 === 0) this.accessPii(l);
    }
    return batch;
  }

  /** Every line of the run. */
  all(): LogBatch {
    return this.until(this.end);
  }

  private identify(l: AppLog | AccessLog, kind: "app" | "access"): void {
    if (!SHIPPED.has(l.service)) {
      if (kind === "app") l.id = `${this.o.runId}:${l.service}:${this.direct++}`;
      return;
    }
    const name = `${l.service}/${kind}`;
    let f = this.files.get(name);
    if (!f) {
      f = { fileId: `${this.o.runId}-${l.service}-${kind}`, offset: 0, seq: 0 };
      this.files.set(name, f);
    }
    l.source = { file: `/var/log/${name}.log`, fileId: f.fileId, offset: f.offset, seq: f.seq++ };
    if (kind === "app") l.id = `${f.fileId}:${f.offset}`;
    // About a line's length: the next line starts further on.
    f.offset += 120 + (("message" in l ? l.message.length : 0) | 0);
  }

  private appPii(l: AppLog): void {
    const n = this.appCount;
    switch (n % 4) {
      case 0:
        l.message = `${l.message} contact=${this.phone()}`;
        break;
      case 1:
        l.attributes = { ...l.attributes, phone: this.phone() };
        break;
      case 2:
        l.message = `kyc check for idCard=${this.idCard()}`;
        break;
      default:
        if (l.error !== null) l.error = { ...l.error, message: `${l.error.message} (user ${this.phone()})` };
        else l.attributes = { ...l.attributes, note: `callback ${this.phone()} then ${this.idCard()}` };
    }
  }

  private accessPii(l: AccessLog): void {
    // accessCount was raised past this line: (n - 1) / 25 numbers the lines given PII.
    switch (((this.accessCount - 1) / 25) % 3) {
      case 0:
        l.userAgent = `${l.userAgent ?? "live-h5"} (tel ${this.phone()})`;
        break;
      case 1:
        // As a browser sends it: percent-encoded, found only once the parameter is decoded.
        l.urlQuery = `${l.urlQuery ?? "v=8.4.1"}&phone=${encodeURIComponent(`+86 ${this.phone()}`)}`;
        break;
      default:
        l.referrer = `https://live.example.com/invite?by=${this.phone()}&from=share`;
    }
  }

  private phone(): string {
    this.written.phones++;
    return legitPhone(this.rng);
  }

  /** A resident ID number that passes every check the detector makes: province, birth date, check character. */
  private idCard(): string {
    this.written.idCards++;
    const region = ["110105", "310104", "440305", "510107"][this.rng.int(4)] as string;
    const birth = new Date(Date.UTC(1960, 0, 1) + this.rng.int(40 * 365) * 86_400_000);
    const date = birth.toISOString().slice(0, 10).replaceAll("-", "");
    const body = `${region}${date}${String(this.rng.int(1000)).padStart(3, "0")}`;
    return body + idCheckChar(body, 0);
  }
}
