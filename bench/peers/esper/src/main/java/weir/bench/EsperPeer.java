package weir.bench;

import com.espertech.esper.common.client.EPCompiled;
import com.espertech.esper.common.client.EventBean;
import com.espertech.esper.common.client.configuration.Configuration;
import com.espertech.esper.compiler.client.CompilerArguments;
import com.espertech.esper.compiler.client.EPCompilerProvider;
import com.espertech.esper.runtime.client.EPDeployment;
import com.espertech.esper.runtime.client.EPEventService;
import com.espertech.esper.runtime.client.EPRuntime;
import com.espertech.esper.runtime.client.EPRuntimeProvider;
import com.espertech.esper.runtime.client.EPStatement;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The Esper peer of weir's fraud benchmark: the same velocity, distinct-count and sequence rules as
 * EPL statements over the same events (a JSON-lines file weir's benchmark writes), in event time
 * (the runtime's clock advanced to each event's timestamp, no internal timer), with weir's cool-down
 * per (rule, entity) applied to what the statements output, so both sides' signals can be compared.
 *
 * <pre>java -Xms1g -Xmx1g -jar esper-peer.jar events.jsonl rules.tsv runs signals.tsv</pre>
 *
 * rules.tsv: rule id, cool-down in ms, EPL (one statement selecting `entity` and `ts`). Run 0 is the
 * warm-up; every run gets a fresh runtime with the statements deployed before its clock starts; the
 * CPU time is the process's (every thread: the JIT and the collector too), as weir's is.
 */
public final class EsperPeer {
  public static final class Behavior {
    private final long ts;
    private final String type;
    private final Long uid;
    private final String deviceId;

    public Behavior(long ts, String type, Long uid, String deviceId) {
      this.ts = ts;
      this.type = type;
      this.uid = uid;
      this.deviceId = deviceId;
    }

    public long getTs() { return ts; }
    public String getType() { return type; }
    public Long getUid() { return uid; }
    public String getDeviceId() { return deviceId; }
  }

  public static final class Coin {
    private final long ts;
    private final String type;
    private final Long uid;
    private final Long amount;
    private final Long counterpartUid;

    public Coin(long ts, String type, Long uid, Long amount, Long counterpartUid) {
      this.ts = ts;
      this.type = type;
      this.uid = uid;
      this.amount = amount;
      this.counterpartUid = counterpartUid;
    }

    public long getTs() { return ts; }
    public String getType() { return type; }
    public Long getUid() { return uid; }
    public Long getAmount() { return amount; }
    public Long getCounterpartUid() { return counterpartUid; }
  }

  record Rule(String id, long cooldownMs, String epl) {}

  record Signal(String rule, String entity, long ts) {}

  public static void main(String[] args) throws Exception {
    Path eventsFile = Path.of(args[0]);
    Path rulesFile = Path.of(args[1]);
    int runs = Integer.parseInt(args[2]);
    Path signalsFile = Path.of(args[3]);

    ObjectMapper json = new ObjectMapper();
    List<Object> events = new ArrayList<>();
    List<Long> times = new ArrayList<>();
    try (BufferedReader in = Files.newBufferedReader(eventsFile, StandardCharsets.UTF_8)) {
      for (String line; (line = in.readLine()) != null; ) {
        if (line.isEmpty()) continue;
        JsonNode n = json.readTree(line);
        JsonNode e = n.get("event");
        long ts = e.get("ts").asLong();
        String stream = n.get("stream").asText();
        if (stream.equals("behavior")) {
          events.add(new Behavior(ts, text(e, "type"), num(e, "uid"), text(e, "deviceId")));
        } else if (stream.equals("coin")) {
          events.add(new Coin(ts, text(e, "type"), num(e, "uid"), num(e, "amount"), num(e, "counterpartUid")));
        } else continue;
        times.add(ts);
      }
    }
    List<Rule> rules = new ArrayList<>();
    for (String line : Files.readAllLines(rulesFile, StandardCharsets.UTF_8)) {
      if (line.isEmpty()) continue;
      String[] f = line.split("\t", 3);
      rules.add(new Rule(f[0], Long.parseLong(f[1]), f[2]));
    }

    Configuration config = new Configuration();
    config.getCommon().addEventType("Behavior", Behavior.class);
    config.getCommon().addEventType("Coin", Coin.class);
    config.getRuntime().getThreading().setInternalTimerEnabled(false);
    StringBuilder module = new StringBuilder();
    for (Rule r : rules) module.append("@name('").append(r.id()).append("') ").append(r.epl()).append(";\n");
    EPCompiled compiled = EPCompilerProvider.getCompiler().compile(module.toString(), new CompilerArguments(config));

    com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    long[] eventTimes = times.stream().mapToLong(Long::longValue).toArray();
    Object[] eventArray = events.toArray();
    Map<String, Long> cooldowns = new HashMap<>();
    for (Rule r : rules) cooldowns.put(r.id(), r.cooldownMs());

    for (int run = 0; run <= runs; run++) {
      EPRuntime runtime = EPRuntimeProvider.getRuntime("fraud-peer-" + run, config);
      runtime.initialize();
      EPEventService service = runtime.getEventService();
      service.advanceTime(eventTimes.length > 0 ? eventTimes[0] : 0);
      EPDeployment deployment = runtime.getDeploymentService().deploy(compiled);
      List<Signal> signals = new ArrayList<>();
      Map<String, Long> until = new HashMap<>();
      for (EPStatement st : deployment.getStatements()) {
        String rule = st.getName();
        long cooldown = cooldowns.get(rule);
        st.addListener((newEvents, oldEvents, statement, rt) -> {
          if (newEvents == null) return;
          for (EventBean b : newEvents) {
            String entity = String.valueOf(b.get("entity"));
            long ts = ((Number) b.get("ts")).longValue();
            String key = rule + "|" + entity;
            Long u = until.get(key);
            if (u != null && ts < u) continue;
            until.put(key, ts + cooldown);
            signals.add(new Signal(rule, entity, ts));
          }
        });
      }
      System.gc();
      long cpu0 = os.getProcessCpuTime();
      long wall0 = System.nanoTime();
      long now = Long.MIN_VALUE;
      for (int i = 0; i < eventArray.length; i++) {
        long t = eventTimes[i];
        if (t > now) {
          service.advanceTime(t);
          now = t;
        }
        Object e = eventArray[i];
        service.sendEventBean(e, e instanceof Behavior ? "Behavior" : "Coin");
      }
      long cpu = os.getProcessCpuTime() - cpu0;
      long wall = System.nanoTime() - wall0;
      System.out.printf(
          "{\"run\":%d,\"warmup\":%s,\"events\":%d,\"cpuSeconds\":%.4f,\"wallSeconds\":%.4f,\"signals\":%d}%n",
          run, run == 0, eventArray.length, cpu / 1e9, wall / 1e9, signals.size());
      if (run == runs) {
        try (PrintWriter out = new PrintWriter(Files.newBufferedWriter(signalsFile, StandardCharsets.UTF_8))) {
          for (Signal s : signals) out.println(s.rule() + "\t" + s.entity() + "\t" + s.ts());
        }
      }
      runtime.destroy();
    }
  }

  private static String text(JsonNode e, String field) {
    JsonNode v = e.get(field);
    return v == null || v.isNull() ? null : v.asText();
  }

  private static Long num(JsonNode e, String field) {
    JsonNode v = e.get(field);
    return v == null || v.isNull() ? null : v.asLong();
  }
}
