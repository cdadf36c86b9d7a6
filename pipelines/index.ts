// The pipelines `weir run <name>` knows. Each entry builds its topology and background jobs.
import { fraudPipeline } from "./fraud/pipeline.ts";
import { healthPipeline } from "./health/pipeline.ts";
import { hotKeysPipeline } from "./hotkeys/pipeline.ts";
import { logsPipeline } from "./logs/pipeline.ts";
import type { Pipeline, PipelineContext } from "./types.ts";

export const PIPELINES: Record<string, (ctx: PipelineContext) => Pipeline | Promise<Pipeline>> = {
  fraud: fraudPipeline,
  health: healthPipeline,
  hotkeys: hotKeysPipeline,
  logs: logsPipeline,
};
