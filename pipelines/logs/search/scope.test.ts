import assert from "node:assert/strict";
import { test } from "node:test";
import { compileLogQuery } from "../query/query.ts";
import { SearchError } from "./errors.ts";
import { checkQueryScope, servicesNamedIn, servicesToSearch } from "./scope.ts";

const forbidden = (names: string) => (e: unknown) =>
  e instanceof SearchError &&
  e.kind === "forbidden" &&
  e.message.endsWith(names) &&
  /gift-svc, pay-svc/.test(e.hint ?? "");

test("services to search: those asked for within the scope, else the whole scope; all: only what was asked", () => {
  const scope = ["gift-svc", "pay-svc"];
  assert.deepEqual(servicesToSearch(undefined, scope), scope);
  assert.deepEqual(servicesToSearch([], scope), scope);
  assert.deepEqual(servicesToSearch(["pay-svc", "pay-svc"], scope), ["pay-svc"]);
  assert.throws(() => servicesToSearch(["pay-svc", "room-svc"], scope), forbidden("service room-svc"));
  assert.throws(() => servicesToSearch(["room-svc", "im-svc"], scope), forbidden("services room-svc, im-svc"));
  assert.equal(servicesToSearch(undefined, "all"), undefined);
  assert.equal(servicesToSearch(undefined), undefined);
  assert.deepEqual(servicesToSearch(["room-svc"], "all"), ["room-svc"]);
});

test("services a query names: exact values outside NOT, in any field alias", () => {
  const named = (q: string) => [...servicesNamedIn(compileLogQuery(q).search)].sort();
  assert.deepEqual(named("service:room-svc level:error"), ["room-svc"]);
  assert.deepEqual(named("svc:(a OR b) OR timeout"), ["a", "b"]);
  assert.deepEqual(named("service.name:a AND NOT service:b"), ["a"]);
  assert.deepEqual(named("NOT (NOT service:c)"), ["c"]);
  assert.deepEqual(named("service:gift-* timeout"), []);
  assert.deepEqual(named(""), []);
});

test("a query naming a service outside the scope is refused; wildcards and NOT are left to the filter", () => {
  const scope = ["gift-svc", "pay-svc"];
  const check = (q: string) => checkQueryScope(compileLogQuery(q).search, scope);
  check("service:gift-svc level:error");
  check("NOT service:room-svc");
  check("service:room* timeout");
  assert.throws(() => check("service:room-svc"), forbidden("service room-svc"));
  assert.throws(() => check("level:error OR service:(gift-svc OR room-svc)"), forbidden("service room-svc"));
  checkQueryScope(compileLogQuery("service:room-svc").search, "all");
});
