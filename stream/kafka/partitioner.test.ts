import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { test } from "node:test";
import { murmur2, partitionFor } from "./partitioner.ts";

const require = createRequire(import.meta.url);
const kafkajsMurmur2 = require("kafkajs/src/producer/partitioners/default/murmur2.js") as (key: Buffer) => number;

test("murmur2 agrees with kafkajs' Java-compatible implementation on keys of every length mod 4", () => {
  for (let i = 0; i < 2000; i++) {
    const key = Buffer.from(`key-${i}-${"x".repeat(i % 7)}`);
    assert.equal(murmur2(key), kafkajsMurmur2(key), key.toString());
  }
  assert.equal(murmur2(Buffer.alloc(0)), kafkajsMurmur2(Buffer.alloc(0)));
});

test("partitionFor matches values the Java client computes", () => {
  // Known partitions of Kafka's DefaultPartitioner (Utils.toPositive(Utils.murmur2(key)) % n).
  assert.equal(partitionFor("a", 6), (kafkajsMurmur2(Buffer.from("a")) & 0x7fffffff) % 6);
  const counts = new Array(6).fill(0);
  for (let i = 0; i < 6000; i++) counts[partitionFor(`uid-${i}`, 6)]++;
  for (const c of counts) assert.ok(c > 800 && c < 1200, `skewed: ${counts}`);
});
