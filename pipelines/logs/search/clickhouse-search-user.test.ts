import assert from "node:assert/strict";
import { test } from "node:test";
import { SEARCH_QUERY_SETTINGS, SEARCH_USER, searchUserXml } from "./clickhouse-search-user.ts";

test("the users.d file: the user, its readonly profile with every limit a search query carries, its quota", () => {
  const xml = searchUserXml();
  assert.match(
    xml,
    new RegExp(
      `<users>\\s*<${SEARCH_USER}>[\\s\\S]*<profile>${SEARCH_USER}</profile>[\\s\\S]*<quota>${SEARCH_USER}</quota>`,
    ),
  );
  for (const [k, v] of Object.entries(SEARCH_QUERY_SETTINGS)) assert.match(xml, new RegExp(`<${k}>${v}</${k}>`), k);
  for (const k of [
    "max_ast_depth",
    "max_ast_elements",
    "max_query_size",
    "max_execution_time",
    "max_result_rows",
    "readonly",
  ])
    assert.ok(k in SEARCH_QUERY_SETTINGS, k);
  assert.equal(SEARCH_QUERY_SETTINGS.readonly, 1);
  assert.match(xml, /<interval>\s*<duration>60<\/duration>[\s\S]*<execution_time>600<\/execution_time>/);
  assert.equal((xml.match(/<(\w+)>/g) ?? []).length, (xml.match(/<\/(\w+)>/g) ?? []).length, "every element closed");
});
