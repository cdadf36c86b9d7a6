// Apache Kafka in KRaft mode, one process that is both broker and controller, from Maven Central jars.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { stringify } from "yaml";
import { PROJECT_ROOT, type StackConfig } from "./config.ts";
import { makeOwnedDirs, maven, run } from "./prerequisites.ts";
import { type Health, installOnce, type ServiceContext, type StackService } from "./service.ts";
import type { LaunchSpec } from "./service-process.ts";
import { KAFKA_VERSION, LOG4J_VERSION, SLF4J_VERSION } from "./versions.ts";

export class KafkaService implements StackService {
  readonly name = "kafka" as const;
  readonly readySeconds = 90;
  private readonly home: string;
  private readonly libs: string;

  constructor(private readonly cfg: StackConfig) {
    this.home = cfg.paths.service("kafka");
    this.libs = join(cfg.paths.downloads, `kafka-${KAFKA_VERSION}`, "libs");
  }

  ports() {
    return { broker: this.cfg.kafka.port, controller: this.cfg.kafka.controllerPort };
  }

  endpoint() {
    return `127.0.0.1:${this.cfg.kafka.port}`;
  }

  serverLog() {
    return join(this.home, "logs", "server.log");
  }

  async install(ctx: ServiceContext): Promise<string> {
    const fresh = await installOnce(join(this.cfg.paths.downloads, `kafka-${KAFKA_VERSION}`), async (tmp) => {
      ctx.log(`kafka: fetching Kafka ${KAFKA_VERSION} jars (Maven Central, cached in ~/.m2)`);
      await maven(
        [
          "-f",
          join(PROJECT_ROOT, "infra", "kafka", "pom.xml"),
          "dependency:copy-dependencies",
          `-Dkafka.version=${KAFKA_VERSION}`,
          `-Dlog4j.version=${LOG4J_VERSION}`,
          `-Dslf4j.version=${SLF4J_VERSION}`,
          "-DincludeScope=runtime",
          `-DoutputDirectory=${join(tmp, "libs")}`,
        ],
        PROJECT_ROOT,
      );
    });
    if (fresh) ctx.log(`kafka: installed ${KAFKA_VERSION}`);
    return KAFKA_VERSION;
  }

  async launch(ctx: ServiceContext): Promise<LaunchSpec> {
    const config = join(this.home, "config");
    const data = join(this.home, "data");
    const logs = join(this.home, "logs");
    makeOwnedDirs(ctx.runAs, config, data, logs);
    const properties = join(config, "server.properties");
    const log4j = join(config, "log4j2.yaml");
    writeFileSync(properties, serverProperties(this.cfg, data));
    writeFileSync(log4j, log4jConfig(logs));
    const classpath = `${this.libs}/*`;
    const logging = `-Dlog4j2.configurationFile=${log4j}`;

    // KRaft storage is formatted once, with a cluster id kept beside it.
    if (!existsSync(join(data, "meta.properties"))) {
      const idFile = join(this.home, "cluster.id");
      const clusterId = existsSync(idFile) ? readFileSync(idFile, "utf8").trim() : newClusterId();
      writeFileSync(idFile, `${clusterId}\n`);
      ctx.log(`kafka: formatting KRaft storage (cluster ${clusterId})`);
      await run(
        ctx.java.bin,
        [
          "-cp",
          classpath,
          logging,
          "kafka.tools.StorageTool",
          "format",
          "-t",
          clusterId,
          "-c",
          properties,
          "--ignore-formatted",
        ],
        {
          uid: ctx.runAs.uid,
          gid: ctx.runAs.gid,
        },
      );
    }
    return {
      command: ctx.java.bin,
      args: [
        "-Xms256m",
        `-Xmx${this.cfg.kafka.heap}`,
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
        logging,
        `-Dkafka.logs.dir=${logs}`,
        "-cp",
        classpath,
        "kafka.Kafka",
        properties,
      ],
      cwd: this.home,
      env: { PATH: process.env.PATH, LANG: "C.UTF-8" },
      outputFile: join(logs, "stdout.log"),
      uid: ctx.runAs.uid,
      gid: ctx.runAs.gid,
    };
  }

  async probe(): Promise<Health> {
    const kafka = new Kafka({
      clientId: "weir-stack",
      brokers: [this.endpoint()],
      connectionTimeout: 1000,
      requestTimeout: 3000,
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      return {
        ok: cluster.brokers.length > 0,
        detail: `cluster ${cluster.clusterId}, ${cluster.brokers.length} broker`,
        version: KAFKA_VERSION,
      };
    } catch (e) {
      return { ok: false, detail: (e as Error).message };
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }
}

function serverProperties(cfg: StackConfig, data: string): string {
  const { port, controllerPort } = cfg.kafka;
  const props: Record<string, string | number | boolean> = {
    "process.roles": "broker,controller",
    "node.id": 1,
    "controller.quorum.voters": `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    "advertised.listeners": `PLAINTEXT://127.0.0.1:${port}`,
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "log.dirs": data,
    // Topics come from the topic catalog (`weir topics apply`), never from a typo in a producer.
    "auto.create.topics.enable": false,
    "num.partitions": 1,
    "default.replication.factor": 1,
    "min.insync.replicas": 1,
    "offsets.topic.replication.factor": 1,
    "offsets.topic.num.partitions": 12,
    "transaction.state.log.replication.factor": 1,
    "transaction.state.log.min.isr": 1,
    "transaction.state.log.num.partitions": 12,
    "share.coordinator.state.topic.replication.factor": 1,
    "share.coordinator.state.topic.min.isr": 1,
    // A single local broker: start a new group's first rebalance at once.
    "group.initial.rebalance.delay.ms": 0,
    "log.retention.hours": 168,
    "log.segment.bytes": 256 * 1024 * 1024,
    "log.cleaner.dedupe.buffer.size": 32 * 1024 * 1024,
    "num.network.threads": 3,
    "num.io.threads": 4,
  };
  return `# written by weir stack up; edit infra/stack/kafka.ts instead\n${Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n")}\n`;
}

function log4jConfig(logs: string): string {
  return stringify({
    Configuration: {
      Appenders: {
        RollingFile: {
          name: "FILE",
          fileName: join(logs, "server.log"),
          filePattern: join(logs, "server.log.%i"),
          PatternLayout: { pattern: "[%d] %p %m (%c)%n" },
          Policies: { SizeBasedTriggeringPolicy: { size: "20 MB" } },
          DefaultRolloverStrategy: { max: 5 },
        },
      },
      Loggers: {
        Root: { level: "INFO", AppenderRef: [{ ref: "FILE" }] },
        Logger: [
          { name: "kafka.request.logger", level: "WARN" },
          { name: "state.change.logger", level: "WARN" },
        ],
      },
    },
  });
}

// Kafka's own random-uuid: 16 random bytes, base64url without padding, never starting with '-'
// (the CLI would read it as an option).
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}
