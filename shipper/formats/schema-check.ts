// Says exactly what is wrong with a record the Avro encoder refused: which field, what it expected,
// what it got, and whether the field is missing or mistyped. The encoder already validates every
// value as it writes (it never coerces), so this walk runs only after it has thrown: the hot path
// pays for one validation, not two.
import type avro from "avsc";
import { LineProblem, shown } from "./problem.ts";

type AnyType = avro.Type & {
  fields?: avro.types.Field[];
  types?: avro.Type[];
  symbols?: string[];
  itemsType?: avro.Type;
  valuesType?: avro.Type;
};

/** The first problem of `value` as a record of `type`, or null when it is a valid one. */
export function recordProblem(type: avro.Type, value: unknown, path = ""): LineProblem | null {
  const t = type as AnyType;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return new LineProblem("wrong-type", `${quoted(path || "(the line)")}: expected an object, got ${shown(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const field of t.fields ?? []) {
    const fieldPath = path ? `${path}.${field.name}` : field.name;
    const v = record[field.name];
    if (v === undefined || v === null) {
      if (v === undefined && field.defaultValue() !== undefined) continue;
      if (acceptsNull(field.type)) continue;
      return new LineProblem(
        "missing-field",
        `${quoted(fieldPath)}: ${v === null ? "is null" : "is missing"}; ${schemaName(type)} requires ${expected(field.type)}`,
      );
    }
    const problem = valueProblem(field.type, v, fieldPath);
    if (problem) return problem;
  }
  return null;
}

export function valueProblem(type: avro.Type, v: unknown, path: string): LineProblem | null {
  const t = type as AnyType;
  switch (t.typeName) {
    case "string":
      return typeof v === "string" ? null : wrong(path, type, v);
    case "boolean":
      return typeof v === "boolean" ? null : wrong(path, type, v);
    case "int":
      return typeof v === "number" && (v | 0) === v ? null : wrong(path, type, v);
    case "long":
      return typeof v === "number" && Number.isSafeInteger(v) ? null : wrong(path, type, v);
    case "float":
    case "double":
      return typeof v === "number" ? null : wrong(path, type, v);
    case "enum":
      return typeof v === "string" && (t.symbols ?? []).includes(v) ? null : wrong(path, type, v);
    case "array": {
      if (!Array.isArray(v)) return wrong(path, type, v);
      for (let i = 0; i < v.length; i++) {
        const p = valueProblem(t.itemsType as avro.Type, v[i], `${path}[${i}]`);
        if (p) return p;
      }
      return null;
    }
    case "map": {
      if (typeof v !== "object" || v === null || Array.isArray(v)) return wrong(path, type, v);
      for (const k in v as Record<string, unknown>) {
        const p = valueProblem(t.valuesType as avro.Type, (v as Record<string, unknown>)[k], `${path}.${k}`);
        if (p) return p;
      }
      return null;
    }
    case "record":
      return recordProblem(type, v, path);
    case "union:unwrapped":
    case "union:wrapped": {
      const branches = (t.types ?? []).filter((b) => b.typeName !== "null");
      const only = branches.length === 1 ? (branches[0] as AnyType) : null;
      // A nullable record: the problem inside it says more than "expected an object or null".
      if (only !== null && only.typeName === "record") return valueProblem(only, v, path);
      if (only !== null) return valueProblem(only, v, path) === null ? null : wrong(path, type, v);
      return branches.some((b) => valueProblem(b, v, path) === null) ? null : wrong(path, type, v);
    }
    default:
      return type.isValid(v) ? null : wrong(path, type, v);
  }
}

function acceptsNull(type: avro.Type): boolean {
  const t = type as AnyType;
  return t.typeName === "null" || (t.types ?? []).some((b) => b.typeName === "null");
}

/** What a type accepts, in words a service owner reads: "a long", "one of RECHARGE, GIFT, ...". */
export function expected(type: avro.Type): string {
  const t = type as AnyType;
  switch (t.typeName) {
    case "string":
      return "a string";
    case "boolean":
      return "a boolean";
    case "int":
      return "an int (a whole number within ±2^31)";
    case "long":
      return "a long (a whole number)";
    case "float":
    case "double":
      return "a number";
    case "enum":
      return `one of ${(t.symbols ?? []).join(", ")}`;
    case "array":
      return `an array of ${expected(t.itemsType as avro.Type).replace(/^an? /, "")}s`;
    case "map":
      return "an object";
    case "record":
      return `an object (${schemaName(type)})`;
    default: {
      const branches = (t.types ?? []).filter((b) => b.typeName !== "null");
      if (branches.length > 0) return `${branches.map(expected).join(" or ")} or null`;
      return t.typeName;
    }
  }
}

function wrong(path: string, type: avro.Type, v: unknown): LineProblem {
  return new LineProblem("wrong-type", `${quoted(path)}: expected ${expected(type)}, got ${shown(v)}`);
}

function quoted(path: string): string {
  return `"${path}"`;
}

function schemaName(type: avro.Type): string {
  return (type.name ?? "the record").split(".").at(-1) as string;
}
