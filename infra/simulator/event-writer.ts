// Where simulated events go: a writer of JSON-line files the way services write them
// (log-file-writer.ts) or of Avro straight to Kafka (kafka-event-writer.ts). The generator only sees
// streams it writes records to.
import type { AccessLog, AppLog, BehaviorEvent, CoinTxn, DeviceReport } from "../../schemas/types.generated.ts";
import type { LineFormat, StreamKind } from "./platform.ts";

export interface RecordTypes {
  access: AccessLog;
  app: AppLog;
  coin: CoinTxn;
  behavior: BehaviorEvent;
  device: DeviceReport;
}

export interface SimStream<T> {
  write(record: T): void;
}

export interface StreamSummary {
  name: string;
  service: string;
  kind: StreamKind;
  format: LineFormat;
  /** Records written (a multi-line text event counts once). */
  events: number;
  /** Physical lines, dirty ones included. */
  lines: number;
  bytes: number;
  dirty: number;
  rotations: number;
}

export interface EventWriter {
  stream<K extends StreamKind>(service: string, kind: K, format: LineFormat): SimStream<RecordTypes[K]>;
  /** Hands buffered records on (to the file system or Kafka). */
  flush(): Promise<void>;
  /** Flushes and releases everything; returns what each stream received. */
  close(): Promise<StreamSummary[]>;
  /** Records written so far, across streams. */
  readonly written: number;
}

/** Kinds of bad input mixed in with --dirty, as the ground truth and DLQ reasons name them. */
export const DIRTY_KINDS = ["malformed-json", "wrong-type", "invalid-utf8", "oversized"] as const;
export type DirtyKind = (typeof DIRTY_KINDS)[number];
/** Their shares: oversized lines are big, so they are rare. */
export const DIRTY_WEIGHTS = [0.4, 0.3, 0.25, 0.05];
