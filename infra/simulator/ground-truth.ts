// The ground truth of a simulated run (ground-truth.jsonl): every injected incident, hot event,
// fraud campaign with its entities, and dirty line, so tests and benchmarks can score what the
// pipelines find. One JSON object per line, with a `kind`.
import { closeSync, openSync, writeSync } from "node:fs";

export type TruthRecord =
  | {
      kind: "run";
      seed: number;
      start: number;
      scenario: string;
      rate: number;
      users: number;
      dirtyRate: number;
      fraudIntensity: number;
    }
  | {
      kind: "incident";
      id: string;
      type: "latency_spike" | "error_burst" | "dependency_slowdown";
      service: string;
      endpoint: string | null;
      start: number;
      end: number;
      /** Endpoints whose health the incident degrades: its own, and callers waiting on it. */
      affects: { service: string; endpoint: string }[];
      params: Record<string, number>;
    }
  | {
      kind: "hot_event";
      id: string;
      roomId: number;
      streamerUid: number;
      start: number;
      fullAt: number;
      end: number;
      multiplier: number;
      normalShare: number;
    }
  | {
      kind: "fraud";
      id: string;
      campaign: string;
      start: number;
      end: number;
      /** The entities involved, by type: uid, device, phone (as typed), ip, card, streamer, room. */
      entities: Record<string, (string | number)[]>;
      params: Record<string, number | string>;
    }
  | {
      /**
       * Entities that truly belong to a fraud category, whichever campaign (or no campaign) made them:
       * every emulator and rooted or jailbroken device that reported, every campaign account registered
       * with a virtual-operator or IoT number.
       */
      kind: "positives";
      category: string;
      entity: "uid" | "device";
      ids: (string | number)[];
      why: string;
    }
  | {
      /** Genuine users and devices that look like a category's fraud (the hard negatives). */
      kind: "lookalike";
      id: string;
      look: string;
      category: string;
      start: number;
      end: number;
      entities: Record<string, (string | number)[]>;
    }
  | { kind: "dirty"; stream: string; line: number; offset: number; reason: string; bytes: number }
  | { kind: "dirty-kafka"; topic: string; index: number; reason: string; bytes: number }
  | {
      kind: "summary";
      end: number;
      events: number;
      lines: number;
      dirty: number;
      byStream: Record<string, { events: number; lines: number; dirty: number }>;
    };

export class GroundTruth {
  private fd: number | undefined;
  private buffer: string[] = [];

  /** `file` undefined: nothing is written (a Kafka run without --out). */
  constructor(file: string | undefined) {
    if (file) this.fd = openSync(file, "w");
  }

  add(record: TruthRecord): void {
    if (this.fd === undefined) return;
    this.buffer.push(`${JSON.stringify(record)}\n`);
    if (this.buffer.length >= 1024) this.flush();
  }

  flush(): void {
    if (this.fd === undefined || this.buffer.length === 0) return;
    writeSync(this.fd, this.buffer.join(""));
    this.buffer = [];
  }

  close(): void {
    this.flush();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
