import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../../schemas/config/yaml-config.ts";
import { hashToken, newToken, TOKENS_ENV, TOKENS_FILE_ENV, TokenStore, TokensError } from "./tokens.ts";

const ONCALL = "wlt_oncall-token-for-tests";
const SRE = "wlt_sre-token-for-tests";
const FILE = `tokens:
  - name: oncall-gifting
    sha256: ${hashToken(ONCALL)}
    services: [gift-svc, pay-svc]
  - name: sre
    sha256: ${hashToken(SRE).toUpperCase()}
    services: "*"
`;

test("a token is known by its hash; its name and scope come with it", () => {
  const store = TokenStore.parse(FILE, "tokens.yaml");
  assert.equal(store.size, 2);
  assert.deepEqual(store.authenticate(`Bearer ${ONCALL}`), {
    ok: true,
    token: { name: "oncall-gifting", scope: ["gift-svc", "pay-svc"] },
  });
  assert.deepEqual(store.authenticate(`bearer  ${SRE}`), { ok: true, token: { name: "sre", scope: "all" } });
  assert.deepEqual(store.authenticate(undefined), { ok: false, reason: "missing" });
  assert.deepEqual(store.authenticate(""), { ok: false, reason: "missing" });
  assert.deepEqual(store.authenticate(`Basic ${ONCALL}`), { ok: false, reason: "malformed" });
  assert.deepEqual(store.authenticate("Bearer "), { ok: false, reason: "malformed" });
  assert.deepEqual(store.authenticate(`Bearer ${ONCALL}x`), { ok: false, reason: "unknown" });
  // The hash itself is not a token.
  assert.deepEqual(store.authenticate(`Bearer ${hashToken(ONCALL)}`), { ok: false, reason: "unknown" });
});

test("new tokens are random and long; their hash is SHA-256 hex", () => {
  const a = newToken();
  assert.match(a, /^wlt_[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a, newToken());
  assert.equal(hashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

test("mistakes in the tokens file name the line and field", () => {
  const bad = (text: string, pattern: RegExp) =>
    assert.throws(
      () => TokenStore.parse(text, "t.yaml"),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
    );
  bad("tokens: []", /t\.yaml:1:1: tokens: list at least one token/);
  bad(
    `tokens:\n  - name: a\n    sha256: abc\n    services: "*"\n`,
    /t\.yaml:3:5: tokens\[0\]\.sha256: the token's SHA-256/,
  );
  bad(`tokens:\n  - name: a\n    sha256: ${hashToken("x")}\n    services: []\n`, /tokens\[0\]\.services/);
  bad(`tokens:\n  - name: a\n    sha256: ${hashToken("x")}\n    services: all\n`, /tokens\[0\]\.services/);
  bad(
    `tokens:\n  - name: a\n    sha256: ${hashToken("x")}\n    services: "*"\n    token: x\n`,
    /tokens\[0\]\.token: unknown field/,
  );
  bad(
    `tokens:\n  - {name: a, sha256: ${hashToken("x")}, services: "*"}\n  - {name: a, sha256: ${hashToken("x")}, services: "*"}\n`,
    /tokens\[1\]\.name: also the name of tokens\[0\][\s\S]*tokens\[1\]\.sha256: the same token as tokens\[0\]/,
  );
});

test("tokens come from WEIR_LOGS_TOKENS_FILE, WEIR_LOGS_TOKENS or --tokens; none is an error with what to do", () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-tokens-"));
  try {
    const file = join(dir, "tokens.yaml");
    writeFileSync(file, FILE);
    assert.equal(TokenStore.fromEnv({ [TOKENS_FILE_ENV]: file }).size, 2);
    assert.equal(TokenStore.fromEnv({ [TOKENS_ENV]: FILE }).size, 2);
    assert.equal(TokenStore.fromEnv({ [TOKENS_ENV]: FILE }, file).size, 2);
    assert.throws(() => TokenStore.fromEnv({ [TOKENS_FILE_ENV]: file, [TOKENS_ENV]: FILE }), /both/);
    assert.throws(() => TokenStore.fromEnv({ [TOKENS_FILE_ENV]: join(dir, "none.yaml") }), /ENOENT/);
    assert.throws(
      () => TokenStore.fromEnv({}),
      (e: unknown) => e instanceof TokensError && /weir logs token/.test(e.hint),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
