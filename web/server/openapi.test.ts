import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import pino from "pino";
import type { AlertBoard } from "../../pipelines/alerts/board.ts";
import type { HotKeysClient } from "../../pipelines/hotkeys/client/hot-keys-client.ts";
import { OPENAPI } from "../../pipelines/logs/api/openapi.ts";
import { type ConsoleServerOptions, consoleRoutes } from "./console-server.ts";
import { hotKeysRoutes } from "./hotkeys.ts";
import { CONSOLE_OPENAPI } from "./openapi.ts";
import { RiskConsole } from "./risk.ts";

const COMMITTED = new URL("../../docs/console-api.openapi.json", import.meta.url);

test("docs/console-api.openapi.json is the served document (regenerate: weir console openapi > docs/console-api.openapi.json)", () => {
  assert.deepEqual(JSON.parse(readFileSync(COMMITTED, "utf8")), JSON.parse(JSON.stringify(CONSOLE_OPENAPI)));
});

test("every route the console answers is described, the logs API's too, and nothing else", () => {
  // The routes are only built here, never asked: no server is reached.
  const risk = new RiskConsole({
    clickhouseUrl: "http://127.0.0.1:9",
    rulesDir: "/nonexistent",
    brokers: ["127.0.0.1:9"],
    logger: pino({ level: "silent" }),
  });
  const routes = [
    ...consoleRoutes({ board: {} as AlertBoard } as ConsoleServerOptions, "weir", new Set()),
    ...risk.routes(),
    ...hotKeysRoutes({ client: {} as HotKeysClient, brokers: [] }),
  ];
  const ours = Object.keys(CONSOLE_OPENAPI.paths).filter((p) => !(p in OPENAPI.paths));
  const described = (p: string, method: string) =>
    (CONSOLE_OPENAPI.paths as Record<string, Record<string, unknown>>)[p]?.[method.toLowerCase()] !== undefined;
  for (const r of routes) {
    const matching = ours.filter((p) => r.pattern.test(p.replace(/\{[^}]+\}/g, "x")));
    assert.ok(
      matching.some((p) => described(p, r.method)),
      `${r.method} ${r.name} (${r.pattern}) is described`,
    );
  }
  for (const p of ours) {
    assert.ok(
      routes.some((r) => r.pattern.test(p.replace(/\{[^}]+\}/g, "x"))),
      `${p} is a route the console answers`,
    );
  }
  assert.equal(ours.length, 20);
});

test("every reference resolves; every /v1 route answers 401 and 403 documented", () => {
  const text = JSON.stringify(CONSOLE_OPENAPI);
  for (const [, kind, name] of text.matchAll(/"#\/components\/(\w+)\/(\w+)"/g)) {
    const group = (CONSOLE_OPENAPI.components as Record<string, Record<string, unknown>>)[kind as string];
    assert.ok(group?.[name as string] !== undefined, `#/components/${kind}/${name}`);
  }
  for (const [path, item] of Object.entries(CONSOLE_OPENAPI.paths)) {
    if (!path.startsWith("/v1/")) continue;
    for (const op of Object.values(item as Record<string, { responses: Record<string, unknown> }>)) {
      for (const status of ["200", "401", "403"]) assert.ok(op.responses[status], `${path} ${status}`);
    }
  }
});
