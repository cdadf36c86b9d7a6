// One server of the local stack: how to install it, configure and launch it, and ask it whether it is up.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import type { StackConfig } from "./config.ts";
import type { JavaRuntime, RunAs } from "./prerequisites.ts";
import type { LaunchSpec } from "./service-process.ts";

/** `kafka` is the first (or only) broker; a cluster's others are `kafka-2`, `kafka-3`, ... */
export type ServiceName = "kafka" | `kafka-${number}` | "elasticsearch" | "clickhouse" | "redis";

/** What a service is, whatever its node: the grace period of a stop, the setting that lists it. */
export function serviceKind(name: ServiceName): "kafka" | "elasticsearch" | "clickhouse" | "redis" {
  return name.startsWith("kafka") ? "kafka" : (name as "elasticsearch" | "clickhouse" | "redis");
}

export interface ServiceContext {
  cfg: StackConfig;
  runAs: RunAs;
  java: JavaRuntime;
  log: (line: string) => void;
}

export interface Health {
  ok: boolean;
  /** One line for `status`: cluster state, broker count, ... or why it is not ok. */
  detail: string;
  version?: string;
}

export interface StackService {
  readonly name: ServiceName;
  /** Seconds a start may take on a slow machine before `up` gives up. */
  readonly readySeconds: number;
  /** Named ports, e.g. { http: 9200, transport: 9300 }. */
  ports(): Record<string, number>;
  /** Idempotent; fetches into the cache only what is missing. Returns the version that will run. */
  install(ctx: ServiceContext): Promise<string>;
  /** Writes configuration, prepares storage, and says how to start the server. */
  launch(ctx: ServiceContext): Promise<LaunchSpec>;
  /**
   * Brings a running server's configuration up to this version's where it can without a restart;
   * `up` calls it once every server answers, whether it started it or found it running.
   */
  reconcile?(ctx: ServiceContext): Promise<void>;
  probe(): Promise<Health>;
  /** The server's own main log file (what `weir stack logs` shows). */
  serverLog(): string;
  /** Where connections go, for the `up` summary. */
  endpoint(): string;
}

/**
 * Installs into `dir` once: `fill` populates a temporary sibling which is renamed into place only
 * when complete, so an interrupted download never looks installed and two stacks sharing a
 * downloads folder never see a half-written one.
 */
export async function installOnce(dir: string, fill: (tmp: string) => Promise<void>): Promise<boolean> {
  const marker = `${dir}/.installed`;
  if (existsSync(marker)) return false;
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o755 });
  try {
    await fill(tmp);
    writeFileSync(`${tmp}/.installed`, `${new Date().toISOString()}\n`);
    if (existsSync(marker)) return false; // another stack finished first
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    return true;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** A failed fetch as one short line: the socket error's code (ECONNREFUSED, ...) when there is one. */
export function describeFetchError(e: unknown): string {
  const cause = (e as { cause?: { code?: string } }).cause;
  return cause?.code ?? (e as Error).message;
}
