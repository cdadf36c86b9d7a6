// What weir ship names as a record's source, stamped as its weir-source header (kafka/headers.ts):
// the host and the log it was read from, rotated files included (`gift-1:/var/log/gift-svc/access.log`
// for access.log, access.log.1, ...). A log's lines are shipped in the order they were written (the
// file source reads a log's files oldest first), so a stream worker can keep a watermark per source.
import { logFamily } from "./sources/file/log-family.ts";
import type { LinePosition } from "./types.ts";

/** Names kept at once; a shipper reads far fewer logs, so this only bounds a pathological glob. */
const MAX_CACHED = 10_000;

export class RecordSources {
  private readonly byFile = new Map<string, string>();

  constructor(private readonly host: string) {}

  of(position: LinePosition): string {
    if (position.fileId.startsWith("stdin-")) return `${this.host}:stdin:${position.source}`;
    let name = this.byFile.get(position.file);
    if (name === undefined) {
      if (this.byFile.size >= MAX_CACHED) this.byFile.clear();
      name = `${this.host}:${logFamily(position.file)}`;
      this.byFile.set(position.file, name);
    }
    return name;
  }
}
