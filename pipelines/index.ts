// The pipelines `weir run <name>` knows. Each entry builds its topology; the pipelines' own issues
// fill this in (health, logs, fraud, hotkeys).
import type { StreamApp } from "../stream/dsl/app.ts";

export const PIPELINES: Record<string, () => StreamApp | Promise<StreamApp>> = {};
