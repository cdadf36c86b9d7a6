// weir ship: the agent every service host runs to tail its logs into Kafka (docs/shipper.md).
//   weir ship --config ship.yaml              sources, formats, routes from a file; SIGHUP reloads it
//   weir ship --path '/var/log/gift/*.log' --format pino --topic logs.app --data-dir /var/lib/weir-ship
//   some-service | weir ship --stdin --topic logs.app --service some-service
//   weir ship --config ship.yaml --check      validate and print what would be shipped, then exit
import { resolve } from "node:path";
import { Command } from "commander";
import pino from "pino";
import { clientEndpoints } from "../../infra/stack/config.ts";
import { kafkaSecurityFromEnv } from "../../kafka/security.ts";
import { ShipAgent } from "../../shipper/agent.ts";
import { loadShipConfig, parseShipConfig, type ShipConfig, shipCatalog } from "../../shipper/config.ts";
import { createLineDecoder } from "../../shipper/formats/index.ts";
import { UsageError } from "../errors.ts";

interface ShipOptions {
  config?: string;
  path?: string[];
  stdin?: boolean;
  format: string;
  topic?: string;
  schema?: string;
  service?: string;
  multilineStart?: string;
  dataDir?: string;
  metricsPort?: string;
  channelMaxBytes?: string;
  fsync?: string;
  check?: boolean;
}

function quickConfig(o: ShipOptions): ShipConfig {
  if (!o.topic)
    throw new UsageError("--topic is required without --config", "name the Kafka topic, e.g. --topic logs.app");
  if (!o.path?.length && !o.stdin)
    throw new UsageError("nothing to ship", "give --path '<glob>' (repeatable), --stdin, or --config <file>");
  const event = {
    format: o.format,
    topic: o.topic,
    ...(o.service ? { service: o.service } : {}),
    ...(o.multilineStart ? { multiline: { start: o.multilineStart } } : {}),
  };
  const sources = [
    ...(o.path?.length ? [{ type: "file", name: "files", paths: o.path, ...event }] : []),
    ...(o.stdin ? [{ type: "stdin", name: "stdin", ...event }] : []),
  ];
  return parseShipConfig({
    dataDir: o.dataDir ?? "weir-ship",
    sources,
    ...(o.schema ? { topics: { [o.topic]: { schema: o.schema } } } : {}),
    ...(o.metricsPort !== undefined ? { metrics: { port: Number(o.metricsPort) } } : {}),
    ...(o.channelMaxBytes || o.fsync
      ? {
          channel: {
            ...(o.channelMaxBytes ? { maxBytes: o.channelMaxBytes } : {}),
            ...(o.fsync ? { fsync: o.fsync } : {}),
          },
        }
      : {}),
  });
}

function withOverrides(config: ShipConfig, o: ShipOptions): ShipConfig {
  return {
    ...config,
    ...(o.dataDir ? { dataDir: o.dataDir } : {}),
    ...(o.metricsPort !== undefined ? { metrics: { ...config.metrics, port: Number(o.metricsPort) } } : {}),
  };
}

function load(o: ShipOptions): ShipConfig {
  return o.config ? withOverrides(loadShipConfig(resolve(o.config)), o) : quickConfig(o);
}

/** What --check prints: each source, its format and where its lines go, after the decoder accepted it. */
function describe(config: ShipConfig): string[] {
  let catalog: ReturnType<typeof shipCatalog>;
  try {
    catalog = shipCatalog(config);
  } catch (e) {
    throw new UsageError((e as Error).message, "declare the topic under topics: with the schema its records have");
  }
  const out = [
    `data dir ${resolve(config.dataDir)}; channel ${config.channel.maxBytes} bytes, fsync ${config.channel.fsync}; DLQ ${config.dlq.topic}`,
  ];
  for (const s of config.sources) {
    let decoder: ReturnType<typeof createLineDecoder>;
    try {
      decoder = createLineDecoder(s, { catalog, host: config.host, dlqTopic: config.dlq.topic });
    } catch (e) {
      throw new UsageError(
        `source ${s.name}: ${(e as Error).message}`,
        "fix the source in the config (weir ship --check validates it)",
      );
    }
    const where = s.type === "file" ? s.paths.join(", ") : "stdin";
    out.push(
      `${s.name}: ${where} -> ${decoder.format} -> ${decoder.topics.join(", ")}${s.multiline ? " (multiline)" : ""}`,
    );
  }
  return out;
}

export function shipCommand(): Command {
  return new Command("ship")
    .description("tail log files (or stdin) into Kafka through a durable disk channel; never loses a line")
    .option("--config <file>", "the shipper's YAML config (docs/shipper.md); SIGHUP reloads it")
    .option("--path <glob...>", "quick form: files to tail (globs, ** included)")
    .option("--stdin", "quick form: read lines from standard input; exits once all of them are in Kafka")
    .option("--format <format>", "quick form: json, pino, logback, text, combined or raw", "json")
    .option("--topic <topic>", "quick form: the Kafka topic")
    .option("--schema <name>", "quick form: the topic's schema when schemas/topics.yaml does not list the topic")
    .option("--service <name>", "quick form: the service of lines that do not name one")
    .option("--multiline-start <regex>", "quick form: a line matching this starts an event; others continue it")
    .option("--data-dir <dir>", "checkpoints and the disk channel (quick form default: ./weir-ship)")
    .option("--metrics-port <port>", "serve /metrics and /health here (0: any free port)")
    .option("--channel-max-bytes <size>", "quick form: the disk channel's bound, e.g. 256MiB")
    .option("--fsync <policy>", "quick form: always, interval or never")
    .option("--check", "validate the configuration, print what would be shipped, and exit")
    .action(async (o: ShipOptions) => {
      const config = load(o);
      const summary = describe(config);
      if (o.check) {
        for (const line of summary) console.log(line);
        console.log("configuration OK");
        return;
      }
      const logger = pino({ name: "weir-ship", base: { host: config.host } });
      // Brokers named in the config: their security from the environment only, never the local stack's.
      const endpoints = config.kafka.brokers ? undefined : clientEndpoints();
      const agent = new ShipAgent(config, {
        brokers: endpoints?.kafkaBrokers ?? [],
        security: endpoints ? endpoints.kafkaSecurity : kafkaSecurityFromEnv(),
        logger,
      });
      await agent.start();
      const stop = (signal: string) => {
        logger.info({ signal }, "stopping: draining the channel into Kafka");
        agent.stop().catch(() => {});
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
      process.on("SIGHUP", () => {
        if (!o.config) {
          logger.warn("SIGHUP: there is no config file to reload (quick form)");
          return;
        }
        let next: ShipConfig;
        try {
          next = load(o);
          describe(next);
        } catch (e) {
          logger.error({ err: (e as Error).message }, "SIGHUP: the new config is invalid; keeping the running one");
          return;
        }
        agent.reload(next).catch((e: Error) => logger.error({ err: e.message }, "SIGHUP: reload failed"));
      });
      try {
        await agent.done;
        logger.info("stopped");
      } finally {
        // Stopped (drained and checkpointed, or failed keeping the channel): a socket a client
        // library left open must not keep the process, and a supervisor's restart, waiting.
        setTimeout(() => {
          logger.warn("a connection was still open 5 s after stopping; exiting anyway");
          process.exit(process.exitCode ?? 0);
        }, 5000).unref();
      }
    });
}
