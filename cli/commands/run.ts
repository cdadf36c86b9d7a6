// weir run <pipeline | topology module>: one worker of a pipeline's consumer group. Start more (here
// or on other machines) and they share the partitions; SIGTERM drains and leaves the group.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Command, Option } from "commander";
import pino from "pino";
import { clientEndpoints } from "../../infra/stack/config.ts";
import { PIPELINES } from "../../pipelines/index.ts";
import type { Pipeline, PipelineContext } from "../../pipelines/types.ts";
import { StreamApp } from "../../stream/dsl/app.ts";
import { KafkajsStreamClient } from "../../stream/kafka/client.ts";
import { StreamWorker } from "../../stream/runtime/worker.ts";
import { UsageError } from "../errors.ts";

async function loadPipeline(target: string, ctx: PipelineContext): Promise<Pipeline> {
  const known = PIPELINES[target];
  if (known) return known(ctx);
  if (!/\.(ts|mjs|js)$/.test(target)) {
    const names = Object.keys(PIPELINES);
    throw new UsageError(
      `unknown pipeline ${target}`,
      `name one of: ${names.length > 0 ? names.join(", ") : "(none registered yet)"}, or a topology module (a .ts file whose default export builds a StreamApp)`,
    );
  }
  const mod = (await import(pathToFileURL(resolve(target)).href)) as { default?: unknown; createApp?: unknown };
  const make = mod.default ?? mod.createApp;
  const app = typeof make === "function" ? await (make as () => unknown)() : make;
  if (!(app instanceof StreamApp)) {
    throw new UsageError(
      `${target} does not export a StreamApp`,
      "export default a function that returns new StreamApp(...) with its topology",
    );
  }
  return { app };
}

export function runCommand(): Command {
  return new Command("run")
    .description("run one worker of a pipeline (several workers of one pipeline share its partitions)")
    .argument("<pipeline>", "a registered pipeline name, or the path of a topology module")
    .addOption(
      new Option("--metrics-port <port>", "serve /metrics and /health on this port (0: any free port)").default("0"),
    )
    .option("--instance <id>", "this worker's name in logs and client ids", `${process.pid}`)
    .option("--config <file>", "the pipeline's configuration (health: its SLO file)")
    .option("--data-dir <dir>", "where the pipeline writes files (reports)", "weir-data")
    .action(
      async (target: string, opts: { metricsPort: string; instance: string; config?: string; dataDir: string }) => {
        const endpoints = clientEndpoints();
        const logger = pino({ name: `weir-run-${target}`, base: { pipeline: target, instance: opts.instance } });
        const pipeline = await loadPipeline(target, {
          ...(opts.config ? { config: resolve(opts.config) } : {}),
          dataDir: resolve(opts.dataDir),
          endpoints,
          env: process.env,
          logger,
        });
        const app = pipeline.app;
        const kafka = new KafkajsStreamClient({
          brokers: endpoints.kafkaBrokers,
          clientId: `${app.appId}-${opts.instance}`,
          logger,
          security: endpoints.kafkaSecurity,
        });
        const worker = new StreamWorker(app, {
          kafka,
          logger,
          metricsPort: Number(opts.metricsPort),
        });
        pipeline.registerMetrics?.(worker.metrics.registry);
        const stop = () => void worker.stop();
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
        try {
          await worker.start();
        } catch (e) {
          // SIGTERM while it still waited for Kafka: a clean stop, not a failure.
          if (!worker.stopRequested) throw e;
        }
        if (worker.stopRequested) {
          await worker.done;
          await pipeline.stop?.();
          return;
        }
        await pipeline.start?.();
        const err = await worker.done;
        await pipeline.stop?.();
        if (err) {
          console.error(`weir run ${target}: ${err.message}`);
          process.exitCode = 1;
        }
      },
    );
}
