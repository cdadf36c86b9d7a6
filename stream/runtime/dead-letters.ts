// Dead letters as the DeadLetter schema describes them: deterministic id from the origin, the raw
// bytes truncated to a limit, the reason code and the message.
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
