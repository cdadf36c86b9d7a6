import assert from "node:assert/strict";
import { test } from "node:test";
import { compilePathTemplate } from "./path-template.ts";

test("captures of a path template: {name} within a segment, * and ** as in globs", () => {
  const byFolder = compilePathTemplate("/var/log/{service}/*.log");
  assert.deepEqual(byFolder("/var/log/pay-svc/app.log"), { service: "pay-svc" });
  assert.equal(byFolder("/var/log/pay-svc/app.log.1"), null, "not a match: no captures");
  assert.equal(byFolder("/var/log/a/b/app.log"), null, "{name} and * stay within one segment");
  const deep = compilePathTemplate("/srv/**/{service}-{host}.log");
  assert.deepEqual(deep("/srv/k8s/pods/gift-svc-pod-3.log"), { service: "gift", host: "svc-pod-3" });
  const relative = compilePathTemplate("{app}/{service}/access.log");
  assert.deepEqual(relative("/data/logs/live/room-svc/access.log"), { app: "live", service: "room-svc" });
  assert.deepEqual(compilePathTemplate("/l/{s}.log?")("/l/x.log1"), { s: "x" });
});

test("a template that captures nothing, repeats a name or has a broken brace is refused", () => {
  assert.throws(() => compilePathTemplate("/var/log/*.log"), /captures nothing; write it like/);
  assert.throws(() => compilePathTemplate("/{a}/{a}.log"), /\{a\} appears twice/);
  assert.throws(() => compilePathTemplate("/{a/x.log"), /is not \{name\}/);
});
