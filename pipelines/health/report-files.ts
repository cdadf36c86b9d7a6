// The daily availability report as files (`<dir>/health-YYYY-MM-DD.md` and `.json`, each replaced
// atomically) and the nightly schedule that writes the previous UTC day's.
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import cron from "node-cron";
import { HealthQueryError } from "./health-reader.ts";
import { buildDailyReport, type DailyReport, type DailyReportOptions, previousUtcDay } from "./report.ts";
import { renderDailyReportMarkdown } from "./report-markdown.ts";

export interface WrittenReport {
  report: DailyReport;
  markdownPath: string;
  jsonPath: string;
}

/** Builds the day's report and writes `<dir>/health-YYYY-MM-DD.md` and `.json` (each replaced atomically). */
export async function writeDailyReport(options: DailyReportOptions & { dir: string }): Promise<WrittenReport> {
  return writeReportFiles(await buildDailyReport(options), options.dir);
}

/** Writes a built report as `<dir>/health-YYYY-MM-DD.md` and `.json`. */
export async function writeReportFiles(report: DailyReport, dir: string): Promise<WrittenReport> {
  await mkdir(dir, { recursive: true });
  const base = join(dir, `health-${report.day}`);
  const markdownPath = `${base}.md`;
  const jsonPath = `${base}.json`;
  await writeAtomically(markdownPath, renderDailyReportMarkdown(report));
  await writeAtomically(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  return { report, markdownPath, jsonPath };
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

export interface DailyReportSchedule {
  /** Stops the schedule; a report being written finishes. */
  stop(): Promise<void>;
  /** When the next report will be written. */
  nextRun(): Date | null;
}

export interface ScheduleOptions extends Omit<DailyReportOptions, "day" | "now"> {
  /** A cron expression in UTC (default "5 0 * * *": five past midnight, the previous day complete). */
  cron?: string;
  dir: string;
  onReport?: (written: WrittenReport) => void;
  /** Default: printed on stderr; the schedule goes on. */
  onError?: (error: Error, day: string) => void;
}

/** Writes the previous UTC day's report on a cron schedule (in UTC). */
export function scheduleDailyReport(options: ScheduleOptions): DailyReportSchedule {
  const expression = options.cron ?? "5 0 * * *";
  if (!cron.validate(expression)) {
    throw new HealthQueryError(
      "bad-argument",
      `not a cron expression: ${JSON.stringify(expression)}`,
      'use five or six fields, e.g. "5 0 * * *"',
    );
  }
  const { cron: _cron, onReport, onError, ...reportOptions } = options;
  const task = cron.schedule(
    expression,
    async (ctx) => {
      const day = previousUtcDay(ctx.date);
      try {
        const written = await writeDailyReport({ ...reportOptions, day });
        onReport?.(written);
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        if (onError) onError(error, day);
        else console.error(`weir: the health report for ${day} failed: ${error.message}`);
      }
    },
    { timezone: "Etc/UTC", name: "weir-health-daily-report", noOverlap: true },
  );
  return {
    stop: async () => {
      await task.destroy();
    },
    nextRun: () => task.getNextRun(),
  };
}
