// Avro single-object encoding: C3 01, the writer schema's CRC-64-AVRO fingerprint (8 bytes,
// little-endian), then the Avro binary body. Decoding finds the writer schema by fingerprint in the
// registry and resolves it to the reader's schema, so producers and consumers can evolve apart.
// Every failure is a CodecError whose `reason` is a DLQ reason code.
import type avro from "avsc";
import { fingerprintBytes } from "./fingerprint.ts";
import { type SchemaRegistry, type SchemaVersion, schemaRegistry } from "./registry.ts";
import type { SchemaName, SchemaTypes } from "./types.generated.ts";

export const MAGIC = Buffer.from([0xc3, 0x01]);
export const HEADER_SIZE = 10;

export type CodecErrorReason =
  /** Does not start with C3 01: not single-object encoded Avro (JSON, another encoding, garbage). */
  | "not-single-object"
  /** The body ends before the record does. */
  | "truncated"
  /** No schema in schemas/ (current or history) has this fingerprint. */
  | "unknown-fingerprint"
  /** The writer schema cannot be read as the reader schema (another record, or a breaking change). */
  | "incompatible-schema"
  /** The body does not decode under its writer schema. */
  | "corrupt-avro"
  /** Bytes are left after the record. */
  | "trailing-bytes"
  /** A value to encode does not match the schema. */
  | "invalid-value";

export class CodecError extends Error {
  constructor(
    readonly reason: CodecErrorReason,
    message: string,
    /** The writer fingerprint, hex, when the header could be read. */
    readonly fingerprint?: string,
  ) {
    super(message);
    this.name = "CodecError";
  }
}

/** Encodes and decodes one schema's records. Reuses one scratch buffer: not for concurrent use across threads. */
export class AvroCodec<T> {
  readonly schema: SchemaVersion;
  private readonly header: Buffer;
  private scratch = Buffer.alloc(4096);
  private readonly resolvers = new Map<bigint, avro.Resolver | null>();

  constructor(
    readonly name: string,
    private readonly registry: SchemaRegistry = schemaRegistry(),
  ) {
    this.schema = registry.current(name);
    this.header = Buffer.concat([MAGIC, fingerprintBytes(this.schema.fingerprint)]);
    this.header.copy(this.scratch);
    this.resolvers.set(this.schema.fingerprint, null);
  }

  /** The single-object encoding of `value`, in a buffer of its own. */
  encode(value: T): Buffer {
    const end = this.encodeIntoScratch(value);
    return Buffer.from(this.scratch.subarray(0, end));
  }

  private encodeIntoScratch(value: T): number {
    for (;;) {
      let end: number;
      try {
        end = this.schema.type.encode(value, this.scratch, HEADER_SIZE);
      } catch {
        throw new CodecError("invalid-value", `not a valid ${this.name}: ${describeInvalid(this.schema.type, value)}`);
      }
      if (end > 0) return end;
      // avsc returns a negative number when the buffer is too small: grow and retry.
      const grown = Buffer.alloc(Math.max(this.scratch.length * 2, this.scratch.length - end));
      this.header.copy(grown);
      this.scratch = grown;
    }
  }

  /** Decodes a single-object-encoded record written with any known version of any compatible schema. */
  decode(buf: Buffer): T {
    if (buf.length < HEADER_SIZE || buf[0] !== 0xc3 || buf[1] !== 0x01) {
      throw new CodecError(
        buf.length >= 2 && buf[0] === 0xc3 && buf[1] === 0x01 ? "truncated" : "not-single-object",
        `expected Avro single-object encoding (C3 01 + 8-byte fingerprint), got ${preview(buf)}`,
      );
    }
    const fp = buf.readBigUInt64LE(2);
    const resolver = this.resolverFor(fp);
    let decoded: { value: unknown; offset: number };
    try {
      decoded = this.schema.type.decode(buf, HEADER_SIZE, resolver ?? undefined);
    } catch (e) {
      throw new CodecError("corrupt-avro", `${this.name} body does not decode: ${(e as Error).message}`, hex(fp));
    }
    if (decoded.offset < 0)
      throw new CodecError("truncated", `${this.name} body ends early (${buf.length} bytes)`, hex(fp));
    if (decoded.offset !== buf.length) {
      throw new CodecError(
        "trailing-bytes",
        `${buf.length - decoded.offset} bytes after the ${this.name} record`,
        hex(fp),
      );
    }
    return decoded.value as T;
  }

  private resolverFor(fp: bigint): avro.Resolver | null {
    const cached = this.resolvers.get(fp);
    if (cached !== undefined) return cached;
    const writer = this.registry.byFingerprint(fp);
    if (!writer) {
      throw new CodecError(
        "unknown-fingerprint",
        `no schema in schemas/ has fingerprint ${hex(fp)} (reading ${this.name})`,
        hex(fp),
      );
    }
    let resolver: avro.Resolver;
    try {
      resolver = this.schema.type.createResolver(writer.type);
    } catch (e) {
      throw new CodecError(
        "incompatible-schema",
        `${writer.fullName} v${writer.version} cannot be read as ${this.schema.fullName}: ${(e as Error).message}`,
        hex(fp),
      );
    }
    this.resolvers.set(fp, resolver);
    return resolver;
  }
}

/** A codec typed by the generated interface of its schema. */
export function codecFor<N extends SchemaName>(name: N, registry?: SchemaRegistry): AvroCodec<SchemaTypes[N]> {
  return new AvroCodec<SchemaTypes[N]>(name, registry);
}

/** Reads the writer schema of a single-object-encoded record and decodes it with that schema, whatever it is. */
export function decodeAny(
  buf: Buffer,
  registry: SchemaRegistry = schemaRegistry(),
): { schema: SchemaVersion; value: unknown } {
  if (buf.length < HEADER_SIZE || buf[0] !== 0xc3 || buf[1] !== 0x01) {
    throw new CodecError("not-single-object", `expected Avro single-object encoding, got ${preview(buf)}`);
  }
  const fp = buf.readBigUInt64LE(2);
  const schema = registry.byFingerprint(fp);
  if (!schema) throw new CodecError("unknown-fingerprint", `no schema in schemas/ has fingerprint ${hex(fp)}`, hex(fp));
  return { schema, value: new AvroCodec(schema.name, registry).decode(buf) };
}

function hex(fp: bigint): string {
  return fp.toString(16).padStart(16, "0");
}

function preview(buf: Buffer): string {
  return `${buf.length} bytes starting ${buf.subarray(0, 12).toString("hex") || "(empty)"}`;
}

/** Names the first invalid field and value, e.g. `source.offset = "x" is not a long`. */
function describeInvalid(type: avro.Type, value: unknown): string {
  let found = "";
  type.isValid(value, {
    errorHook: (path: string[], v: unknown, t: avro.Type) => {
      if (found) return;
      const shown = v === undefined ? "undefined" : JSON.stringify(v)?.slice(0, 60);
      const expected = t.typeName === "union" ? JSON.stringify(t.schema()) : t.typeName;
      found = `${path.join(".") || "(the record)"} = ${shown} is not ${expected}`;
    },
  });
  return found || "rejected by the encoder";
}
