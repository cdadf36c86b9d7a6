// kafkajs ships gzip only. Kafka's lz4 is the LZ4 frame format, which lz4-napi reads and writes.
// Every module that makes kafkajs clients imports this (kafka/client.ts does), so that consumers
// read what `weir ship` (lz4 by default) and other producers compress: without it, a worker dies on
// the first lz4 batch it fetches.
import kafkajs from "kafkajs";
import lz4 from "lz4-napi";

const { CompressionTypes, CompressionCodecs } = kafkajs;

CompressionCodecs[CompressionTypes.LZ4] = () => ({
  compress: (encoder: { buffer: Buffer }) => lz4.compressFrame(encoder.buffer),
  decompress: (buffer: Buffer) => lz4.decompressFrame(buffer),
});
