// The shippers the benchmark runs side by side: weir ship, Apache Flume 1.11.0 (bench/peers/flume)
// and rsyslog with omkafka (bench/peers/rsyslog). Each says how to make it ready on a new machine
// (build, install), how to start it on one run's file, topic and state folder, what it delivers, and
// what durability it gets, for the report.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";

export interface RunSetup {
  /** The backlog file to ship. */
  file: string;
  topic: string;
  /** A fresh, empty folder for the shipper's state (positions, channel, queue). */
  state: string;
  brokers: string[];
  /** A free port for a peer that serves metrics. */
  metricsPort: number;
}

export interface StartCommand {
  cmd: string;
  args: string[];
  env: Record<string, string>;
}

export interface ShipperPeer {
  name: string;
  /** What the topic's messages are: the lines as read, or AccessLog records (Avro single-object encoding). */
  output: "raw" | "AccessLog";
  /**
   * How the benchmark sees messages arrive: the topic's end offsets, or (weir, whose Kafka transactions
   * leave commit markers that take offsets too) its `weir_ship_events_sent_total` for the topic.
   */
  progress: "offsets" | "metrics";
  /** Builds or installs what is missing; returns the versions to report. */
  prepare(): string;
  command(run: RunSetup): StartCommand;
  /** The durability the configuration gives, as a Markdown paragraph for the report. */
  durability: string;
  /** Where its configuration lives, for the report. */
  config: string;
}

const FLUME_DIR = join(PROJECT_ROOT, "bench/peers/flume");
const FLUME_LIB = join(FLUME_DIR, "target/lib");
const RSYSLOG_DIR = join(PROJECT_ROOT, "bench/peers/rsyslog");

function run(cmd: string, args: string[], what: string, hint: string): string {
  const r = spawnSync(cmd, args, { cwd: PROJECT_ROOT, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0) {
    const out = `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n").slice(-20).join("\n");
    throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status}`}):\n${out}\nHint: ${hint}`);
  }
  return r.stdout;
}

/** The version of the first jar in Flume's lib folder whose name starts with `artifact-`. */
function jarVersion(artifact: string): string {
  const jar = readdirSync(FLUME_LIB).find(
    (f) => f.startsWith(`${artifact}-`) && /^\d/.test(f.slice(artifact.length + 1)),
  );
  return jar ? jar.slice(artifact.length + 1, -".jar".length) : "?";
}

export function javaVersion(): string {
  const r = spawnSync("java", ["-version"], { encoding: "utf8" });
  return (r.stderr || r.stdout || "").split("\n")[0]?.trim() ?? "java not found";
}

/**
 * weir ship, the quick form (one file, one topic, the AccessLog schema), with its disk channel's fsync
 * policy: "always" is the durability of Flume's file channel, "interval" weir's default.
 */
export function weirPeer(fsync: "always" | "interval"): ShipperPeer {
  return {
    name: fsync === "always" ? "weir" : "weir-interval",
    output: "AccessLog",
    progress: "metrics",
    prepare() {
      const help = spawnSync(process.execPath, ["cli/weir.mjs", "ship", "--help"], {
        cwd: PROJECT_ROOT,
        encoding: "utf8",
      });
      if (help.status !== 0 || !/--path/.test(help.stdout) || !/--schema\b/.test(help.stdout)) {
        throw new Error(
          "`weir ship` (quick form with --path and --schema) is not available: node cli/weir.mjs ship --help failed.\n" +
            "Hint: run the peers alone with --peers flume,rsyslog",
        );
      }
      const git = (...args: string[]) => execFileSync("git", args, { cwd: PROJECT_ROOT, encoding: "utf8" }).trim();
      const dirty = git("status", "--porcelain", "--", "shipper", "cli", "schemas", "stream").length > 0;
      return `weir ship at ${git("rev-parse", "--short", "HEAD")}${dirty ? " with uncommitted changes to shipper/, cli/, schemas/ or stream/" : ""}, node ${process.version}`;
    },
    command(r) {
      return {
        cmd: process.execPath,
        args: [
          "cli/weir.mjs",
          "ship",
          "--path",
          r.file,
          "--format",
          "json",
          "--topic",
          r.topic,
          // The topic is not in schemas/topics.yaml: name its schema, so json lines become AccessLog records.
          "--schema",
          "AccessLog",
          "--data-dir",
          r.state,
          "--metrics-port",
          String(r.metricsPort),
          "--fsync",
          fsync,
        ],
        env: { WEIR_KAFKA_BROKERS: r.brokers.join(",") },
      };
    },
    durability:
      (fsync === "always"
        ? "`--fsync always`: the file source hands batches of up to 1000 lines to the format, which turns each into " +
          "an AccessLog record; the disk channel appends them and resolves the put only after an fdatasync covers " +
          "it (puts waiting together share one fdatasync), so every line the source has passed on is on disk, as in " +
          "Flume's file channel. "
        : "`--fsync interval` (weir's default): as `weir`, but the disk channel is fdatasynced every 1 s instead " +
          "of before each put resolves; a power cut can lose the channel's last second, whose lines are then read " +
          "again from the file, since checkpoints have not moved past them. ") +
      "The Kafka sink takes batches of up to 4000 records from the channel and sends each as one Kafka transaction " +
      "(acks=all, idempotent, lz4); only after the commit does the channel commit and the file's checkpoint move " +
      "(checkpoints written atomically every 1 s). A read_committed consumer sees every line once, even after a crash.",
    config:
      "`node cli/weir.mjs ship --path <file> --format json --topic <topic> --schema AccessLog --data-dir <dir> " +
      `--metrics-port <port> --fsync ${fsync}\` (quick form; its other settings are the defaults)`,
  };
}

/** Apache Flume 1.11.0: TAILDIR source -> file channel -> Kafka sink (bench/peers/flume). */
export function flumePeer(heap: string, batch: number): ShipperPeer {
  if (batch > 10_000) throw new Error("--flume-batch must be at most 10000 (the file channel's transactionCapacity)");
  return {
    name: "flume",
    output: "raw",
    progress: "offsets",
    prepare() {
      if (!existsSync(join(FLUME_LIB, "flume-ng-node-1.11.0.jar"))) {
        console.log("building the Flume peer: mvn -q -f bench/peers/flume/pom.xml package (jars from Maven Central)");
        run(
          "mvn",
          ["-q", "-f", join(FLUME_DIR, "pom.xml"), "package"],
          "building the Flume peer",
          "needs Maven and access to Maven Central; see bench/peers/flume/README.md",
        );
      }
      return `Apache Flume ${jarVersion("flume-ng-node")} (kafka-clients ${jarVersion("kafka-clients")}, log4j ${jarVersion("log4j-core")}), ${javaVersion()}, -Xmx${heap}`;
    },
    command(r) {
      return {
        cmd: "java",
        args: [
          `-Xmx${heap}`,
          `-Dlog4j.configurationFile=${join(FLUME_DIR, "log4j2.xml")}`,
          "-cp",
          `${FLUME_LIB}/*`,
          "org.apache.flume.node.Application",
          "-n",
          "agent",
          "-f",
          join(FLUME_DIR, "agent.properties"),
          "--no-reload-conf",
        ],
        env: {
          BENCH_FILE: r.file,
          BENCH_STATE: r.state,
          BENCH_TOPIC: r.topic,
          BENCH_BROKERS: r.brokers.join(","),
          BENCH_BATCH: String(batch),
        },
      };
    },
    durability:
      `TAILDIR reads ${batch} lines per put transaction into the file channel, which appends them to its log and ` +
      "fsyncs before the put commits (`fsyncPerTransaction = true`, the default); " +
      `the Kafka sink takes ${batch} events, ` +
      "sends them all (acks=all, idempotent, lz4), flushes the producer, waits for every acknowledgement, then " +
      "commits the take (a second fsync). So every line is on disk before the source moves on, and leaves the " +
      "channel only once Kafka has it. The position file is rewritten every 3 s without fsync: after a crash the " +
      "source re-reads up to 3 s of lines the channel already holds (duplicates, never loss). The channel's queue " +
      "checkpoint is written every 30 s and on close; a crash replays the log since the last checkpoint.",
    config: `\`bench/peers/flume/agent.properties\` (\`BENCH_BATCH=${batch}\`), \`bench/peers/flume/log4j2.xml\``,
  };
}

/** The rsyslog action queue configurations the benchmark knows (bench/peers/rsyslog/rsyslog.conf). */
export type RsyslogQueue = "disk-assisted" | "disk" | "disk-nosync";

const RSYSLOG_QUEUES: Record<RsyslogQueue, { name: string; type: string; sync: string; durability: string }> = {
  "disk-assisted": {
    name: "rsyslog",
    type: "LinkedList",
    sync: "on",
    durability:
      "imfile hands batches of up to 1024 lines to a disk-assisted action queue (LinkedList + `queue.filename`): " +
      "in memory, spilled to disk files (fsynced, `queue.syncQueueFiles`) only past its high watermark " +
      "(90% of 100,000 messages), and written to disk at shutdown (`queue.saveOnShutdown`); imfile writes its " +
      "read offset after every batch handed over. omkafka hands each message to librdkafka's in-memory queue " +
      "(acks=all, idempotent, lz4), and the action queue forgets it once omkafka has accepted it, before Kafka " +
      "acknowledges. A crash (SIGKILL, power cut) loses what sits in the in-memory queue and in librdkafka: up " +
      "to ~200,000 lines whose offset imfile has already saved. A clean stop loses nothing: the queue is saved " +
      "and omkafka waits up to `closeTimeout` (60 s) for librdkafka's deliveries.",
  },
  disk: {
    name: "rsyslog-disk",
    type: "Disk",
    sync: "on",
    durability:
      "as `rsyslog`, but the action queue is a pure disk queue with `queue.syncQueueFiles` on: every message " +
      "is appended to the queue files with an fdatasync (about one fdatasync per message, measured with " +
      "strace), so every line imfile has handed over is on disk. What omkafka has passed to librdkafka is " +
      "still only in memory until Kafka acknowledges it (lost in a crash, waited for on a clean stop).",
  },
  "disk-nosync": {
    name: "rsyslog-disk-nosync",
    type: "Disk",
    sync: "off",
    durability:
      "as `rsyslog-disk`, without `queue.syncQueueFiles`: every message is written to the queue files but " +
      "left to the page cache, so the queue survives a crash of rsyslogd (SIGKILL) but not of the machine. " +
      "What omkafka has passed to librdkafka is only in memory until Kafka acknowledges it.",
  },
};

/** rsyslog with imfile and omkafka (bench/peers/rsyslog), with one of its action queue configurations. */
export function rsyslogPeer(queue: RsyslogQueue): ShipperPeer {
  const q = RSYSLOG_QUEUES[queue];
  let rsyslogd = "/usr/sbin/rsyslogd";
  return {
    name: q.name,
    output: "raw",
    progress: "offsets",
    prepare() {
      const out = run(
        "bash",
        [join(RSYSLOG_DIR, "install.sh")],
        "installing rsyslog and rsyslog-kafka",
        "run bash bench/peers/rsyslog/install.sh as root (it uses apt-get)",
      );
      const kv = new Map(
        out
          .trim()
          .split("\n")
          .map((l) => l.split("=", 2) as [string, string]),
      );
      rsyslogd = kv.get("rsyslogd") ?? rsyslogd;
      return `rsyslog ${kv.get("version")} with omkafka (librdkafka ${kv.get("librdkafka")}), Debian packages`;
    },
    command(r) {
      return {
        cmd: rsyslogd,
        args: ["-n", "-f", join(RSYSLOG_DIR, "rsyslog.conf"), "-i", join(r.state, "rsyslogd.pid")],
        env: {
          BENCH_FILE: r.file,
          BENCH_STATE: r.state,
          BENCH_TOPIC: r.topic,
          BENCH_BROKERS: r.brokers.join(","),
          BENCH_QUEUE: q.type,
          BENCH_QUEUE_SYNC: q.sync,
        },
      };
    },
    durability: q.durability,
    config: `\`bench/peers/rsyslog/rsyslog.conf\` (\`BENCH_QUEUE=${q.type}\`, \`BENCH_QUEUE_SYNC=${q.sync}\`)`,
  };
}
