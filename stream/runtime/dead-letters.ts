// Dead letters as the DeadLetter schema describes them: deterministic id from the origin, the raw
// bytes truncated to a limit, the reason code and the message.
import { createHash } from "node:crypto";
import { codecFor } from "../../schemas/codec.ts";
import type { DeadLetterInput } from "./task.ts";

const codec = codecFor("DeadLetter");
export const DLQ_RAW_LIMIT = 256 * 1024;

export function encodeDeadLetter(component: string, d: DeadLetterInput, now: number): { key: string; value: Buffer } {
  const raw = d.raw ?? Buffer.alloc(0);
  const id = d.id ?? `${d.topic ?? "?"}/${d.partition ?? "?"}/${d.offset ?? "?"}/${d.reason}`;
  return {
    key: id,
    value: codec.encode({
      id,
      ts: now,
      component,
      reason: d.reason,
      message: d.message.slice(0, 4096),
      origin: {
        topic: d.topic,
        partition: d.partition,
        offset: d.offset === null ? null : Number(d.offset),
        file: null,
        fileId: null,
        fileOffset: null,
        host: null,
      },
      schema: d.schema ?? null,
      raw: raw.length > DLQ_RAW_LIMIT ? raw.subarray(0, DLQ_RAW_LIMIT) : raw,
      rawSize: raw.length,
      truncated: raw.length > DLQ_RAW_LIMIT,
      headers: d.headers ?? {},
    }),
  };
}

/**
 * A record a sink refused for good. It has no input offset by then, so its id is the sink's name
 * and a digest of the record: the same record refused again on a replay has the same id.
 */
export function encodeSinkDeadLetter(
  component: string,
  sink: string,
  refused: { reason: string; message: string; value: unknown },
  now: number,
): { key: string; value: Buffer } {
  const raw = Buffer.from(JSON.stringify(refused.value) ?? "null");
  const digest = createHash("sha256").update(raw).digest("hex").slice(0, 32);
  const { reason, message } = refused;
  const id = `sink:${sink}/${digest}/${reason}`;
  return encodeDeadLetter(component, { reason, message, topic: null, partition: null, offset: null, raw, id }, now);
}
