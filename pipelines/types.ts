// What `weir run <pipeline>` gives a pipeline, and what a pipeline gives back.
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { KafkaSecurity } from "../kafka/security.ts";
import type { StoreEndpoints } from "../sinks/credentials.ts";
import type { StreamApp } from "../stream/dsl/app.ts";

export interface PipelineContext {
  /** The pipeline's configuration file (`weir run <pipeline> --config`); each pipeline has a default. */
  config?: string;
  /** Where the pipeline may write files (reports, ...). */
  dataDir: string;
  /** Where the stores and Kafka are, with the stores' credentials (sinks/credentials.ts). */
  endpoints: StoreEndpoints & {
    kafkaBrokers: string[];
    /** TLS and SASL of Kafka (kafka/security.ts); absent: plaintext. */
    kafkaSecurity?: KafkaSecurity | undefined;
    redisUrl: string;
    redisPassword?: string | undefined;
  };
  env: NodeJS.ProcessEnv;
  logger: Logger;
}

export interface Pipeline {
  app: StreamApp;
  /** Background jobs started with the worker (scheduled retention, reports). */
  start?(): void | Promise<void>;
  /** Registers the pipeline's own metrics in the worker's /metrics registry. */
  registerMetrics?(registry: Registry): void;
  stop?(): void | Promise<void>;
}
