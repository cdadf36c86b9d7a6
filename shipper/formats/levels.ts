// Severity words and numbers of the logging libraries services use, mapped onto AppLog's Level.
// Unknown levels read as INFO, like the schema's enum default; the decoder counts them.
import type { Level } from "../../schemas/types.generated.ts";

const BY_NAME: Record<string, Level> = Object.assign(Object.create(null) as Record<string, Level>, {
  TRACE: "TRACE",
  FINEST: "TRACE",
  FINER: "TRACE",
  VERBOSE: "TRACE",
  DEBUG: "DEBUG",
  DBG: "DEBUG",
  FINE: "DEBUG",
  INFO: "INFO",
  INFORMATION: "INFO",
  NOTICE: "INFO",
  CONFIG: "INFO",
  WARN: "WARN",
  WARNING: "WARN",
  ERROR: "ERROR",
  ERR: "ERROR",
  SEVERE: "ERROR",
  FATAL: "FATAL",
  CRITICAL: "FATAL",
  CRIT: "FATAL",
  ALERT: "FATAL",
  EMERG: "FATAL",
  EMERGENCY: "FATAL",
  PANIC: "FATAL",
});

/** The Level of a severity word, any case (`warning` -> WARN); undefined when unknown. */
export function levelFromName(name: string): Level | undefined {
  return BY_NAME[name] ?? BY_NAME[name.trim().toUpperCase()];
}

/** pino's numbers: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal; custom levels fall in the decade below. */
export function levelFromPinoNumber(n: number): Level | undefined {
  if (!(n >= 10)) return undefined;
  if (n < 20) return "TRACE";
  if (n < 30) return "DEBUG";
  if (n < 40) return "INFO";
  if (n < 50) return "WARN";
  if (n < 60) return "ERROR";
  return "FATAL";
}
