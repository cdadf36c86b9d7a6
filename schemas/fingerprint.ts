// Avro's schema fingerprint: the 64-bit Rabin fingerprint (CRC-64-AVRO) of a schema's Parsing
// Canonical Form, as the Avro specification defines them. avsc offers only cryptographic hashes.
import type { Type } from "avsc";

const EMPTY = 0xc15d213aa4d7a795n;
const MASK = 0xffffffffffffffffn;

const TABLE: bigint[] = Array.from({ length: 256 }, (_, i) => {
  let fp = BigInt(i);
  for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & (-(fp & 1n) & MASK));
  return fp;
});

/** CRC-64-AVRO of `bytes`, unsigned. (Java's SchemaNormalization prints it signed: BigInt.asIntN(64, fp).) */
export function rabin64(bytes: Uint8Array): bigint {
  let fp = EMPTY;
  for (const b of bytes) fp = (fp >> 8n) ^ (TABLE[Number((fp ^ BigInt(b)) & 0xffn)] as bigint);
  return fp;
}

/**
 * The Parsing Canonical Form: full names, only name/type/fields/symbols/items/values/size in that
 * order, no docs, defaults or aliases. avsc's schema() produces exactly this (checked against the
 * Avro project's test vectors in fingerprint.test.ts).
 */
export function canonicalForm(type: Type): string {
  return JSON.stringify(type.schema());
}

export function fingerprint(type: Type): bigint {
  return rabin64(Buffer.from(canonicalForm(type), "utf8"));
}

/** The 8 bytes of a fingerprint as single-object encoding writes them: little-endian. */
export function fingerprintBytes(fp: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(fp);
  return b;
}
