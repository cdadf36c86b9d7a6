// What flows between the fraud pipeline's stages: an event of one of the streams, with the latest
// device report of its device and the registration facts of its user once a stage has joined them.
//
// Between stages (repartition topics) an envelope travels in a compact binary form that re-encodes
// nothing: the event's own Avro bytes as they were read from its topic (single-object encoding, so a
// stage reading it finds its writer schema by fingerprint), the device report's Avro bytes as the
// device table keeps them, the registration facts as a few length-prefixed fields, and, for the keyed
// stage, the key expressions the record was keyed by. A stage decodes the event once; nothing is
// encoded again on the way (the profile of the first version found Avro re-encoding at each of its
// repartitions to be the largest cost).
import { codecFor } from "../../../schemas/codec.ts";
import type { DeviceReport } from "../../../schemas/types.generated.ts";
import type { Serde } from "../../../stream/types.ts";
import { RegistrationFacts, STREAM_NAMES, STREAMS, type StreamName } from "../cel/environment.ts";

export class Envelope {
  /** The key expressions (their text) this record was keyed by, in the keyed stage; null elsewhere. */
  keys: string[] | null = null;

  constructor(
    readonly s: StreamName,
    readonly e: Record<string, unknown>,
    /** The event's Avro single-object bytes, as read (null: encode when it leaves the stage). */
    public raw: Buffer | null,
    /** The latest device report of the event's device, when a stage joined one. */
    public d: DeviceReport | null = null,
    /** Its Avro bytes, as the device table keeps them. */
    public dRaw: Buffer | null = null,
    /** The registration facts of the event's user, when joined and known. */
    public r: RegistrationFacts | null = null,
  ) {}

  get ts(): number {
    return this.e.ts as number;
  }

  /** The same event for another destination (another key), sharing the decoded parts. */
  copy(): Envelope {
    return new Envelope(this.s, this.e, this.raw, this.d, this.dRaw, this.r);
  }
}

const codecs = Object.fromEntries(STREAM_NAMES.map((s) => [s, codecFor(STREAMS[s].schema)])) as Record<
  StreamName,
  ReturnType<typeof codecFor>
>;
const deviceCodec = codecFor("DeviceReport");
const STREAM_INDEX = new Map(STREAM_NAMES.map((s, i) => [s, i]));

/** An event of `stream` as Avro single-object bytes. */
export function encodeEvent(stream: StreamName, event: unknown): Buffer {
  return codecs[stream].encode(event as never);
}

export function decodeEvent(stream: StreamName, bytes: Buffer): Record<string, unknown> {
  return codecs[stream].decode(bytes) as unknown as Record<string, unknown>;
}

export function decodeDeviceReport(bytes: Buffer): DeviceReport {
  return deviceCodec.decode(bytes);
}

/** How a stream's topic is read: the event decoded once, its bytes kept for the next stage. */
export function sourceSerde(stream: StreamName): Serde<Envelope> {
  const codec = codecs[stream];
  return {
    decode: (b) => new Envelope(stream, codec.decode(b) as unknown as Record<string, unknown>, b),
    // The test driver pipes plain events through it.
    encode: (v) => (v instanceof Envelope ? (v.raw ?? codec.encode(v.e as never)) : codec.encode(v as never)),
  };
}

const VERSION = 1;
const HAS_DEVICE = 1;
const HAS_REGISTRATION = 2;
const HAS_KEYS = 4;
const REGISTRATION_STRINGS = 6;

/**
 * [u8 version][u8 stream][u8 flags][u32 n][event]
 * ([u32 n][device report])? ([f64 uid][f64 ts] 6 x [u16 n][utf-8])? ([u16 k] k x [u16 n][utf-8])?
 */
export const envelopeSerde: Serde<Envelope> = {
  encode(env) {
    if (env.raw === null) env.raw = encodeEvent(env.s, env.e);
    const e = env.raw;
    let size = 3 + 4 + e.length;
    let flags = 0;
    let d: Buffer | null = null;
    if (env.d) {
      if (env.dRaw === null) env.dRaw = deviceCodec.encode(env.d);
      d = env.dRaw;
      size += 4 + d.length;
      flags |= HAS_DEVICE;
    }
    const r = env.r;
    let rStrings: string[] | null = null;
    if (r) {
      rStrings = [r.phonePrefix, r.phoneHash, r.deviceId, r.ip, r.ipNetwork, r.method];
      size += 16;
      for (const x of rStrings) size += 2 + Buffer.byteLength(x);
      flags |= HAS_REGISTRATION;
    }
    const keys = env.keys;
    if (keys) {
      size += 2;
      for (const k of keys) size += 2 + Buffer.byteLength(k);
      flags |= HAS_KEYS;
    }
    const out = Buffer.allocUnsafe(size);
    out[0] = VERSION;
    out[1] = STREAM_INDEX.get(env.s) as number;
    out[2] = flags;
    let o = out.writeUInt32BE(e.length, 3);
    o += e.copy(out, o);
    if (d) {
      o = out.writeUInt32BE(d.length, o);
      o += d.copy(out, o);
    }
    if (r && rStrings) {
      o = out.writeDoubleBE(r.uid, o);
      o = out.writeDoubleBE(r.ts, o);
      for (const x of rStrings) o = writeString(out, o, x);
    }
    if (keys) {
      o = out.writeUInt16BE(keys.length, o);
      for (const k of keys) o = writeString(out, o, k);
    }
    return out;
  },
  decode(buf) {
    if (buf[0] !== VERSION) throw new Error(`fraud envelope version ${buf[0]} is not ${VERSION}`);
    const s = STREAM_NAMES[buf[1] as number];
    if (s === undefined) throw new Error(`unknown stream index ${buf[1]} in a fraud envelope`);
    const flags = buf[2] as number;
    const n = buf.readUInt32BE(3);
    let o = 7 + n;
    const raw = buf.subarray(7, o);
    const env = new Envelope(s, decodeEvent(s, raw), raw);
    if (flags & HAS_DEVICE) {
      const dn = buf.readUInt32BE(o);
      env.dRaw = buf.subarray(o + 4, o + 4 + dn);
      env.d = deviceCodec.decode(env.dRaw);
      o += 4 + dn;
    }
    if (flags & HAS_REGISTRATION) {
      const uid = buf.readDoubleBE(o);
      const ts = buf.readDoubleBE(o + 8);
      o += 16;
      const strings: string[] = [];
      for (let i = 0; i < REGISTRATION_STRINGS; i++) {
        const len = buf.readUInt16BE(o);
        strings.push(buf.toString("utf8", o + 2, o + 2 + len));
        o += 2 + len;
      }
      const [prefix, hash, deviceId, ip, network, method] = strings as [string, string, string, string, string, string];
      env.r = new RegistrationFacts(uid, ts, prefix, hash, deviceId, ip, network, method);
    }
    if (flags & HAS_KEYS) {
      const k = buf.readUInt16BE(o);
      o += 2;
      const keys: string[] = [];
      for (let i = 0; i < k; i++) {
        const len = buf.readUInt16BE(o);
        keys.push(buf.toString("utf8", o + 2, o + 2 + len));
        o += 2 + len;
      }
      env.keys = keys;
    }
    return env;
  },
};

function writeString(out: Buffer, o: number, s: string): number {
  const n = out.write(s, o + 2, "utf8");
  out.writeUInt16BE(n, o);
  return o + 2 + n;
}

/** The device table's value: the report and its Avro bytes (a copy: never a view of a fetched batch). */
export interface HeldDevice {
  report: DeviceReport;
  raw: Buffer;
}

export const heldDeviceSerde: Serde<HeldDevice> = {
  encode: (d) => d.raw,
  decode: (b) => {
    const raw = Buffer.from(b);
    return { report: deviceCodec.decode(raw), raw };
  },
};

/** The registration table's value: [f64 uid][f64 ts] 6 x [u16 n][utf-8]. */
export const registrationSerde: Serde<RegistrationFacts> = {
  encode(r) {
    const strings = [r.phonePrefix, r.phoneHash, r.deviceId, r.ip, r.ipNetwork, r.method];
    let size = 16;
    for (const x of strings) size += 2 + Buffer.byteLength(x);
    const out = Buffer.allocUnsafe(size);
    let o = out.writeDoubleBE(r.uid, 0);
    o = out.writeDoubleBE(r.ts, o);
    for (const x of strings) o = writeString(out, o, x);
    return out;
  },
  decode(buf) {
    const uid = buf.readDoubleBE(0);
    const ts = buf.readDoubleBE(8);
    let o = 16;
    const strings: string[] = [];
    for (let i = 0; i < REGISTRATION_STRINGS; i++) {
      const len = buf.readUInt16BE(o);
      strings.push(buf.toString("utf8", o + 2, o + 2 + len));
      o += 2 + len;
    }
    const [prefix, hash, deviceId, ip, network, method] = strings as [string, string, string, string, string, string];
    return new RegistrationFacts(uid, ts, prefix, hash, deviceId, ip, network, method);
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
