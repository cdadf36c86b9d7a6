import assert from "node:assert/strict";
import { test } from "node:test";
import { logsTemplates } from "./template.ts";

test("the template set: versioned components, the index template made of them, prefix and replicas as asked", () => {
  const set = logsTemplates({ prefix: "t_abc", name: "t-abc", replicas: 1 });
  assert.deepEqual(
    set.components.map((c) => c.name),
    ["t-abc-settings", "t-abc-mappings"],
  );
  const [index] = set.indexTemplates;
  assert.equal(index?.name, "t-abc");
  assert.deepEqual(index?.body.index_patterns, ["t_abc-*"]);
  assert.deepEqual(index?.body.composed_of, ["t-abc-settings", "t-abc-mappings"]);
  assert.ok((index?.body.priority ?? 0) > 100, "above the built-in logs-*-* template of a full distribution");
  for (const c of set.components) assert.ok(Number.isInteger(c.body.version) && c.body.version >= 1);
  const settings = set.components[0]?.body.template.settings as { index: Record<string, unknown> };
  assert.equal(settings.index.number_of_replicas, 1);
  assert.equal(settings.index.refresh_interval, "1s");
  // A fresh set each call: changing one does not change the next.
  const again = logsTemplates().components[0]?.body.template.settings as { index: Record<string, unknown> };
  assert.equal(again.index.number_of_replicas, 0);
  assert.throws(() => logsTemplates({ prefix: "Logs" }), /uppercase/);
});
