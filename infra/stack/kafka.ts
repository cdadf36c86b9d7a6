// Apache Kafka in KRaft mode from Maven Central jars: each node one process that is both broker and
// controller. One node is the default stack; `kafka.brokers: 3` makes a cluster of three such nodes
// on this machine, each with its own ports and folder (kafka/, kafka-2/, kafka-3/), one controller
// quorum, and replicated internal topics (RF 3, min.insync.replicas 2).
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { stringify } from "yaml";
import { kafkajsSecurity } from "../../kafka/security.ts";
import { kafkaNodes, PROJECT_ROOT, type StackConfig } from "./config.ts";
import { makeOwnedDirs, maven, run, StackError } from "./prerequisites.ts";
import { KAFKA_BROKER_USER, KAFKA_CLIENT_USER, readSecret, stackKafkaSecurity, tlsDir } from "./security.ts";
import { type Health, installOnce, type ServiceContext, type ServiceName, type StackService } from "./service.ts";
import type { LaunchSpec } from "./service-process.ts";
import { KAFKA_VERSION, LOG4J_VERSION, SLF4J_VERSION } from "./versions.ts";

export interface KafkaNode {
  id: number;
  port: number;
  controllerPort: number;
}

/** The stack's Kafka nodes as services: `kafka` alone, or `kafka`, `kafka-2`, ... for a cluster. */
export function kafkaServices(cfg: StackConfig): KafkaService[] {
  return kafkaNodes(cfg).map((node) => new KafkaService(cfg, node));
}

export class KafkaService implements StackService {
  readonly name: ServiceName;
  readonly readySeconds = 90;
  private readonly home: string;
  private readonly libs: string;
  private readonly nodes: KafkaNode[];

  constructor(
    private readonly cfg: StackConfig,
    readonly node: KafkaNode = { id: 1, port: cfg.kafka.port, controllerPort: cfg.kafka.controllerPort },
  ) {
    this.name = node.id === 1 ? "kafka" : `kafka-${node.id}`;
    this.home = cfg.paths.service(this.name);
    this.libs = join(cfg.paths.downloads, `kafka-${KAFKA_VERSION}`, "libs");
    this.nodes = kafkaNodes(cfg);
  }

  ports() {
    return { broker: this.node.port, controller: this.node.controllerPort };
  }

  endpoint() {
    return `127.0.0.1:${this.node.port}`;
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
    // Every node of a cluster is formatted with one cluster id, kept in the first node's folder. Taken
    // before the first await: the nodes are launched side by side, and the first to ask writes it.
    const clusterId = this.clusterId();
    makeOwnedDirs(ctx.runAs, config, data, logs);
    const quorum = this.quorum();
    const quorumFile = join(this.home, "quorum");
    const formatted = existsSync(join(data, "meta.properties"));
    if (formatted && existsSync(quorumFile) && readFileSync(quorumFile, "utf8").trim() !== quorum) {
      throw new StackError(
        `${this.name}: its data was formatted for the controller quorum ${readFileSync(quorumFile, "utf8").trim()}, and this stack is configured for ${quorum} (another kafka.brokers or other ports)`,
        `go back to the old kafka settings, or delete this stack's data and start over: weir stack reset (in ${this.cfg.paths.root})`,
      );
    }
    const properties = join(config, "server.properties");
    const log4j = join(config, "log4j2.yaml");
    const security = this.cfg.security
      ? {
          keystore: join(tlsDir(this.cfg), "server-keystore.pem"),
          ca: join(tlsDir(this.cfg), "ca.pem"),
          brokerPassword: readSecret(this.cfg, "kafka-broker"),
        }
      : undefined;
    // The broker's own password is in it (its JAAS line): its user reads it, nobody else.
    writeFileSync(properties, serverProperties(this.node, this.nodes, data, security), { mode: 0o600 });
    chmodSync(properties, 0o600);
    writeFileSync(log4j, log4jConfig(logs));
    makeOwnedDirs(ctx.runAs, config);
    const classpath = `${this.libs}/*`;
    const logging = `-Dlog4j2.configurationFile=${log4j}`;

    const scram = this.cfg.security
      ? [
          { name: KAFKA_BROKER_USER, password: readSecret(this.cfg, "kafka-broker") },
          { name: KAFKA_CLIENT_USER, password: readSecret(this.cfg, "kafka-weir") },
        ]
      : [];
    // KRaft storage is formatted once.
    if (!formatted) {
      ctx.log(
        `${this.name}: formatting KRaft storage (cluster ${clusterId}, node ${this.node.id} of ${this.nodes.length})`,
      );
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
          // The SCRAM users, in the cluster's metadata from its first record (KRaft has no other way
          // to give the brokers their own credential before they can talk to each other).
          ...scramUsers(scram),
        ],
        {
          uid: ctx.runAs.uid,
          gid: ctx.runAs.gid,
          secrets: scram.map((u) => u.password),
        },
      );
      writeFileSync(quorumFile, `${quorum}\n`);
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

  /** The controller quorum this node belongs to, as controller.quorum.voters writes it. */
  private quorum(): string {
    return this.nodes.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(",");
  }

  private clusterId(): string {
    const idFile = join(this.cfg.paths.service("kafka"), "cluster.id");
    if (existsSync(idFile)) return readFileSync(idFile, "utf8").trim();
    const id = newClusterId();
    mkdirSync(dirname(idFile), { recursive: true, mode: 0o755 });
    writeFileSync(idFile, `${id}\n`);
    return id;
  }

  /** Healthy when this node answers and the cluster lists it among its live brokers. */
  async probe(): Promise<Health> {
    const kafka = new Kafka({
      clientId: "weir-stack",
      brokers: [this.endpoint()],
      ...(this.cfg.security ? kafkajsSecurity(stackKafkaSecurity(this.cfg)) : {}),
      connectionTimeout: 1000,
      requestTimeout: 3000,
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      const live = cluster.brokers.length;
      const listed = cluster.brokers.some((b) => b.nodeId === this.node.id);
      const of =
        this.nodes.length > 1 ? `node ${this.node.id}, ${live} of ${this.nodes.length} brokers live` : `${live} broker`;
      return {
        ok: listed,
        detail: `cluster ${cluster.clusterId}, ${of}${listed ? "" : ", this node not registered yet"}`,
        version: KAFKA_VERSION,
      };
    } catch (e) {
      return { ok: false, detail: (e as Error).message };
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }
}

/** TLS material and the broker's own SCRAM password, for a broker of a stack with `security` on. */
export interface BrokerSecurity {
  keystore: string;
  ca: string;
  brokerPassword: string;
}

function scramUsers(users: Array<{ name: string; password: string }>): string[] {
  return users.flatMap((u) => ["--add-scram", `SCRAM-SHA-512=[name=${u.name},password=${u.password}]`]);
}

/**
 * A node's server.properties. With `security`, clients and brokers speak SASL_SSL (SCRAM-SHA-512 over
 * TLS) on the broker port; the KRaft controller listener stays plaintext on loopback.
 */
export function serverProperties(node: KafkaNode, nodes: KafkaNode[], data: string, security?: BrokerSecurity): string {
  const { port, controllerPort } = node;
  const client = security ? "SASL_SSL" : "PLAINTEXT";
  // A cluster replicates what it keeps: a broker may die without a write acknowledged by acks=all
  // being lost (two copies in sync), and the group and transaction state survive it.
  const replicas = Math.min(3, nodes.length);
  const minIsr = replicas > 1 ? 2 : 1;
  const props: Record<string, string | number | boolean> = {
    "process.roles": "broker,controller",
    "node.id": node.id,
    "controller.quorum.voters": nodes.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(","),
    listeners: `${client}://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    "advertised.listeners": `${client}://127.0.0.1:${port}`,
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": client,
    "listener.security.protocol.map": `${client}:${client},CONTROLLER:PLAINTEXT`,
    ...(security
      ? {
          "sasl.enabled.mechanisms": "SCRAM-SHA-512",
          "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
          "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": `org.apache.kafka.common.security.scram.ScramLoginModule required username="${KAFKA_BROKER_USER}" password="${security.brokerPassword}";`,
          "ssl.keystore.type": "PEM",
          "ssl.keystore.location": security.keystore,
          "ssl.truststore.type": "PEM",
          "ssl.truststore.location": security.ca,
          "ssl.endpoint.identification.algorithm": "https",
          "ssl.client.auth": "none",
        }
      : {}),
    "log.dirs": data,
    // Topics come from the topic catalog (`weir topics apply`), never from a typo in a producer.
    "auto.create.topics.enable": false,
    "num.partitions": 1,
    "default.replication.factor": replicas,
    "min.insync.replicas": minIsr,
    "offsets.topic.replication.factor": replicas,
    "offsets.topic.num.partitions": 12,
    "transaction.state.log.replication.factor": replicas,
    "transaction.state.log.min.isr": minIsr,
    "transaction.state.log.num.partitions": 12,
    "share.coordinator.state.topic.replication.factor": replicas,
    "share.coordinator.state.topic.min.isr": minIsr,
    // Local brokers: start a new group's first rebalance at once.
    "group.initial.rebalance.delay.ms": 0,
    // A node that comes back takes its partitions' leadership back (the default, said for the cluster).
    "auto.leader.rebalance.enable": true,
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
