import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { inspect } from "node:util";
import { loadPiiKey, PiiKey, PiiKeyError } from "./key.ts";
import { piiToken } from "./token.ts";

const SECRET = "0123456789abcdef0123456789abcdef-test";

function withDir<T>(run: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "weir-pii-key-"));
  try {
    return run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("the PII key", () => {
  test("from WEIR_PII_KEY", () => {
    const key = loadPiiKey({ WEIR_PII_KEY: SECRET });
    assert.equal(key.source, "WEIR_PII_KEY");
    assert.deepEqual(key.bytes(), Buffer.from(SECRET));
  });

  test("from WEIR_PII_KEY_FILE, one trailing newline ignored, giving the same tokens as the same key inline", () => {
    withDir((dir) => {
      const file = join(dir, "pii.key");
      writeFileSync(file, `${SECRET}\n`);
      const key = loadPiiKey({ WEIR_PII_KEY_FILE: file });
      assert.equal(key.source, "WEIR_PII_KEY_FILE");
      assert.deepEqual(key.bytes(), Buffer.from(SECRET));
      assert.equal(
        piiToken("phone", "13800138000", key),
        piiToken("phone", "13800138000", loadPiiKey({ WEIR_PII_KEY: SECRET })),
      );
    });
  });

  test("an unreadable file, both variables, or a short key: errors that say what to do", () => {
    const expectKeyError = (env: NodeJS.ProcessEnv, message: RegExp) =>
      assert.throws(
        () => loadPiiKey(env),
        (e: unknown) => e instanceof PiiKeyError && message.test(e.message) && e.hint.length > 0,
      );
    withDir((dir) => expectKeyError({ WEIR_PII_KEY_FILE: join(dir, "missing") }, /cannot read .*ENOENT/));
    expectKeyError({ WEIR_PII_KEY: SECRET, WEIR_PII_KEY_FILE: "/x" }, /both/);
    expectKeyError({ WEIR_PII_KEY: "short" }, /5 bytes; it needs at least 32/);
  });

  test("no key: refused, unless WEIR_ENV=development, which gets a marked development key", () => {
    assert.throws(
      () => loadPiiKey({}),
      (e: unknown) => e instanceof PiiKeyError && /no PII key/.test(e.message) && /WEIR_PII_KEY_FILE/.test(e.hint),
    );
    assert.throws(() => loadPiiKey({ WEIR_ENV: "production" }), PiiKeyError);
    assert.throws(() => loadPiiKey({ WEIR_ENV: "dev" }), PiiKeyError, "only the exact word development");
    const dev = loadPiiKey({ WEIR_ENV: "development" });
    assert.ok(dev.isDevelopment);
    assert.ok(!loadPiiKey({ WEIR_PII_KEY: SECRET, WEIR_ENV: "development" }).isDevelopment, "a configured key wins");
  });

  test("printing, inspecting or serialising a key never shows it", () => {
    const key = new PiiKey(SECRET, "given");
    for (const shown of [String(key), JSON.stringify({ key }), inspect(key), inspect({ nested: { key } }), `${key}`]) {
      assert.ok(!shown.includes(SECRET), shown);
      assert.match(shown, /PiiKey\(given\)/);
    }
  });
});
