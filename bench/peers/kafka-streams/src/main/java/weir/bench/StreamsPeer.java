package weir.bench;

import java.io.File;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TopologyConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.Stores;

/**
 * The Kafka Streams peer of weir's stream-runtime benchmark: per message key, 1-second tumbling
 * event-time windows (event time = the AccessLog's ts field, no grace) of count, sum of latencyUs
 * and a DDSketch (relative accuracy 0.01) of latencyUs, in an in-memory window store with a
 * changelog; each window emitted once, when it closes, to the output topic as a small JSON string.
 *
 * <p>Counts the input records it processes; when the count reaches --expect it prints one JSON line
 * to stdout and exits 0 (see README.md for the fields). Logs go to stderr.
 */
public final class StreamsPeer {
  private static final AtomicLong processed = new AtomicLong();
  private static final AtomicLong firstNanos = new AtomicLong();
  private static final AtomicLong firstCpuNanos = new AtomicLong();
  private static final AtomicLong lastNanos = new AtomicLong();
  private static final AtomicLong lastCpuNanos = new AtomicLong();
  private static final AtomicLong lastProgressNanos = new AtomicLong(System.nanoTime());
  private static final AtomicLong windowsEmitted = new AtomicLong();
  private static final AtomicLong windowsRecords = new AtomicLong();
  private static final CountDownLatch done = new CountDownLatch(1);
  private static final LongList emitLatencies = new LongList();

  private StreamsPeer() {}

  public static void main(String[] argv) throws Exception {
    Map<String, String> a = parseArgs(argv);
    System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", a.getOrDefault("log", "warn"));
    // sketches-java's protobuf classes predate protobuf 3.22; the data is our own, so no warning.
    System.setProperty("com.google.protobuf.use_unsafe_pre22_gencode", "true");

    String brokers = a.getOrDefault("brokers", "127.0.0.1:9092");
    String input = required(a, "input");
    String output = required(a, "output");
    String appId = required(a, "app-id");
    long expect = Long.parseLong(required(a, "expect"));
    Schema schema = new Schema.Parser().parse(new File(required(a, "schema")));
    int threads = Integer.parseInt(a.getOrDefault("threads", "1"));
    boolean latency = a.containsKey("latency");
    WindowAgg.SketchFormat format = WindowAgg.SketchFormat.valueOf(a.getOrDefault("sketch-format", "proto").toUpperCase());
    long retentionMs = Long.parseLong(a.getOrDefault("retention-ms", "60000"));
    long idleTimeoutMs = Long.parseLong(a.getOrDefault("idle-timeout-s", "120")) * 1000;
    boolean cleanup = !a.containsKey("no-cleanup");
    String emitInterval = a.get("emit-interval-ms");

    int tsPos = schema.getField("ts").pos();
    int latencyPos = schema.getField("latencyUs").pos();

    ensureOutputTopic(brokers, input, output);

    Path stateDir = Files.createTempDirectory("weir-ks-peer-");
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
    p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    // No global state here; set to quiet the 4.x warning about the 5.0 default (an internal config copy still logs it once).
    p.put(StreamsConfig.PROCESSING_EXCEPTION_HANDLER_GLOBAL_ENABLED_CONFIG, true);
    // Kafka Streams checks for closed windows at most once per this interval of wall-clock time
    // (internal config, default 1000 ms); only set when asked.
    if (emitInterval != null) {
      p.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION, Long.parseLong(emitInterval));
    }

    AccessLogSerde values = new AccessLogSerde(schema);
    TimestampExtractor eventTime = (ConsumerRecord<Object, Object> r, long partitionTime) ->
        r.value() instanceof GenericRecord g ? (Long) g.get(tsPos) : r.timestamp();

    StreamsBuilder b = new StreamsBuilder(new TopologyConfig(new StreamsConfig(p)));
    b.stream(input, Consumed.with(Serdes.String(), values).withTimestampExtractor(eventTime))
        .peek((k, v) -> countInput(expect))
        .groupByKey()
        .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofSeconds(1)))
        .emitStrategy(EmitStrategy.onWindowClose())
        .aggregate(
            WindowAgg::new,
            (key, rec, agg) -> agg.add((Long) rec.get(latencyPos)),
            Materialized.<String, WindowAgg>as(
                    // Retention must outlast the emit interval: windows are emitted by a range fetch
                    // at most once per emit interval, and an expired window is never emitted.
                    Stores.inMemoryWindowStore("access-1s", Duration.ofMillis(retentionMs), Duration.ofSeconds(1), false))
                .withKeySerde(Serdes.String())
                .withValueSerde(new WindowAgg.AggSerde(format)))
        .toStream()
        .map((wk, agg) -> {
          windowsEmitted.incrementAndGet();
          windowsRecords.addAndGet(agg.count);
          if (latency) emitLatencies.add(System.currentTimeMillis() - wk.window().end());
          return KeyValue.pair(wk.key(), toJson(wk.key(), wk.window().start(), agg));
        })
        .to(output, Produced.with(Serdes.String(), Serdes.String()));

    KafkaStreams streams = new KafkaStreams(b.build(p), p);
    streams.setUncaughtExceptionHandler(e -> {
      System.err.println("stream thread failed: " + e);
      e.printStackTrace();
      System.exit(3);
      return null;
    });
    // For a harness that must start producing only once the peer consumes (latency runs).
    streams.setStateListener((now, before) -> {
      if (now == KafkaStreams.State.RUNNING) System.err.println("weir-ks-peer: RUNNING");
    });
    long startNanos = System.nanoTime();
    streams.start();

    boolean reached;
    for (;;) {
      if (done.await(1, TimeUnit.SECONDS)) {
        reached = true;
        break;
      }
      if (System.nanoTime() - lastProgressNanos.get() > idleTimeoutMs * 1_000_000L) {
        reached = false;
        lastNanos.compareAndSet(0, lastProgressNanos.get());
        lastCpuNanos.compareAndSet(0, cpuNanos());
        break;
      }
    }

    long records = processed.get();
    long elapsedNanos = firstNanos.get() == 0 ? 0 : lastNanos.get() - firstNanos.get();
    StringBuilder j = new StringBuilder(256).append('{');
    j.append("\"records\":").append(records);
    j.append(",\"elapsedMs\":").append(elapsedNanos / 1_000_000);
    j.append(",\"recordsPerSec\":").append(elapsedNanos == 0 ? 0 : Math.round(records / (elapsedNanos / 1e9)));
    j.append(",\"cpuMs\":").append(cpuNanos() / 1_000_000);
    j.append(",\"cpuMsProcessing\":").append((lastCpuNanos.get() - firstCpuNanos.get()) / 1_000_000);
    j.append(",\"peakRssKiB\":").append(peakRssKiB());
    j.append(",\"windowsEmitted\":").append(windowsEmitted.get());
    j.append(",\"windowedRecordsEmitted\":").append(windowsRecords.get());
    j.append(",\"startupMs\":").append(firstNanos.get() == 0 ? -1 : (firstNanos.get() - startNanos) / 1_000_000);
    j.append(",\"threads\":").append(threads);
    j.append(",\"sketchFormat\":\"").append(format.name().toLowerCase()).append('"');
    if (latency) {
      long[] l = emitLatencies.sorted();
      j.append(",\"emitLatencyP50Ms\":").append(percentile(l, 0.50));
      j.append(",\"emitLatencyP99Ms\":").append(percentile(l, 0.99));
      j.append(",\"emitLatencyMaxMs\":").append(l.length == 0 ? -1 : l[l.length - 1]);
    }
    if (!reached) j.append(",\"error\":\"idle for ").append(idleTimeoutMs / 1000).append(" s before reaching --expect\"");
    j.append('}');
    System.out.println(j);
    System.out.flush();

    // Leave the group (Kafka Streams stays in it by default) so that the group can be deleted now.
    streams.close(
        CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
            .withTimeout(Duration.ofSeconds(10)));
    if (cleanup) {
      streams.cleanUp();
      deleteInternal(brokers, appId);
    }
    deleteRecursively(stateDir);
    System.exit(reached ? 0 : 2);
  }

  private static void countInput(long expect) {
    long now = System.nanoTime();
    long n = processed.incrementAndGet();
    if (n == 1) {
      firstNanos.set(now);
      firstCpuNanos.set(cpuNanos());
    }
    if ((n & 1023) == 0) lastProgressNanos.set(now);
    if (n == expect) {
      lastNanos.set(now);
      lastCpuNanos.set(cpuNanos());
      done.countDown();
    }
  }

  private static String toJson(String key, long start, WindowAgg agg) {
    StringBuilder s = new StringBuilder(128).append("{\"key\":\"");
    for (int i = 0; i < key.length(); i++) {
      char c = key.charAt(i);
      if (c == '"' || c == '\\') s.append('\\').append(c);
      else if (c < 0x20) s.append(String.format("\\u%04x", (int) c));
      else s.append(c);
    }
    s.append("\",\"start\":").append(start);
    s.append(",\"count\":").append(agg.count);
    s.append(",\"sum\":").append(agg.sum);
    s.append(",\"p50\":").append(Math.round(agg.sketch.getValueAtQuantile(0.50)));
    s.append(",\"p99\":").append(Math.round(agg.sketch.getValueAtQuantile(0.99)));
    return s.append('}').toString();
  }

  /** Creates the output topic (same partition count as the input) if it does not exist. */
  private static void ensureOutputTopic(String brokers, String input, String output) throws Exception {
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers))) {
      Set<String> names = admin.listTopics().names().get();
      if (!names.contains(input)) throw new IllegalArgumentException("input topic " + input + " does not exist");
      if (names.contains(output)) return;
      int partitions = admin.describeTopics(List.of(input)).allTopicNames().get().get(input).partitions().size();
      admin.createTopics(List.of(new NewTopic(output, partitions, (short) 1))).all().get();
    }
  }

  /** Deletes the application's consumer group and internal topics (changelog), keeping the output topic. */
  private static void deleteInternal(String brokers, String appId) {
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers))) {
      List<String> internal = admin.listTopics().names().get().stream()
          .filter(t -> t.startsWith(appId + "-") && (t.endsWith("-changelog") || t.endsWith("-repartition")))
          .collect(Collectors.toList());
      if (!internal.isEmpty()) admin.deleteTopics(internal).all().get(30, TimeUnit.SECONDS);
      admin.deleteConsumerGroups(List.of(appId)).all().get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      System.err.println("cleanup of " + appId + " incomplete: " + e);
    }
  }

  private static long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
  }

  private static long peakRssKiB() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    } catch (IOException | NumberFormatException e) {
      // not Linux
    }
    return -1;
  }

  private static long percentile(long[] sorted, double q) {
    if (sorted.length == 0) return -1;
    int i = (int) Math.ceil(q * sorted.length) - 1;
    return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
  }

  private static void deleteRecursively(Path dir) {
    try (Stream<Path> s = Files.walk(dir)) {
      s.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    } catch (IOException e) {
      // best effort
    }
  }

  private static Map<String, String> parseArgs(String[] argv) {
    Map<String, String> m = new HashMap<>();
    for (int i = 0; i < argv.length; i++) {
      String k = argv[i];
      if (!k.startsWith("--")) throw new IllegalArgumentException("unexpected argument " + k);
      if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) m.put(k.substring(2), argv[++i]);
      else m.put(k.substring(2), "true");
    }
    return m;
  }

  private static String required(Map<String, String> a, String name) {
    String v = a.get(name);
    if (v == null) {
      System.err.println(
          "usage: java -jar kafka-streams-peer.jar --brokers B --input T --output T2 --app-id ID --expect N"
              + " --schema AccessLog.avsc [--threads 1] [--latency] [--sketch-format proto|native]"
              + " [--retention-ms 60000] [--emit-interval-ms MS] [--idle-timeout-s 120] [--no-cleanup] [--log warn]");
      System.exit(64);
    }
    return v;
  }

  /** A growable list of longs, safe for several stream threads. */
  private static final class LongList {
    private long[] a = new long[1024];
    private int n;

    synchronized void add(long v) {
      if (n == a.length) a = Arrays.copyOf(a, n * 2);
      a[n++] = v;
    }

    synchronized long[] sorted() {
      long[] c = Arrays.copyOf(a, n);
      Arrays.sort(c);
      return c;
    }
  }
}
