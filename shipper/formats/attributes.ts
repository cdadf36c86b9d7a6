// AppLog.attributes is a map of strings. Values are kept as their JSON text (numbers, booleans);
// nested objects are flattened with dots ({"http":{"status":200}} -> "http.status": "200") so that
// every attribute is a plain keyword a store can index and a search can name; arrays are kept as
// their JSON text; nulls are left out, as services leave out absent fields.

const MAX_DEPTH = 8;

export function addAttribute(attrs: Record<string, string>, key: string, value: unknown, depth = 0): void {
  switch (typeof value) {
    case "string":
      attrs[key] = value;
      return;
    case "number":
    case "boolean":
      attrs[key] = String(value);
      return;
    case "object": {
      if (value === null) return;
      if (Array.isArray(value) || depth >= MAX_DEPTH) {
        attrs[key] = JSON.stringify(value);
        return;
      }
      for (const k in value as Record<string, unknown>)
        addAttribute(attrs, `${key}.${k}`, (value as Record<string, unknown>)[k], depth + 1);
      return;
    }
    default:
      return;
  }
}
