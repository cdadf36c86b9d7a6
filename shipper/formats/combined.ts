// `combined`: the NCSA combined access log of nginx and Apache,
//   $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
// optionally followed by the request time (nginx's common `$request_time` extension, in seconds with
// millisecond resolution; Apache's %D in microseconds: see requestTimeUnit). Mapped onto AccessLog:
// clientIp, ts, method, endpoint (the path without its query, or the first of `endpoints` templates it
// matches, so /room/7/enter counts as /room/{id}/enter), status, bytesOut, latencyUs (0 without a
// request time), userAgent ("-" is null), urlQuery (what follows the path's `?`, before any `#`) and
// referrer ("-" is null). The line has no id: it is `<fileId>:<offset>`. app and
// system come from the source's `fields` (or path captures), service and host from enrichment.
// Both servers escape a quote inside a quoted field, nginx as \x22 and Apache as \"; both are read.
import { z } from "zod";
import type { LineContext, LineFormat } from "./format.ts";
import { LineProblem, shown } from "./problem.ts";

export const CombinedFormatConfig = z.strictObject({
  type: z.literal("combined"),
  /** The trailing request time: `optional` takes it when present, `required` dead-letters lines without one, `none` ignores it. */
  requestTime: z.enum(["optional", "required", "none"]).default("optional"),
  /** Its unit: s for nginx's $request_time, us for Apache's %D, ms for %{ms}T. */
  requestTimeUnit: z.enum(["s", "ms", "us"]).default("s"),
  /** Route templates such as /room/{id}/enter: a path matching one is counted as that endpoint. */
  endpoints: z.array(z.string().regex(/^\//, "a path template starting with /, e.g. /room/{id}/enter")).default([]),
});
export type CombinedFormatConfig = z.output<typeof CombinedFormatConfig>;

const QUOTED = String.raw`"((?:[^"\\]|\\.)*)"`;
const LINE = new RegExp(
  String.raw`^(\S+) \S+ (\S+) \[([^\]]+)\] ${QUOTED} (\d{3}) (\d+|-) ${QUOTED} ${QUOTED}(?:\s+(\d+(?:\.\d+)?|-))?`,
);
const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};

export interface CombinedLine {
  remoteAddr: string;
  remoteUser: string | null;
  ts: number;
  method: string;
  path: string;
  protocol: string | null;
  status: number;
  bodyBytesSent: number;
  referer: string | null;
  userAgent: string | null;
  /** Microseconds; null when the line has none. */
  requestTimeUs: number | null;
}

export function combinedFormat(config: CombinedFormatConfig): LineFormat {
  const unitUs = config.requestTimeUnit === "s" ? 1e6 : config.requestTimeUnit === "ms" ? 1e3 : 1;
  const endpoints = config.endpoints.map((t) => ({ template: t, re: templateRegex(t) }));
  return {
    name: "combined",
    schemas: ["AccessLog"],
    parse(text: string): CombinedLine {
      const m = LINE.exec(text);
      if (m === null) {
        throw new LineProblem(
          "unparsable",
          `not a combined access log line: it starts ${shown(text.slice(0, 60))}; the format is $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" [$request_time]`,
        );
      }
      const ts = timeLocal(m[3] as string);
      if (Number.isNaN(ts)) {
        throw new LineProblem("wrong-type", `"time_local": expected dd/Mon/yyyy:HH:mm:ss ±hhmm, got ${shown(m[3])}`);
      }
      const rt = m[9];
      let requestTimeUs: number | null = null;
      if (config.requestTime !== "none" && rt !== undefined && rt !== "-") {
        requestTimeUs = Math.round(Number(rt) * unitUs);
      } else if (config.requestTime === "required") {
        throw new LineProblem(
          "missing-field",
          `no request time after the user agent (requestTime: required); log $request_time last, or set requestTime: optional`,
        );
      }
      const request = unescapeLogField(m[4] as string);
      // "GET /path HTTP/1.1"; "-" or garbage (a TLS handshake sent to a plain port) when nginx could not read one.
      const sp1 = request.indexOf(" ");
      const sp2 = request.lastIndexOf(" ");
      let method = "-";
      let path = "-";
      let protocol: string | null = null;
      if (sp1 > 0) {
        method = request.slice(0, sp1);
        path = sp2 > sp1 ? request.slice(sp1 + 1, sp2) : request.slice(sp1 + 1);
        protocol = sp2 > sp1 ? request.slice(sp2 + 1) : null;
      }
      const user = m[2] as string;
      const bytes = m[6] as string;
      const referer = unescapeLogField(m[7] as string);
      const ua = unescapeLogField(m[8] as string);
      return {
        remoteAddr: m[1] as string,
        remoteUser: user === "-" ? null : user,
        ts,
        method,
        path,
        protocol,
        status: Number(m[5]),
        bodyBytesSent: bytes === "-" ? 0 : Number(bytes),
        referer: referer === "-" || referer === "" ? null : referer,
        userAgent: ua === "-" || ua === "" ? null : ua,
        requestTimeUs,
      };
    },
    field(parsed: unknown, path: readonly string[]): unknown {
      return path.length === 1 ? (parsed as unknown as Record<string, unknown>)[path[0] as string] : undefined;
    },
    record(parsed: unknown, _schema, ctx: LineContext): Record<string, unknown> {
      const c = parsed as CombinedLine;
      return {
        id: ctx.id,
        ts: c.ts,
        app: undefined,
        system: undefined,
        service: undefined,
        endpoint: endpointOf(c.path, endpoints),
        method: c.method,
        status: c.status,
        latencyUs: c.requestTimeUs ?? 0,
        bytesIn: 0,
        bytesOut: c.bodyBytesSent,
        errorCode: null,
        traceId: null,
        caller: null,
        uid: null,
        deviceId: null,
        clientIp: c.remoteAddr,
        roomId: null,
        userAgent: c.userAgent,
        urlQuery: queryOf(c.path),
        referrer: c.referer,
        host: undefined,
        source: null,
      };
    },
  };
}

function endpointOf(path: string, endpoints: { template: string; re: RegExp }[]): string {
  let end = path.indexOf("?");
  if (end === -1) end = path.indexOf("#");
  const p = end === -1 ? path : path.slice(0, end);
  for (const e of endpoints) if (e.re.test(p)) return e.template;
  return p;
}

/** The query string of a request's path, without its `?` and any `#` fragment; null when it has none. */
function queryOf(path: string): string | null {
  const q = path.indexOf("?");
  const hash = path.indexOf("#");
  if (q === -1 || (hash !== -1 && hash < q)) return null;
  const query = hash === -1 ? path.slice(q + 1) : path.slice(q + 1, hash);
  return query === "" ? null : query;
}

/** `/room/{id}/enter` -> /^\/room\/[^/]+\/enter$/ */
function templateRegex(template: string): RegExp {
  const parts = template.split(/\{[^}/]+\}/).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join("[^/]+")}$`);
}

/** nginx writes \xHH for quotes and control bytes, Apache \" and \\: back to the characters. */
function unescapeLogField(s: string): string {
  if (s.indexOf("\\") === -1) return s;
  return s.replace(/\\(x[0-9A-Fa-f]{2}|.)/g, (_, e: string) =>
    e.length === 3 ? String.fromCharCode(Number.parseInt(e.slice(1), 16)) : e === "n" ? "\n" : e === "t" ? "\t" : e,
  );
}

/** `10/Oct/2000:13:55:36 -0700` -> epoch ms; NaN when it is not one. */
export function timeLocal(s: string): number {
  const m = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(s);
  if (m === null) return Number.NaN;
  const month = MONTHS[m[2] as string];
  if (month === undefined) return Number.NaN;
  const local = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  const offset = (Number(m[8]) * 60 + Number(m[9])) * 60_000;
  return m[7] === "+" ? local - offset : local + offset;
}
