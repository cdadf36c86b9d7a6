// Every schema weir has ever written, found by name or by fingerprint, without a registry server:
// the current versions in schemas/avro/<Name>.avsc and every released version in
// schemas/history/<Name>/v<N>.avsc. A consumer can decode anything a producer of any kept version
// wrote, because the writer's fingerprint names its schema here.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import avro from "avsc";
import { canonicalForm, fingerprint } from "./fingerprint.ts";

export const SCHEMAS_DIR = fileURLToPath(new URL(".", import.meta.url));

export interface SchemaVersion {
  /** Short name, the file's name: AccessLog. */
  name: string;
  /** Avro full name: weir.AccessLog. */
  fullName: string;
  /** 0 for the current file when it is not released yet; otherwise the history version it equals. */
  version: number;
  schema: avro.Schema;
  type: avro.Type;
  canonical: string;
  fingerprint: bigint;
  file: string;
}

export class SchemaRegistry {
  private readonly currentByName = new Map<string, SchemaVersion>();
  private readonly historyByName = new Map<string, SchemaVersion[]>();
  private readonly byFp = new Map<bigint, SchemaVersion>();

  /** Loads `<dir>/avro/*.avsc` and `<dir>/history/<Name>/v<N>.avsc`. */
  static load(dir = SCHEMAS_DIR): SchemaRegistry {
    const registry = new SchemaRegistry();
    const historyDir = join(dir, "history");
    for (const file of readdirSync(join(dir, "avro"))
      .filter((f) => f.endsWith(".avsc"))
      .sort()) {
      const name = file.slice(0, -".avsc".length);
      const history = existsSync(join(historyDir, name))
        ? readdirSync(join(historyDir, name))
            .map((f) => /^v(\d+)\.avsc$/.exec(f))
            .filter((m): m is RegExpExecArray => m !== null)
            .map((m) => loadVersion(name, Number(m[1]), join(historyDir, name, m[0])))
            .sort((a, b) => a.version - b.version)
        : [];
      const current = loadVersion(name, 0, join(dir, "avro", file));
      const released = history.find((h) => sameSchema(h, current));
      registry.add(name, released ? { ...current, version: released.version } : current, history);
    }
    return registry;
  }

  private add(name: string, current: SchemaVersion, history: SchemaVersion[]): void {
    this.currentByName.set(name, current);
    this.historyByName.set(name, history);
    for (const v of [...history, current]) {
      const other = this.byFp.get(v.fingerprint);
      if (other && other.name !== name) {
        throw new Error(`${v.file} and ${other.file} have the same fingerprint: two names for one schema`);
      }
      // The current file wins over an equal history version (same fingerprint, maybe newer docs).
      if (!other || v === current) this.byFp.set(v.fingerprint, v);
    }
  }

  names(): string[] {
    return [...this.currentByName.keys()];
  }

  current(name: string): SchemaVersion {
    const v = this.currentByName.get(name);
    if (!v) throw new Error(`no schema named ${name} (known: ${this.names().join(", ")})`);
    return v;
  }

  /** Released versions, oldest first. */
  history(name: string): SchemaVersion[] {
    return this.historyByName.get(name) ?? [];
  }

  byFingerprint(fp: bigint): SchemaVersion | undefined {
    return this.byFp.get(fp);
  }
}

export function loadVersion(name: string, version: number, file: string): SchemaVersion {
  let schema: avro.Schema;
  try {
    schema = JSON.parse(readFileSync(file, "utf8")) as avro.Schema;
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  let type: avro.Type;
  try {
    type = avro.Type.forSchema(schema);
  } catch (e) {
    throw new Error(`${file}: not a valid Avro schema: ${(e as Error).message}`);
  }
  const fullName = type.name ?? name;
  if (fullName.split(".").at(-1) !== name)
    throw new Error(`${file}: declares ${fullName}, but the file is named ${name}`);
  return {
    name,
    fullName,
    version,
    schema,
    type,
    canonical: canonicalForm(type),
    fingerprint: fingerprint(type),
    file,
  };
}

/** Same writer schema and same defaults: what decides how data is read. Docs may differ. */
export function sameSchema(a: SchemaVersion, b: SchemaVersion): boolean {
  return (
    a.fingerprint === b.fingerprint && JSON.stringify(withoutDocs(a.schema)) === JSON.stringify(withoutDocs(b.schema))
  );
}

function withoutDocs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutDocs);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => k !== "doc")
        .map(([k, v]) => [k, withoutDocs(v)]),
    );
  }
  return value;
}

let shared: SchemaRegistry | undefined;
/** The registry of this checkout's schemas/ folder, loaded once. */
export function schemaRegistry(): SchemaRegistry {
  shared ??= SchemaRegistry.load();
  return shared;
}
