// `text`: a log4j / logback pattern line, parsed by a regex with named groups. The default matches
// what the simulator's pay-svc writes (`%d{yyyy-MM-dd HH:mm:ss.SSS} %-5level [%thread] %logger
// [traceId=%X{traceId} spanId=%X{spanId}] - %msg`): groups ts, level, thread, logger, traceId, spanId,
// message (and service, host) are AppLog's fields, any other named group is an attribute. Trailing
// `key=value` words of the message become attributes and leave the message (`pairs: false` keeps them).
// Timestamps have no offset: `timezone` says whose local time they are.
// A merged multi-line event (see multiline.ts) keeps its first line for the pattern; the lines after
// it are the error when they look like a stack trace (`Type: message` then `\tat ...` frames), else
// they continue the message.
import { z } from "zod";
import type { AppLog } from "../../schemas/types.generated.ts";
import { type AppLogDraft, eventTime, finishAppLog, javaError, levelOf } from "./app-log.ts";
import type { LineContext, LineFormat } from "./format.ts";
import { LineProblem, shown } from "./problem.ts";
import { TimeZoneName, timeZone } from "./timestamp.ts";

export const TEXT_PATTERN = String.raw`^(?<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?)\s+(?<level>[A-Za-z]+)\s+\[(?<thread>[^\]]*)\]\s+(?<logger>\S+)\s+(?:\[(?:traceId=(?<traceId>[^\s\]]*)\s+spanId=(?<spanId>[^\s\]]*))?\]\s+)?-(?: (?<message>.*))?$`;

/** A multiline `start` pattern for text logs: an event starts with a line that starts with a timestamp. */
export const TEXT_EVENT_START = String.raw`^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}`;

export const TextFormatConfig = z.strictObject({
  type: z.literal("text"),
  /** A JavaScript regex with named groups; `ts` is required. */
  pattern: z
    .string()
    .default(TEXT_PATTERN)
    .superRefine((source, ctx) => {
      let re: RegExp;
      try {
        re = new RegExp(source);
      } catch (e) {
        ctx.addIssue({ code: "custom", message: `not a valid regular expression: ${(e as Error).message}` });
        return;
      }
      if (!groupNames(re).includes("ts"))
        ctx.addIssue({ code: "custom", message: "the pattern needs a named group (?<ts>...) for the timestamp" });
    }),
  /** Whose local time the timestamps are: an IANA zone (Asia/Shanghai), an offset (+08:00), UTC or local. */
  timezone: TimeZoneName.default("UTC"),
  /** Trailing `key=value` words of the message become attributes (and leave the message). */
  pairs: z.boolean().default(true),
});
export type TextFormatConfig = z.output<typeof TextFormatConfig>;

interface TextLine {
  groups: Record<string, string | undefined>;
  /** The lines after the first, for a merged event; "" for a single line. */
  rest: string;
}

const KNOWN_GROUPS = new Set(["ts", "level", "thread", "logger", "traceId", "spanId", "message", "service", "host"]);
const PAIR_KEY = /^[A-Za-z_][\w.-]*$/;
const FRAME = /^\s+at \S|^Caused by: |^\s+\.\.\. \d+ (?:more|common frames omitted)/m;
const EXCEPTION_HEAD =
  /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+(?::\s|$)|^[\w$.]*(?:Exception|Error|Throwable)(?::\s|$)/;

function groupNames(re: RegExp): string[] {
  // A regex's group names are only known from a match; the source is the other place they are written.
  return [...re.source.matchAll(/\(\?<([A-Za-z_$][\w$]*)>/g)].map((m) => m[1] as string);
}

export function textFormat(config: TextFormatConfig): LineFormat {
  const re = new RegExp(config.pattern);
  const extraGroups = groupNames(re).filter((g) => !KNOWN_GROUPS.has(g));
  const zone = timeZone(config.timezone);
  const pairs = config.pairs;
  return {
    name: "text",
    schemas: ["AppLog"],
    parse(text: string): TextLine {
      const nl = text.indexOf("\n");
      const head = nl === -1 ? text : text.slice(0, nl);
      const m = re.exec(head);
      if (m === null) {
        throw new LineProblem(
          "unparsable",
          `the line does not match the text pattern: it starts ${shown(head.slice(0, 60))}; check format.pattern (or, for a stack trace line on its own, the multiline settings)`,
        );
      }
      return { groups: m.groups ?? {}, rest: nl === -1 ? "" : text.slice(nl + 1) };
    },
    field(parsed: unknown, path: readonly string[]): unknown {
      return path.length === 1 ? (parsed as TextLine).groups[path[0] as string] : undefined;
    },
    appLog(parsed: unknown, ctx: LineContext): AppLog {
      const { groups: g, rest } = parsed as TextLine;
      const attributes: Record<string, string> = {};
      if (g.thread !== undefined) attributes.thread = g.thread;
      for (const name of extraGroups) {
        const v = g[name];
        if (v !== undefined) attributes[name] = v;
      }
      let message = g.message ?? "";
      if (pairs) message = splitTrailingPairs(message, attributes);
      let error: AppLog["error"] = null;
      if (rest !== "") {
        if (FRAME.test(rest) || EXCEPTION_HEAD.test(rest)) error = javaError(rest);
        else message = `${message}\n${rest}`;
      }
      const draft: AppLogDraft = {
        id: ctx.id,
        ts: eventTime(g.ts, "ts", zone),
        service: g.service ?? null,
        host: g.host ?? null,
        level: levelOf(g.level, ctx),
        message,
        logger: g.logger ?? null,
        traceId: g.traceId || null,
        spanId: g.spanId || null,
        error,
        attributes,
        source: ctx.source,
      };
      return finishAppLog(draft, ctx);
    },
  };
}

/** Moves the trailing `key=value` words of a message into `attributes`; returns what is left. */
export function splitTrailingPairs(message: string, attributes: Record<string, string>): string {
  let end = message.length;
  while (end > 0) {
    const space = message.lastIndexOf(" ", end - 1);
    const eq = message.indexOf("=", space + 1);
    if (eq === -1 || eq >= end) break;
    const key = message.slice(space + 1, eq);
    if (!PAIR_KEY.test(key)) break;
    // Read right to left: the rightmost of a repeated key is the one kept.
    if (attributes[key] === undefined) attributes[key] = message.slice(eq + 1, end);
    end = space === -1 ? 0 : space;
  }
  return message.slice(0, end);
}
