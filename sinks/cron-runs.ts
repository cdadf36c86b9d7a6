// Jobs run on a cron schedule (node-cron), for the sinks' retention: ClickHouse partitions and
// Elasticsearch indices. A run still going when the next is due makes that one skip; a job that
// fails is logged and the others still run.
import cron, { type ScheduledTask } from "node-cron";
import pino, { type Logger } from "pino";

export interface CronRunsOptions {
  /** A cron expression (node-cron: 5 or 6 fields), e.g. `17 * * * *` for every hour at :17. */
  cron: string;
  /** IANA timezone for the cron expression. Default the process's. */
  timezone?: string;
  logger?: Logger;
}

/** How a kind of job is named in logs. */
export interface CronRunsWording<J, R> {
  /** The task's and the default logger's name. */
  name: string;
  /** What the jobs are, for the "scheduled" log line. */
  jobs(jobs: J[]): Record<string, unknown>;
  /** Which job failed. */
  job(job: J): Record<string, unknown>;
  /** What a run did, for the "done" log line. */
  summary(runs: R[]): Record<string, unknown>;
  scheduled: string;
  failed: string;
  done: string;
}

export class CronRuns<J extends { run(now: number): Promise<R> }, R> {
  private readonly log: Logger;
  private task: ScheduledTask | null = null;
  private running: Promise<R[]> | null = null;

  constructor(
    protected readonly jobs: J[],
    readonly options: CronRunsOptions,
    private readonly wording: CronRunsWording<J, R>,
  ) {
    if (!cron.validate(options.cron)) {
      throw new RangeError(`not a cron expression: ${JSON.stringify(options.cron)} (e.g. "17 * * * *")`);
    }
    this.log = options.logger ?? pino({ name: wording.name });
  }

  start(): void {
    if (this.task) return;
    this.task = cron.schedule(
      this.options.cron,
      async () => {
        await this.runNow();
      },
      {
        name: this.wording.name,
        noOverlap: true,
        ...(this.options.timezone ? { timezone: this.options.timezone } : {}),
      },
    );
    this.log.info(
      { cron: this.options.cron, ...this.wording.jobs(this.jobs), next: this.task.getNextRun() },
      this.wording.scheduled,
    );
  }

  /** Next time a run is due, or null when stopped. */
  nextRun(): Date | null {
    return this.task?.getNextRun() ?? null;
  }

  /** Runs every job now. One that fails is logged and the others still run. */
  runNow(now = Date.now()): Promise<R[]> {
    if (this.running) return this.running;
    this.running = (async () => {
      const runs: R[] = [];
      for (const job of this.jobs) {
        try {
          runs.push(await job.run(now));
        } catch (e) {
          this.log.error({ ...this.wording.job(job), err: e }, this.wording.failed);
        }
      }
      this.log.info(this.wording.summary(runs), this.wording.done);
      return runs;
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    const t = this.task;
    this.task = null;
    if (t) await t.destroy();
    await this.running?.catch(() => {});
  }
}
