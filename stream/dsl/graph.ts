// The logical topology the DSL builds: nodes and the edges between them. `compile` cuts it into
// sub-topologies at repartition topics; each sub-topology runs as one task per partition.
import type { Sink } from "../sink.ts";
import type { Rec, Serde } from "../types.ts";
import type { WindowDef } from "../windows/spec.ts";
import type { Aggregator } from "./aggregator.ts";

export type EmitMode = { mode: "final" } | { mode: "early"; every: number };

export interface StoreOptions {
  /** Drop an entry this long (event time) after its last update. */
  ttl?: number;
  /** Keep at most this many entries; the least recently updated are evicted (and counted). */
  maxEntries?: number;
  serde?: Serde<unknown>;
}

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

export type StatelessNode =
  | { kind: "filter"; id: number; fn: (rec: Rec) => boolean }
  | { kind: "map"; id: number; fn: (rec: Rec) => Rec }
  | { kind: "flatMap"; id: number; fn: (rec: Rec) => Iterable<Rec> }
  | { kind: "peek"; id: number; fn: (rec: Rec) => void }
  | { kind: "merge"; id: number };

export interface RepartitionNode {
  kind: "repartition";
  id: number;
  topic: string;
  serde: Serde<unknown>;
  partitions?: number;
}

export interface WindowNode {
  kind: "window";
  id: number;
  store: string;
  def: WindowDef;
  emit: EmitMode;
  aggregator: Aggregator<unknown, unknown, unknown>;
}

export interface JoinNode {
  kind: "join";
  id: number;
  store: string;
  type: "inner" | "left";
  within: number;
  grace: number;
  joiner: (left: unknown, right: unknown, key: string | null) => unknown;
}

export interface TableJoinNode {
  kind: "tableJoin";
  id: number;
  type: "inner" | "left";
  table: number;
  joiner: (value: unknown, row: unknown, key: string | null) => unknown;
}

export interface ProcessNode {
  kind: "process";
  id: number;
  store: string;
  options: StoreOptions;
  fn: (rec: Rec, ctx: ProcessContext) => void;
  onWatermark?: (watermark: number, ctx: ProcessContext) => void;
}

/** What a custom stateful step sees: its keyed store, the watermark, and a way to emit. */
export interface ProcessContext {
  readonly store: KeyValueAccess;
  readonly watermark: number;
  forward(rec: Rec): void;
}

export interface KeyValueAccess {
  get(key: string): unknown;
  put(key: string, value: unknown, ts: number): void;
  delete(key: string): void;
  entries(): IterableIterator<[string, unknown]>;
  readonly size: number;
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

export type Node =
  | SourceNode
  | TableNode
  | StatelessNode
  | RepartitionNode
  | WindowNode
  | JoinNode
  | TableJoinNode
  | ProcessNode
  | ToTopicNode
  | ToSinkNode;

/** `late` is a window's or join's side output of late records. */
export type Port = "out" | "late";
export type Input = "main" | "left" | "right";

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
