// What `weir run <pipeline>` gives a pipeline, and what a pipeline gives back.
import type { Logger } from "pino";
import type { StoreEndpoints } from "../sinks/credentials.ts";
import type { StreamApp } from "../stream/dsl/app.ts";

export interface PipelineContext {
  /** The pipeline's configuration file (`weir run <pipeline> --config`); each pipeline has a default. */
  config?: string;
  /** Where the pipeline may write files (reports, ...). */
  dataDir: string;
  /** Where the stores and Kafka are, with the stores' credentials (sinks/credentials.ts). */
  endpoints: StoreEndpoints & { kafkaBrokers: string[] };
  env: NodeJS.ProcessEnv;
  logger: Logger;
}

export interface Pipeline {
  app: StreamApp;
  /** Background jobs started with the worker (scheduled retention, reports). */
  start?(): void | Promise<void>;
  stop?(): void | Promise<void>;
}
