// The contracts between the shipper's parts: sources read lines and say where each one was, formats
// turn a line into an Avro event for a topic (or a dead letter), the disk channel keeps encoded
// entries until the Kafka sink has them acknowledged, and only then do checkpoints move.
//
//   source (tail | stdin) --RawLine[]--> multiline --> format + route --ShipEntry--> DiskChannel
//   DiskChannel --take--> KafkaSink --ack--> channel.commit + checkpoints(fileId -> end, nextSeq)

/** Where a line (or a multi-line event) was read: enough to resume after it and to name it in a DLQ record. */
export interface LinePosition {
  /** The config name of the source that read it. */
  source: string;
  /** The path as the shipper opened it (rotation may have renamed the file since). */
  file: string;
  /** The file's identity (see shipper/sources/file): stable across renames; `stdin-<start ms>` for stdin. */
  fileId: string;
  /** Byte offset of the first byte of the line within the file. */
  offset: number;
  /** Byte offset just after the line's newline: where reading resumes once this line is delivered. */
  end: number;
  /** Per-fileId sequence number of the line (of the event, for merged lines), from 0 at the file's start. */
  seq: number;
}

export interface RawLine extends LinePosition {
  /** The line without its newline (nor a trailing \r), cut to the source's maxLineBytes. */
  bytes: Buffer;
  /** Size of the whole line in bytes without the newline; larger than bytes.length when it was cut. */
  size: number;
}

/** Receives a source's lines. The source reads no further until the returned promise resolves (backpressure). */
export type LineSink = (lines: RawLine[]) => Promise<void>;

/** What a source reports about itself for /metrics and `weir ship --status`. */
export interface FileState {
  source: string;
  path: string;
  fileId: string;
  dev: number;
  ino: number;
  /** Bytes read so far (the offset of the next read). */
  offset: number;
  size: number;
  /** The file was deleted while open: its space is not freed until it is read to the end and closed. */
  deleted: boolean;
  /** Still open (not closed for being idle, deleted and drained, or superseded by rotation). */
  open: boolean;
}

/** The position to resume a file at, from the checkpoints (and from entries still in the channel). */
export interface ResumePoint {
  /** The source that read the file: a source is given only its own files. */
  source?: string;
  fileId: string;
  /** Read from this byte offset: the end of the last line delivered. */
  offset: number;
  /** The seq the next line gets. */
  seq: number;
  /** Where the file was last seen, to find it again quickly (identity is still checked). */
  path?: string;
}

/** A line turned into what goes to Kafka. Dead letters are entries too, for the DLQ topic, so positions move in order. */
export interface ShipEntry {
  topic: string;
  key: Buffer | null;
  value: Buffer;
  /** Event time (ms), the Kafka record timestamp. Dead letters carry the time they were made. */
  ts: number;
  /** Where it came from; the checkpoint of `fileId` moves to `end` / `seq + 1` once Kafka has acknowledged it. */
  position: LinePosition;
}
