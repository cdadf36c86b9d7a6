// A fixture's events are written with only the fields that matter to the rule; the rest come from a
// plain, valid record of their stream (a genuine phone, a logged-in user on wifi). Each event is
// then validated by the Avro codec, so a fixture can never hold a record the pipeline could not.

import { durationMs } from "../../../schemas/catalog.ts";
import { CodecError, codecFor } from "../../../schemas/codec.ts";
import { STREAMS, type StreamName } from "../cel/environment.ts";

/** The time fixtures start at (`at: 0s`): the simulator's default start. */
export const FIXTURE_EPOCH = Date.parse("2026-11-20T12:30:00Z");

const TEMPLATES: Record<StreamName, () => Record<string, unknown>> = {
  behavior: () => ({
    id: "",
    ts: 0,
    type: "LIKE",
    uid: 100000001,
    targetUid: null,
    roomId: null,
    deviceId: "d-fixture",
    ip: "111.200.1.10",
    appVersion: "8.4.1",
    platform: "android",
    phone: null,
    method: null,
    success: true,
    text: null,
    traceId: null,
    source: null,
  }),
  coin: () => ({
    id: "",
    ts: 0,
    type: "GIFT",
    uid: 100000001,
    counterpartUid: null,
    roomId: null,
    amount: 10,
    balanceAfter: 1000,
    giftId: null,
    cardToken: null,
    paymentChannel: null,
    fiatAmountCents: null,
    currency: null,
    deviceId: "d-fixture",
    ip: "111.200.1.10",
    traceId: null,
    source: null,
  }),
  device: () => ({
    id: "",
    ts: 0,
    deviceId: "d-fixture",
    installId: "i-fixture",
    uid: 100000001,
    platform: "ANDROID",
    osVersion: "14",
    appVersion: "8.4.1",
    build: {
      fingerprint: "Xiaomi/fuxi/fuxi:14/UKQ1.230804.001/V816.0.5:user/release-keys",
      model: "2211133C",
      manufacturer: "Xiaomi",
      brand: "Xiaomi",
      hardware: "qcom",
      product: "fuxi",
      device: "fuxi",
      board: "kalama",
      tags: "release-keys",
      type: "user",
    },
    sensors: [
      "accelerometer",
      "magnetometer",
      "orientation",
      "gyroscope",
      "light",
      "pressure",
      "proximity",
      "gravity",
      "linear_acceleration",
      "rotation_vector",
      "step_counter",
      "significant_motion",
    ],
    battery: { level: 64, charging: false, temperatureDeciC: 310, voltageMv: 3900 },
    telephony: { imeiPresent: true, imsiPresent: true, simOperator: "46000" },
    root: {
      suPaths: [],
      packages: [],
      testKeys: false,
      writableSystem: false,
      debuggable: false,
      hookFrameworks: [],
      jailbreakPaths: [],
    },
    ip: "111.200.1.10",
    network: "wifi",
    source: null,
  }),
  access: () => ({
    id: "",
    ts: 0,
    app: "live",
    system: "room",
    service: "room-svc",
    endpoint: "/room/{id}/enter",
    method: "POST",
    status: 200,
    latencyUs: 12000,
    bytesIn: 100,
    bytesOut: 200,
    errorCode: null,
    traceId: null,
    caller: null,
    uid: 100000001,
    deviceId: "d-fixture",
    clientIp: "111.200.1.10",
    roomId: null,
    userAgent: "live-android/8.4.1",
    host: "room-svc-0",
    source: null,
  }),
};

export class FixtureEventError extends Error {
  constructor(
    message: string,
    /** The field of the fixture event at fault, when known. */
    readonly field?: string,
  ) {
    super(message);
    this.name = "FixtureEventError";
  }
}

/** The full record of a fixture event: the template, the fixture's fields over it, validated. */
export function fixtureRecord(
  stream: StreamName,
  fields: Record<string, unknown>,
  id: string,
): { ts: number; record: Record<string, unknown> } {
  const { at, stream: _stream, ...given } = fields;
  let offset: number;
  if (typeof at === "number") offset = at;
  else {
    try {
      offset = at === "0" ? 0 : durationMs(String(at));
    } catch {
      throw new FixtureEventError("at: an offset from the fixture's start such as 0s, 90s, 15m or 2h", "at");
    }
  }
  const record = TEMPLATES[stream]();
  for (const [k, v] of Object.entries(given)) {
    if (!(k in record)) throw new FixtureEventError(`${STREAMS[stream].schema} has no field ${k}`, k);
    const base = record[k];
    // nested records (build, battery, root, ...) are merged field by field
    record[k] =
      isRecord(base) && isRecord(v)
        ? (() => {
            for (const nk of Object.keys(v))
              if (!(nk in base)) throw new FixtureEventError(`${k} has no field ${nk}`, `${k}.${nk}`);
            return { ...base, ...v };
          })()
        : v;
  }
  if (record.id === "") record.id = id;
  if (given.ts === undefined) record.ts = FIXTURE_EPOCH + offset;
  try {
    const codec = codecFor(STREAMS[stream].schema);
    return {
      ts: record.ts as number,
      record: codec.decode(codec.encode(record as never)) as unknown as Record<string, unknown>,
    };
  } catch (e) {
    if (e instanceof CodecError) throw new FixtureEventError(e.message.replace(/^not a valid \w+: /, ""));
    throw e;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
