// The `weir ship` configuration for a simulator output folder (docs/simulator.md, "Output"): one
// source per log kind and app-log format, rotated files included (`x.log*`), so that lines a
// copytruncate moved into `x.log.1` while the shipper was down are still read. `weir demo` ships the
// simulator's files with it, and the shipper's tests do too.
import { join } from "node:path";

export interface SimulatorTopics {
  access: string;
  app: string;
  behavior: string;
  coin: string;
  device: string;
  dlq: string;
}

/** The catalog's topics. */
export const CATALOG_TOPICS: SimulatorTopics = {
  access: "logs.access",
  app: "logs.app",
  behavior: "events.behavior",
  coin: "events.coin",
  device: "events.device",
  dlq: "dlq.ship",
};

/** The schema and key of each kind, for topics outside the catalog (tests' private copies). */
export const SIMULATOR_TOPIC_SCHEMAS: Record<keyof SimulatorTopics, { schema: string; key: string }> = {
  access: { schema: "AccessLog", key: "service" },
  app: { schema: "AppLog", key: "service" },
  behavior: { schema: "BehaviorEvent", key: "uid" },
  coin: { schema: "CoinTxn", key: "uid" },
  device: { schema: "DeviceReport", key: "deviceId" },
  dlq: { schema: "DeadLetter", key: "id" },
};

/**
 * The config as an object (what the YAML file holds). With `declareTopics`, the topics are declared
 * under `topics:` with their schemas, for names the catalog does not know.
 */
export function simulatorShipConfig(
  simDir: string,
  dataDir: string,
  topics: SimulatorTopics = CATALOG_TOPICS,
  options: { declareTopics?: boolean; channelMaxBytes?: string; metricsPort?: number } = {},
): Record<string, unknown> {
  const source = (name: string, paths: string[], format: unknown, topic: string, more: object = {}) => ({
    name,
    paths: paths.map((p) => join(simDir, p)),
    format,
    topic,
    pathTemplate: join(simDir, "{service}/*"),
    ...more,
  });
  return {
    dataDir,
    ...(options.declareTopics
      ? {
          topics: Object.fromEntries(
            (Object.keys(topics) as Array<keyof SimulatorTopics>).map((k) => [topics[k], SIMULATOR_TOPIC_SCHEMAS[k]]),
          ),
        }
      : {}),
    channel: { maxBytes: options.channelMaxBytes ?? "256MiB", segmentBytes: "8MiB" },
    dlq: { topic: topics.dlq },
    metrics: { port: options.metricsPort ?? 0 },
    sources: [
      source("access", ["*/access.log*"], "json", topics.access),
      source("app-json", ["im-svc/app.log*", "device-svc/app.log*"], "json", topics.app),
      source("app-pino", ["room-svc/app.log*", "social-svc/app.log*", "gift-svc/app.log*"], "pino", topics.app),
      source("app-logback", ["user-svc/app.log*"], "logback", topics.app),
      // pay-svc writes log4j text in Beijing time, with multi-line stack traces.
      source("app-text", ["pay-svc/app.log*"], { type: "text", timezone: "Asia/Shanghai" }, topics.app, {
        multiline: { start: "^\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}", flushMs: 2000 },
      }),
      source("behavior", ["*/behavior.log*"], "json", topics.behavior),
      source("coin", ["*/coin.log*"], "json", topics.coin),
      source("device", ["*/device.log*"], "json", topics.device),
    ],
  };
}
