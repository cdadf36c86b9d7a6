package weir.bench;

import com.datadoghq.sketch.ddsketch.DDSketch;
import com.datadoghq.sketch.ddsketch.DDSketchProtoBinding;
import com.datadoghq.sketch.ddsketch.encoding.ByteArrayInput;
import com.datadoghq.sketch.ddsketch.encoding.GrowingByteArrayOutput;
import com.datadoghq.sketch.ddsketch.mapping.IndexMapping;
import com.datadoghq.sketch.ddsketch.mapping.LogarithmicMapping;
import com.datadoghq.sketch.ddsketch.store.UnboundedSizeDenseStore;
import java.io.IOException;
import java.nio.ByteBuffer;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serializer;

/** One key's one-second window: request count, sum of latencyUs, and a DDSketch of latencyUs. */
final class WindowAgg {
  static final double RELATIVE_ACCURACY = 0.01;
  /** Logarithmic mapping + unbounded dense store: what new DDSketch(0.01) and sketches-js's default use. */
  static final IndexMapping MAPPING = new LogarithmicMapping(RELATIVE_ACCURACY);

  long count;
  long sum;
  final DDSketch sketch;

  WindowAgg() {
    this(new DDSketch(MAPPING, UnboundedSizeDenseStore::new));
  }

  private WindowAgg(DDSketch sketch) {
    this.sketch = sketch;
  }

  WindowAgg add(long latencyUs) {
    count++;
    sum += latencyUs;
    sketch.accept(latencyUs);
    return this;
  }

  /** How the sketch is written in the state store and its changelog. */
  enum SketchFormat {
    /** DDSketch.serialize(): the protobuf message DDSketch (index mapping included), read back with protobuf-java. */
    PROTO,
    /** DDSketch.encode(): sketches-java's own compact binary format, index mapping omitted. */
    NATIVE
  }

  /** 8 bytes count, 8 bytes sum, then the sketch in the chosen format. */
  static final class AggSerde implements Serde<WindowAgg> {
    private final SketchFormat format;

    AggSerde(SketchFormat format) {
      this.format = format;
    }

    @Override
    public Serializer<WindowAgg> serializer() {
      return (topic, agg) -> {
        if (agg == null) return null;
        if (format == SketchFormat.PROTO) {
          ByteBuffer sk = agg.sketch.serialize();
          ByteBuffer out = ByteBuffer.allocate(16 + sk.remaining());
          out.putLong(agg.count).putLong(agg.sum).put(sk);
          return out.array();
        }
        GrowingByteArrayOutput o = GrowingByteArrayOutput.withInitialCapacity(256);
        try {
          o.writeLongLE(agg.count);
          o.writeLongLE(agg.sum);
          agg.sketch.encode(o, true);
        } catch (IOException e) {
          throw new SerializationException(e);
        }
        return o.trimmedCopy();
      };
    }

    @Override
    public Deserializer<WindowAgg> deserializer() {
      return (topic, data) -> {
        if (data == null) return null;
        try {
          if (format == SketchFormat.PROTO) {
            ByteBuffer in = ByteBuffer.wrap(data);
            long count = in.getLong();
            long sum = in.getLong();
            DDSketch sketch =
                DDSketchProtoBinding.fromProto(
                    UnboundedSizeDenseStore::new, com.datadoghq.sketch.ddsketch.proto.DDSketch.parseFrom(in));
            WindowAgg agg = new WindowAgg(sketch);
            agg.count = count;
            agg.sum = sum;
            return agg;
          }
          ByteArrayInput in = ByteArrayInput.wrap(data);
          long count = in.readLongLE();
          long sum = in.readLongLE();
          WindowAgg agg = new WindowAgg(DDSketch.decode(in, UnboundedSizeDenseStore::new, MAPPING));
          agg.count = count;
          agg.sum = sum;
          return agg;
        } catch (IOException e) {
          throw new SerializationException("window aggregate does not decode", e);
        }
      };
    }
  }
}
