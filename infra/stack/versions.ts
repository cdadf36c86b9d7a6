// The versions the local stack runs. Why each one: docs/stack.md.
// Kafka: the newest release whose full artifact set is on Maven Central and that passes
// test/integration/kafka-client-compat.test.ts with kafkajs (4.4.0 lacks kafka-tools-api there).
export const KAFKA_VERSION = "4.3.1";
/** log4j2 binding for Kafka 4.x (its own distribution ships log4j 2 too). */
export const LOG4J_VERSION = "2.24.3";
export const SLF4J_VERSION = "2.0.17";
/** The newest 8.x on Maven Central; the integ-test-zip has no bundled JDK and runs on JDK 17+. */
export const ELASTICSEARCH_VERSION = "8.19.21";
/** Debian bookworm's clickhouse-server is 18.16.x; weir's DDL stays within what it supports. */
export const CLICKHOUSE_DEBIAN_PACKAGE = "clickhouse-server";
/** Debian bookworm's redis-server is 7.0.x: the hot counters use only EVALSHA, INCRBY, HSET/HGET and EXPIRE. */
export const REDIS_DEBIAN_PACKAGE = "redis-server";
export const MIN_JAVA_MAJOR = 17;
