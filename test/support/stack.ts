// Where integration tests find the real servers: the local stack's configuration (so a second stack
// on other ports is tested by setting the same WEIR_* variables). A test run against a stack that is
// down fails at once with what to do, instead of timing out deep inside a client.
import { randomUUID } from "node:crypto";
import { createClient as createClickHouse } from "@clickhouse/client";
import { Client as Elasticsearch } from "@elastic/elasticsearch";
import { Kafka, logLevel } from "kafkajs";
import { resolveStackConfig, stackEndpoints } from "../../infra/stack/config.ts";
import { LocalStack } from "../../infra/stack/local-stack.ts";
import type { ServiceName } from "../../infra/stack/service.ts";
// Test consumers read topics weir ship wrote, lz4-compressed.
import "../../kafka/codecs.ts";
import { kafkajsSecurity, kafkaSecurityFromEnv } from "../../kafka/security.ts";

export const stackConfig = resolveStackConfig();
/** The stack's endpoints; WEIR_KAFKA_BROKERS, when set, names the Kafka the tests use (a private cluster, say). */
export const endpoints = {
  ...stackEndpoints(stackConfig),
  ...(process.env.WEIR_KAFKA_BROKERS ? { kafkaBrokers: process.env.WEIR_KAFKA_BROKERS.split(",") } : {}),
};

export async function requireStack(): Promise<void> {
  await requireServices();
}

/** Fails unless the servers a test needs (default: all of them) answer. */
export async function requireServices(services?: readonly ServiceName[]): Promise<void> {
  const rows = await new LocalStack(stackConfig, () => {}).status();
  const down = rows.filter((r) => !r.healthy && (!services || services.includes(r.service)));
  if (down.length > 0) {
    throw new Error(
      `the local stack is not healthy (${down.map((r) => `${r.service}: ${r.detail}`).join("; ")}); run: node cli/weir.mjs stack up`,
    );
  }
}

/** A name no other test run uses, for topics, indices, tables and groups. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

/** A kafkajs client of the stack's Kafka, with the security the environment names (WEIR_KAFKA_*, kafka/security.ts). */
export function kafkaClient(clientId = "weir-test") {
  return new Kafka({
    clientId,
    brokers: endpoints.kafkaBrokers,
    ...kafkajsSecurity(kafkaSecurityFromEnv()),
    logLevel: logLevel.NOTHING,
  });
}

export function elasticsearchClient() {
  return new Elasticsearch({ node: endpoints.elasticsearchUrl });
}

export function clickhouseClient() {
  return createClickHouse({ url: endpoints.clickhouseUrl });
}
