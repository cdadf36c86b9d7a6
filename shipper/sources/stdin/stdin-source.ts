// The stdin source: `some-service | weir ship`. Lines follow the file source's rules (bytes not
// decoded, \r\n stripped, cut at maxLineBytes without holding the rest), offsets count bytes from the
// start of the stream, and the fileId is `stdin-<start ms>`: a pipe cannot be resumed, so every run
// is a new stream. The stream is paused while the sink holds a batch, so a slow sink slows the
// writer (through the pipe's buffer) instead of filling memory. The last line is shipped at the end
// of the stream even without its newline.
import type { Readable } from "node:stream";
import pino, { type Logger } from "pino";
import { z } from "zod";
import type { LineSink } from "../../types.ts";
import { LineBatch, LineReader } from "../file/line-reader.ts";

export const StdinSourceConfigSchema = z.strictObject({
  type: z.literal("stdin").default("stdin"),
  name: z.string().min(1).default("stdin"),
  maxLineBytes: z
    .number()
    .int()
    .min(64)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  maxBatchLines: z.number().int().min(1).default(1000),
  maxBatchBytes: z
    .number()
    .int()
    .min(1)
    .default(1024 * 1024),
});

export type StdinSourceConfig = z.input<typeof StdinSourceConfigSchema>;

export interface StdinSourceOptions {
  sink: LineSink;
  /** process.stdin by default. */
  input?: Readable;
  logger?: Logger;
}

export interface StdinSourceStats {
  linesRead: number;
  bytesRead: number;
  linesCut: number;
  largestLineBuffer: number;
}

export class StdinSource {
  readonly config: z.output<typeof StdinSourceConfigSchema>;
  readonly fileId: string;
  /** Resolves once the stream has ended and its last line was delivered (or the source was stopped); rejects if the stream or the sink fails. */
  readonly done: Promise<void>;
  private readonly sink: LineSink;
  private readonly input: Readable;
  private readonly log: Logger;
  private readonly reader: LineReader;
  private readonly batch: LineBatch;
  private readonly counters = { linesRead: 0, bytesRead: 0, linesCut: 0 };
  /** The chunk being handled: the next one waits for it. */
  private work: Promise<void> = Promise.resolve();
  private started = false;
  private stopping = false;
  private finish!: () => void;
  private fail!: (err: Error) => void;

  constructor(config: StdinSourceConfig, options: StdinSourceOptions) {
    this.config = StdinSourceConfigSchema.parse(config);
    this.sink = options.sink;
    this.input = options.input ?? process.stdin;
    this.log = options.logger ?? pino({ name: `weir-stdin-source-${this.config.name}` });
    this.fileId = `stdin-${Date.now()}`;
    this.reader = new LineReader(
      { source: this.config.name, file: "stdin", fileId: this.fileId },
      this.config.maxLineBytes,
      0,
      0,
    );
    this.batch = new LineBatch(this.config.maxBatchLines, this.config.maxBatchBytes);
    this.done = new Promise((resolve, reject) => {
      this.finish = resolve;
      this.fail = reject;
    });
    // `done` may be awaited only after it settles; an unawaited rejection must not crash the process.
    this.done.catch(() => {});
  }

  start(): void {
    if (this.started) throw new Error(`stdin source ${this.config.name} already started`);
    this.started = true;
    this.input.on("data", this.onData);
    this.input.once("end", this.onEnd);
    this.input.once("error", this.onError);
  }

  /** Stops reading (the stream is paused, not destroyed) once the batch in flight is delivered. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.detach();
    this.input.pause();
    await this.work.catch(() => {});
    this.finish();
  }

  stats(): StdinSourceStats {
    return { ...this.counters, largestLineBuffer: this.reader.largestHeld };
  }

  private readonly onData = (data: Buffer | string): void => {
    this.input.pause();
    const chunk = typeof data === "string" ? Buffer.from(data) : data;
    this.work = this.work
      .then(() => this.take(chunk))
      .then(() => {
        if (!this.stopping) this.input.resume();
      })
      .catch((e) => this.failWith(e as Error));
  };

  private readonly onEnd = (): void => {
    this.work = this.work
      .then(async () => {
        if (this.stopping) return;
        this.reader.flushPartial(this.batch);
        await this.deliver();
        this.detach();
        this.finish();
      })
      .catch((e) => this.failWith(e as Error));
  };

  private readonly onError = (err: Error): void => {
    this.failWith(err);
  };

  private async take(chunk: Buffer): Promise<void> {
    if (this.stopping) return;
    this.counters.bytesRead += chunk.length;
    let pos = 0;
    while (pos < chunk.length) {
      pos = this.reader.push(chunk, pos, this.batch);
      if (this.batch.full) await this.deliver();
      if (this.stopping) return;
    }
    await this.deliver();
  }

  private async deliver(): Promise<void> {
    if (this.batch.empty) return;
    const cut = this.batch.cut;
    const lines = this.batch.take();
    await this.sink(lines);
    this.counters.linesRead += lines.length;
    this.counters.linesCut += cut;
  }

  private failWith(err: Error): void {
    if (this.stopping) return;
    this.stopping = true;
    this.detach();
    this.log.error({ err }, "stdin source stopped");
    this.fail(err);
  }

  private detach(): void {
    this.input.off("data", this.onData);
    this.input.off("end", this.onEnd);
    this.input.off("error", this.onError);
  }
}
