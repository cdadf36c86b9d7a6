// What flows between the fraud pipeline's steps: an event of one of the streams, with the latest
// device report of its device and the registration facts of its user once the enrichment steps have
// joined them. Through repartition topics and state it travels as Avro (the events' own codecs), so
// that every step reads avsc record instances: the type the rules' CEL environment checks against.
import { codecFor } from "../../../schemas/codec.ts";
import type { DeviceReport } from "../../../schemas/types.generated.ts";
import type { Serde } from "../../../stream/types.ts";
import { RegistrationFacts, STREAM_NAMES, STREAMS, type StreamName } from "../cel/environment.ts";

export interface Envelope {
  s: StreamName;
  e: Record<string, unknown>;
  /** The latest device report of the event's device, when the pipeline joins it and one is known. */
  d: DeviceReport | null;
  /** The registration facts of the event's user, when joined and known. */
  r: RegistrationFacts | null;
}

const codecs = Object.fromEntries(STREAM_NAMES.map((s) => [s, codecFor(STREAMS[s].schema)])) as Record<
  StreamName,
  ReturnType<typeof codecFor>
>;
const deviceCodec = codecFor("DeviceReport");

/** An event of `stream` as Avro single-object bytes. */
export function encodeEvent(stream: StreamName, event: unknown): Buffer {
  return codecs[stream].encode(event as never);
}

export function decodeEvent(stream: StreamName, bytes: Buffer): Record<string, unknown> {
  return codecs[stream].decode(bytes) as unknown as Record<string, unknown>;
}

export const deviceReportSerde: Serde<DeviceReport> = {
  encode: (d) => deviceCodec.encode(d),
  decode: (b) => deviceCodec.decode(b),
};

export const registrationSerde: Serde<RegistrationFacts> = {
  encode: (r) => Buffer.from(JSON.stringify(r)),
  decode: (b) => {
    const o = JSON.parse(b.toString("utf8")) as RegistrationFacts;
    return new RegistrationFacts(o.uid, o.ts, o.phonePrefix, o.phoneHash, o.deviceId, o.ip, o.ipNetwork, o.method);
  },
};

/** [u8 stream][u32 n][event][u32 n][device report or nothing][u32 n][registration JSON or nothing] */
export const envelopeSerde: Serde<Envelope> = {
  encode(env) {
    const e = encodeEvent(env.s, env.e);
    const d = env.d ? deviceCodec.encode(env.d) : Buffer.alloc(0);
    const r = env.r ? registrationSerde.encode(env.r) : Buffer.alloc(0);
    const out = Buffer.allocUnsafe(1 + 12 + e.length + d.length + r.length);
    let o = out.writeUInt8(STREAM_NAMES.indexOf(env.s), 0);
    for (const part of [e, d, r]) {
      o = out.writeUInt32BE(part.length, o);
      o += part.copy(out, o);
    }
    return out;
  },
  decode(buf) {
    const s = STREAM_NAMES[buf.readUInt8(0)];
    if (s === undefined) throw new Error(`unknown stream index ${buf.readUInt8(0)} in a fraud envelope`);
    const parts: Buffer[] = [];
    let o = 1;
    for (let i = 0; i < 3; i++) {
      const n = buf.readUInt32BE(o);
      parts.push(buf.subarray(o + 4, o + 4 + n));
      o += 4 + n;
    }
    const [e, d, r] = parts as [Buffer, Buffer, Buffer];
    return {
      s,
      e: decodeEvent(s, e),
      d: d.length > 0 ? deviceCodec.decode(d) : null,
      r: r.length > 0 ? registrationSerde.decode(r) : null,
    };
  },
};

/** The event's device id, when its stream has one. */
export function deviceIdOf(env: Envelope): string | null {
  const id = env.e.deviceId;
  return typeof id === "string" && id !== "" ? id : null;
}

/** The event's user, when its stream has one. */
export function uidOf(env: Envelope): number | null {
  const uid = env.e.uid;
  return typeof uid === "number" ? uid : null;
}
