// Small helpers shared by the runtime's unit tests.
import { StreamApp } from "../dsl/app.ts";
import { json, type Serde } from "../types.ts";
import type { Windowed } from "../windows/window.ts";

export interface Ev {
  ts: number;
  user: string;
  n?: number;
}

export const evSerde = json<Ev>();

export function testApp(appId = "test", onError: "dlq" | "skip" | "fail" = "dlq"): StreamApp {
  return new StreamApp({ appId, onError });
}

export function windowedSerde<R>(): Serde<Windowed<R>> {
  return json<Windowed<R>>();
}

/** "key@start..end=value" for compact assertions on window results ("~" early, "!n +delta" the n-th correction). */
export function fmt(r: { key: string | null; value: Windowed<unknown> }): string {
  const v = r.value;
  const correction = v.correction ? `!${v.correction} +${JSON.stringify(v.delta)}` : "";
  return `${r.key}@${v.start}..${v.end}=${JSON.stringify(v.value)}${v.final ? "" : "~"}${correction}`;
}
