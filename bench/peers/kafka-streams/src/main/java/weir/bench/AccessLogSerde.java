package weir.bench;

import java.io.IOException;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serializer;

/**
 * Reads weir's AccessLog values: Avro single-object encoding (C3 01, the writer schema's 8-byte
 * little-endian CRC-64-AVRO fingerprint, then the Avro binary body), decoded with a
 * GenericDatumReader for the schema file given on the command line.
 *
 * <p>The decoder and reader are reused, one set per stream thread (the serde instance is shared by
 * all tasks and threads). The GenericRecord is NOT reused: Kafka Streams deserializes the head record
 * of every partition queue ahead of processing it (to extract its timestamp), so a thread holds one
 * live decoded record per task at a time, and a shared instance would be overwritten under it.
 */
final class AccessLogSerde implements Serde<GenericRecord> {
  private final Schema schema;
  private final long fingerprint;
  private final ThreadLocal<State> state;

  private static final class State {
    final GenericDatumReader<GenericRecord> reader;
    BinaryDecoder decoder;

    State(Schema schema) {
      reader = new GenericDatumReader<>(schema);
    }
  }

  AccessLogSerde(Schema schema) {
    this.schema = schema;
    this.fingerprint = SchemaNormalization.parsingFingerprint64(schema);
    this.state = ThreadLocal.withInitial(() -> new State(schema));
  }

  Schema schema() {
    return schema;
  }

  @Override
  public Serializer<GenericRecord> serializer() {
    return (topic, data) -> {
      throw new UnsupportedOperationException("the peer only reads AccessLog records");
    };
  }

  @Override
  public Deserializer<GenericRecord> deserializer() {
    return this::deserialize;
  }

  private GenericRecord deserialize(String topic, byte[] data) {
    if (data == null) return null;
    if (data.length < 10 || data[0] != (byte) 0xC3 || data[1] != (byte) 0x01) {
      throw new SerializationException("not Avro single-object encoding (expected C3 01 + fingerprint)");
    }
    long fp = 0;
    for (int i = 9; i >= 2; i--) fp = (fp << 8) | (data[i] & 0xFFL);
    if (fp != fingerprint) {
      throw new SerializationException(
          "writer fingerprint " + Long.toHexString(fp) + " is not the AccessLog schema's " + Long.toHexString(fingerprint));
    }
    State s = state.get();
    s.decoder = DecoderFactory.get().binaryDecoder(data, 10, data.length - 10, s.decoder);
    try {
      return s.reader.read(null, s.decoder);
    } catch (IOException | RuntimeException e) {
      throw new SerializationException("AccessLog body does not decode", e);
    }
  }
}
