// The compatibility gate. A schema may change only in ways that keep every kept version readable in
// both directions (Avro schema resolution; what Confluent calls FULL_TRANSITIVE):
// - backward: the new schema reads data written with any kept version (new consumers, old data);
// - forward: every kept version reads data written with the new schema (old consumers, new data).
// In practice: add or remove fields only with defaults, add enum symbols only where the enum has a
// default, never change a field's type except by Avro's promotions, never rename without aliases.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { SCHEMAS_DIR, type SchemaRegistry, type SchemaVersion } from "./registry.ts";

export interface CompatibilityProblem {
  schema: string;
  /** The kept version the candidate fails against. */
  against: number;
  direction: "backward" | "forward";
  message: string;
}

export function checkCompatibility(candidate: SchemaVersion, kept: SchemaVersion[]): CompatibilityProblem[] {
  const problems: CompatibilityProblem[] = [];
  for (const old of kept) {
    try {
      candidate.type.createResolver(old.type);
    } catch (e) {
      problems.push({
        schema: candidate.name,
        against: old.version,
        direction: "backward",
        message: `cannot read v${old.version} data: ${(e as Error).message}`,
      });
    }
    try {
      old.type.createResolver(candidate.type);
    } catch (e) {
      problems.push({
        schema: candidate.name,
        against: old.version,
        direction: "forward",
        message: `v${old.version} readers cannot read it: ${(e as Error).message}`,
      });
    }
  }
  return problems;
}

/** Every current schema against every kept version of it. */
export function checkRegistry(registry: SchemaRegistry): CompatibilityProblem[] {
  return registry.names().flatMap((name) => checkCompatibility(registry.current(name), registry.history(name)));
}

/** Current schemas that differ from their newest kept version: changed but not released. */
export function unreleased(registry: SchemaRegistry): string[] {
  return registry.names().filter((name) => registry.current(name).version === 0);
}

export interface ReleaseResult {
  released: { name: string; version: number; file: string }[];
  problems: CompatibilityProblem[];
}

/**
 * Keeps each changed current schema as the next version in history/<Name>/v<N>.avsc, so that
 * consumers can always find a writer's schema by its fingerprint. Refuses (writes nothing) while
 * any change breaks compatibility.
 */
export function releaseSchemas(registry: SchemaRegistry, dir = SCHEMAS_DIR): ReleaseResult {
  const problems = checkRegistry(registry);
  if (problems.length > 0) return { released: [], problems };
  const released = unreleased(registry).map((name) => {
    const version = (registry.history(name).at(-1)?.version ?? 0) + 1;
    const folder = join(dir, "history", name);
    mkdirSync(folder, { recursive: true });
    const file = join(folder, `v${version}.avsc`);
    writeFileSync(file, `${JSON.stringify(registry.current(name).schema, null, 2)}\n`);
    return { name, version, file: relative(dir, file) };
  });
  return { released, problems };
}
