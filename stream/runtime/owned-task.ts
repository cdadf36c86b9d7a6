// A task this worker owns: the Task itself (task.ts) and what the worker keeps beside it: whether it
// restores or runs, its transactional producer and the records on their way through it, and its
// progress through its changelogs. The worker, its checkpoint and its changelog reader share it.
import type { SubTopology } from "../dsl/compile.ts";
import type { TransactionalProducer } from "../kafka/stream-client.ts";
import type { RecordCollector } from "./record-collector.ts";
import type { Task } from "./task.ts";

export interface OwnedTask {
  task: Task;
  sub: SubTopology;
  state: "restoring" | "running";
  /** The task's own producer when it checkpoints through a transaction; null: its records go out with the worker's. */
  producer: TransactionalProducer | null;
  /** Records sent inside the task's open transaction (with `producer`). */
  output: RecordCollector | null;
  /** Something was sent inside the open transaction since its last commit. */
  dirty: boolean;
  restore: {
    /** Changelog/table topic -> offset it must be read up to (the last stable offset when the task was opened). */
    targets: Map<string, bigint>;
    /** Changelog/table topic -> the offset after the last record applied since the restore's seek. */
    applied: Map<string, bigint>;
    started: number;
  };
  lastAnnounce: number;
  /** When the task's last transaction committed (or it opened): its open one began after that. */
  committedAt: number;
  /**
   * How many times in a row the task was opened again because its transaction failed on a
   * coordinator that was not settled, with no commit in between (0: opened by an assignment).
   */
  reopened: number;
  closed: boolean;
}
