// An order-independent fingerprint of a multiset of messages: what the benchmark compares between the
// input file and a topic, whatever order the partitions deliver in. Two sums of CRC-32C under different
// initial states make a chance match of different contents negligible; the count and the byte total
// say what went wrong when they differ.
import { crc32c } from "@node-rs/crc32";
import type { AccessLog } from "../../schemas/types.generated.ts";

const MOD = 2 ** 48; // sums stay exact in a double: < 2^48 + 2^32
const SECOND_STATE = 0x9e3779b9;

export class Digest {
  count = 0;
  bytes = 0;
  private sumA = 0;
  private sumB = 0;

  add(x: Uint8Array | string): void {
    this.count++;
    this.bytes += typeof x === "string" ? Buffer.byteLength(x) : x.length;
    this.sumA = (this.sumA + crc32c(x)) % MOD;
    this.sumB = (this.sumB + crc32c(x, SECOND_STATE)) % MOD;
  }

  equals(o: Digest): boolean {
    return this.count === o.count && this.bytes === o.bytes && this.sumA === o.sumA && this.sumB === o.sumB;
  }

  /** What differs from `expected`, for the report; "" when they are equal. */
  difference(expected: Digest): string {
    if (this.equals(expected)) return "";
    if (this.count !== expected.count) return `${this.count} messages where ${expected.count} lines were written`;
    if (this.bytes !== expected.bytes) return `${this.bytes} bytes where the lines hold ${expected.bytes}`;
    return "the same count and bytes, different contents";
  }
}

/** The fields an AccessLog must keep from its line, as one string: shipped records are compared on these. */
export function fieldsKey(e: Pick<AccessLog, FieldName>): string {
  return `${e.id}\t${e.ts}\t${e.service}\t${e.endpoint}\t${e.method}\t${e.status}\t${e.latencyUs}\t${e.traceId}\t${e.uid}\t${e.clientIp}\t${e.host}`;
}

type FieldName =
  | "id"
  | "ts"
  | "service"
  | "endpoint"
  | "method"
  | "status"
  | "latencyUs"
  | "traceId"
  | "uid"
  | "clientIp"
  | "host";
