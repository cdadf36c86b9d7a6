// The logical topology the DSL builds: nodes and the edges between them. `compile` cuts it into
// sub-topologies at repartition topics; each sub-topology runs as one task per partition.
//
// Almost every node is an `OperatorNode`: it carries its own processor factory and store needs
// (runtime/processor.ts), and the runtime runs it without knowing what it is. Five kinds stay
// special because the runtime itself must act on them, not just call `process`:
// - a source is where records enter: the task decodes them, takes their event time and moves the
//   watermark; the worker consumes its partitions and commits their offsets;
// - a table is consumed like a changelog (read to its end before the task starts, no offsets
//   committed, no watermark), and its store is the topic itself, with no changelog of its own;
// - a repartition ends a sub-topology (`compile` cuts there and plans its partition count), and the
//   task writes it with origin headers and the watermark markers downstream tasks wait for;
// - a topic output must be known to the worker before it starts (its topics checked, written in the
//   task's transaction);
// - a sink must be flushed by the worker at every checkpoint before offsets are committed.
import type { Input, Operator, Port } from "../runtime/processor.ts";
import type { Sink } from "../sink.ts";
import type { SourceSettings } from "../time/watermark.ts";
import type { Serde } from "../types.ts";

/** Which source (a host, a file) a record comes from, for per-source watermarks; null: none named. */
export type SourceOf = (value: unknown, header: (name: string) => string | undefined) => string | null | undefined;

export interface SourceNode {
  kind: "source";
  id: number;
  topic: string;
  /** Internal topics (repartition) are created by the runtime and carry watermarks. */
  internal: boolean;
  decode: (bytes: Buffer) => unknown;
  /** The inverse of decode, for the test driver. */
  encode: (value: unknown) => Buffer;
  schemaName?: string;
  keyName: string;
  timestamp: (value: unknown, messageTs: number) => number;
  outOfOrderness: number;
  idleTimeout: number;
  /** The source of a record; null: the `weir-source` header (see runtime/task.ts). */
  sourceOf: SourceOf | null;
  /** How the sources of a partition hold its watermark (time/watermark.ts). */
  sources: SourceSettings;
}

export interface TableNode {
  kind: "table";
  id: number;
  topic: string;
  decode: (bytes: Buffer) => unknown;
  encode: (value: unknown) => Buffer;
  schemaName?: string;
  keyName: string;
  store: string;
}

export interface RepartitionNode {
  kind: "repartition";
  id: number;
  topic: string;
  serde: Serde<unknown>;
  partitions?: number;
}

export interface OperatorNode {
  kind: "operator";
  id: number;
  operator: Operator;
  /** Nodes whose stores the operator reads (a stream-table join reads its table's): compiled into its task. */
  reads: number[];
}

export interface ToTopicNode {
  kind: "toTopic";
  id: number;
  topic: string;
  encode: (value: unknown) => Buffer;
}

export interface ToSinkNode {
  kind: "toSink";
  id: number;
  sink: Sink;
}

export type Node = SourceNode | TableNode | RepartitionNode | OperatorNode | ToTopicNode | ToSinkNode;

export interface Edge {
  from: number;
  port: Port;
  to: number;
  input: Input;
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly edges: Edge[] = [];
  private readonly storeNames = new Set<string>();

  add<N extends Node>(make: (id: number) => N): N {
    const node = make(this.nodes.length);
    this.nodes.push(node);
    return node;
  }

  /** Adds an operator, claiming the names of its stores. */
  addOperator(operator: Operator, reads: number[] = []): OperatorNode {
    for (const s of operator.stores) this.claimStore(s.name, operator.name);
    return this.add((id) => ({ kind: "operator" as const, id, operator, reads }));
  }

  connect(from: number, to: number, port: Port = "out", input: Input = "main"): void {
    this.edges.push({ from, port, to, input });
  }

  claimStore(name: string, what: string): string {
    if (this.storeNames.has(name))
      throw new Error(`${what}: the state store name ${name} is already used in this topology`);
    this.storeNames.add(name);
    return name;
  }

  /** The sources a node reads from, through any path of edges. */
  upstreamSources(id: number): SourceNode[] {
    const seen = new Set<number>();
    const out: SourceNode[] = [];
    const walk = (n: number) => {
      if (seen.has(n)) return;
      seen.add(n);
      const node = this.nodes[n];
      if (node?.kind === "source") out.push(node);
      for (const e of this.edges) if (e.to === n) walk(e.from);
    };
    walk(id);
    return out;
  }
}
