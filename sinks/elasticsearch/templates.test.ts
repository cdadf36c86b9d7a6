import assert from "node:assert/strict";
import { test } from "node:test";
import type { Client } from "@elastic/elasticsearch";
import { decideTemplate, installTemplates, TemplateError } from "./templates.ts";

test("a template is written when missing or older, kept when the same or newer", () => {
  assert.equal(decideTemplate(2, undefined), "created");
  assert.equal(decideTemplate(2, null), "updated");
  assert.equal(decideTemplate(2, 1), "updated");
  assert.equal(decideTemplate(2, 2), "unchanged");
  assert.equal(decideTemplate(2, 3), "newer-kept");
});

test("a template without a version is refused before anything is written", async () => {
  const calls: string[] = [];
  const client = new Proxy(
    {},
    {
      get: (_t, p) => {
        calls.push(String(p));
        return () => Promise.resolve({});
      },
    },
  ) as Client;
  await assert.rejects(
    installTemplates(client, {
      components: [{ name: "a", body: { version: 1, template: {} } }],
      indexTemplates: [{ name: "b", body: { version: 0, index_patterns: ["b-*"] } }],
    }),
    (e: unknown) => e instanceof TemplateError && /index template b has no version/.test(e.message),
  );
  assert.deepEqual(calls, []);
});
