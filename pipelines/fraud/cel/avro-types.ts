// CEL types for our Avro records, so a rule's predicate is type-checked against the event it reads:
// `event.phne` is refused when the rule set is compiled, with its position, not discovered at run
// time. The decoded records are avsc's record instances; each record type's constructor is
// registered, so the evaluator reads them as they are, without copying an event into a map.
//
// Numbers: Avro int and long decode as JS numbers, which are CEL doubles (exact up to 2^53, which
// covers every id, time and amount we carry). The environment adds mixed double/int arithmetic and
// equality (cel/environment.ts), so `event.uid == 100` reads as an analyst expects.
// A nullable field (["null", T]) is `dyn`: a rule reading it when it is null gets a run-time error,
// counted per rule; `has()` and `!= null` guard it.
import type avro from "avsc";

/** What the checker knows of one record type: CEL field types, and the names of the fields. */
export interface CelRecordType {
  /** CEL type name, unique in an environment: the Avro short name, prefixed by its owner when nested. */
  name: string;
  ctor: new (...args: never[]) => unknown;
  fields: Record<string, string>;
}

interface AvroField {
  name: string;
  type: avro.Type;
}

/**
 * The CEL record types of one Avro record type and the record types nested in it (children first,
 * so each is registered before a type that names it). Nested types are named `<Owner>_<Name>`
 * because two schemas may each hold their own record called, e.g., ShipSource.
 */
export function celRecordTypes(type: avro.Type, name = shortName(type)): CelRecordType[] {
  const out: CelRecordType[] = [];
  // An explicit stack, children pushed after their owner and emitted in reverse: Avro schemas are
  // ours, but no recursion is kept in code that walks a structure on principle.
  const pending: Array<{ type: avro.Type; name: string }> = [{ type, name }];
  const ordered: Array<{ type: avro.Type; name: string }> = [];
  while (pending.length > 0) {
    const next = pending.pop() as { type: avro.Type; name: string };
    ordered.push(next);
    for (const f of recordFields(next.type)) {
      const nested = nestedRecord(f.type);
      if (nested && !nullable(f.type)) pending.push({ type: nested, name: `${name}_${shortName(nested)}` });
    }
  }
  for (const { type: t, name: n } of ordered.reverse()) {
    const fields: Record<string, string> = {};
    for (const f of recordFields(t)) fields[f.name] = celFieldType(f.type, name);
    const ctor = (t as unknown as { recordConstructor: CelRecordType["ctor"] }).recordConstructor;
    out.push({ name: n, ctor, fields });
  }
  return out;
}

function recordFields(t: avro.Type): AvroField[] {
  return t.typeName === "record" ? ((t as unknown as { fields: AvroField[] }).fields ?? []) : [];
}

function shortName(t: avro.Type): string {
  const full = t.name ?? "Record";
  return full.slice(full.lastIndexOf(".") + 1);
}

function nullable(t: avro.Type): boolean {
  return t.typeName === "union:unwrapped" || t.typeName === "union:wrapped";
}

function nestedRecord(t: avro.Type): avro.Type | undefined {
  return t.typeName === "record" ? t : undefined;
}

function celFieldType(t: avro.Type, owner: string): string {
  switch (t.typeName) {
    case "int":
    case "long":
    case "float":
    case "double":
      return "double";
    case "string":
    case "enum":
      return "string";
    case "boolean":
      return "bool";
    case "bytes":
    case "fixed":
      return "bytes";
    case "array": {
      const items = (t as unknown as { itemsType: avro.Type }).itemsType;
      const inner = celFieldType(items, owner);
      return inner === "dyn" || items.typeName === "record" ? "list<dyn>" : `list<${inner}>`;
    }
    case "map": {
      const values = (t as unknown as { valuesType: avro.Type }).valuesType;
      const inner = celFieldType(values, owner);
      return inner === "dyn" || values.typeName === "record" ? "map<string, dyn>" : `map<string, ${inner}>`;
    }
    case "record":
      return `${owner}_${shortName(t)}`;
    default:
      // unions (nullable fields) and anything else: checked at run time
      return "dyn";
  }
}
