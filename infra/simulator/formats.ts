// How simulated services write their lines. Access logs and business events are JSON lines with the
// Avro schemas' field names (null fields left out, as services do); app logs come in four formats.
// Lines are built by hand: the simulator must write 200,000 lines a second, and every string here
// except user text (chat, phone) comes from an alphabet that needs no JSON escaping.
import type { AccessLog, AppLog, BehaviorEvent, CoinTxn, DeviceReport, Level } from "../../schemas/types.generated.ts";
import type { LineFormat } from "./platform.ts";

export function accessLine(e: AccessLog): string {
  let s = `{"id":"${e.id}","ts":${e.ts},"app":"${e.app}","system":"${e.system}","service":"${e.service}","endpoint":"${e.endpoint}","method":"${e.method}","status":${e.status},"latencyUs":${e.latencyUs},"bytesIn":${e.bytesIn},"bytesOut":${e.bytesOut}`;
  if (e.errorCode !== null) s += `,"errorCode":"${e.errorCode}"`;
  if (e.traceId !== null) s += `,"traceId":"${e.traceId}"`;
  if (e.caller !== null) s += `,"caller":"${e.caller}"`;
  if (e.uid !== null) s += `,"uid":${e.uid}`;
  if (e.deviceId !== null) s += `,"deviceId":"${e.deviceId}"`;
  s += `,"clientIp":"${e.clientIp}"`;
  if (e.roomId !== null) s += `,"roomId":${e.roomId}`;
  if (e.userAgent !== null) s += `,"userAgent":"${e.userAgent}"`;
  if (e.urlQuery !== null) s += `,"urlQuery":${JSON.stringify(e.urlQuery)}`;
  if (e.referrer !== null) s += `,"referrer":${JSON.stringify(e.referrer)}`;
  return `${s},"host":"${e.host}"}\n`;
}

export function coinLine(e: CoinTxn): string {
  let s = `{"id":"${e.id}","ts":${e.ts},"type":"${e.type}","uid":${e.uid}`;
  if (e.counterpartUid !== null) s += `,"counterpartUid":${e.counterpartUid}`;
  if (e.roomId !== null) s += `,"roomId":${e.roomId}`;
  s += `,"amount":${e.amount},"balanceAfter":${e.balanceAfter}`;
  if (e.giftId !== null) s += `,"giftId":"${e.giftId}"`;
  if (e.cardToken !== null) s += `,"cardToken":"${e.cardToken}"`;
  if (e.paymentChannel !== null) s += `,"paymentChannel":"${e.paymentChannel}"`;
  if (e.fiatAmountCents !== null) s += `,"fiatAmountCents":${e.fiatAmountCents}`;
  if (e.currency !== null) s += `,"currency":"${e.currency}"`;
  if (e.deviceId !== null) s += `,"deviceId":"${e.deviceId}"`;
  s += `,"ip":"${e.ip}"`;
  if (e.traceId !== null) s += `,"traceId":"${e.traceId}"`;
  return `${s}}\n`;
}

export function behaviorLine(e: BehaviorEvent): string {
  let s = `{"id":"${e.id}","ts":${e.ts},"type":"${e.type}","uid":${e.uid}`;
  if (e.targetUid !== null) s += `,"targetUid":${e.targetUid}`;
  if (e.roomId !== null) s += `,"roomId":${e.roomId}`;
  s += `,"deviceId":"${e.deviceId}","ip":"${e.ip}","appVersion":"${e.appVersion}","platform":"${e.platform}"`;
  if (e.phone !== null) s += `,"phone":${JSON.stringify(e.phone)}`;
  if (e.method !== null) s += `,"method":"${e.method}"`;
  if (!e.success) s += `,"success":false`;
  if (e.text !== null) s += `,"text":${JSON.stringify(e.text)}`;
  if (e.traceId !== null) s += `,"traceId":"${e.traceId}"`;
  return `${s}}\n`;
}

export function deviceLine(e: DeviceReport): string {
  // Less frequent and deeply nested: JSON.stringify, with the null fields dropped.
  const { source: _source, uid, network, ...rest } = e;
  return `${JSON.stringify({ ...rest, ...(uid !== null ? { uid } : {}), ...(network !== null ? { network } : {}) })}\n`;
}

const PINO_LEVEL: Record<Level, number> = { TRACE: 10, DEBUG: 20, INFO: 30, WARN: 40, ERROR: 50, FATAL: 60 };
const LOGBACK_LEVEL: Record<Level, number> = {
  TRACE: 5000,
  DEBUG: 10000,
  INFO: 20000,
  WARN: 30000,
  ERROR: 40000,
  FATAL: 50000,
};

/** Per-service context the formats need beyond AppLog: pino's process id. Java's thread is attributes.thread. */
export interface AppLineContext {
  pid: number;
}

export function appLine(format: LineFormat, e: AppLog, ctx: AppLineContext): string {
  switch (format) {
    case "json":
      return appJson(e);
    case "pino":
      return appPino(e, ctx);
    case "logback":
      return appLogback(e);
    case "text":
      return appText(e);
  }
}

/** The attributes as extra JSON fields; `skip` is written elsewhere by the format (logback's thread_name). */
function attrs(e: AppLog, skip?: string): string {
  let s = "";
  for (const k in e.attributes) if (k !== skip) s += `,"${k}":${JSON.stringify(e.attributes[k])}`;
  return s;
}

function appJson(e: AppLog): string {
  let s = `{"ts":${e.ts},"level":"${e.level}","service":"${e.service}","host":"${e.host}","message":${JSON.stringify(e.message)}`;
  if (e.logger !== null) s += `,"logger":"${e.logger}"`;
  if (e.traceId !== null) s += `,"traceId":"${e.traceId}","spanId":"${e.spanId}"`;
  if (e.error !== null) s += `,"error":${JSON.stringify(e.error)}`;
  let a = "";
  for (const k in e.attributes) a += `${a ? "," : ""}"${k}":${JSON.stringify(e.attributes[k])}`;
  if (a) s += `,"attributes":{${a}}`;
  return `${s}}\n`;
}

function appPino(e: AppLog, ctx: AppLineContext): string {
  let s = `{"level":${PINO_LEVEL[e.level]},"time":${e.ts},"pid":${ctx.pid},"hostname":"${e.host}","name":"${e.service}"`;
  if (e.traceId !== null) s += `,"traceId":"${e.traceId}","spanId":"${e.spanId}"`;
  s += attrs(e);
  if (e.error !== null) s += `,"err":${JSON.stringify(e.error)}`;
  return `${s},"msg":${JSON.stringify(e.message)}}\n`;
}

function appLogback(e: AppLog): string {
  let s = `{"@timestamp":"${isoShanghai(e.ts)}","@version":"1","message":${JSON.stringify(e.message)},"logger_name":"${e.logger}","thread_name":"${e.attributes.thread ?? "main"}","level":"${e.level === "FATAL" ? "ERROR" : e.level}","level_value":${LOGBACK_LEVEL[e.level]}`;
  if (e.traceId !== null) s += `,"traceId":"${e.traceId}","spanId":"${e.spanId}"`;
  s += attrs(e, "thread");
  if (e.error !== null)
    s += `,"stack_trace":${JSON.stringify(`${e.error.type}: ${e.error.message}\n${e.error.stack ?? ""}`)}`;
  return `${s}}\n`;
}

function appText(e: AppLog): string {
  const level = e.level === "FATAL" ? "FATAL" : e.level.padEnd(5);
  const trace = e.traceId !== null ? `[traceId=${e.traceId} spanId=${e.spanId}]` : "[]";
  let kv = "";
  for (const k in e.attributes) if (k !== "thread") kv += ` ${k}=${e.attributes[k]}`;
  let s = `${localShanghai(e.ts)} ${level} [${e.attributes.thread ?? "main"}] ${e.logger} ${trace} - ${e.message}${kv}\n`;
  // A Java stack trace: the exception line, then one "\tat ..." line per frame.
  if (e.error !== null) s += `${e.error.type}: ${e.error.message}\n${e.error.stack ?? ""}\n`;
  return s;
}

// Asia/Shanghai has no daylight saving: UTC+8 all year. The date part is cached per second.
let cachedSecond = -1;
let cachedIso = "";
let cachedLocal = "";
function shanghaiParts(ts: number): void {
  const second = Math.floor(ts / 1000);
  if (second === cachedSecond) return;
  cachedSecond = second;
  const d = new Date(second * 1000 + 8 * 3_600_000).toISOString(); // 2026-11-20T20:15:03.000Z in local time
  cachedIso = d.slice(0, 19);
  cachedLocal = `${d.slice(0, 10)} ${d.slice(11, 19)}`;
}

export function isoShanghai(ts: number): string {
  shanghaiParts(ts);
  return `${cachedIso}.${String(ts % 1000).padStart(3, "0")}+08:00`;
}

export function localShanghai(ts: number): string {
  shanghaiParts(ts);
  return `${cachedLocal}.${String(ts % 1000).padStart(3, "0")}`;
}
