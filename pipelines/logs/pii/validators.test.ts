import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { idCard15To18, idCheckChar, isIdCard15, isIdCard18, knownCardPrefix, luhnValid } from "./validators.ts";

describe("resident ID numbers", () => {
  test("the check character is GB 11643's ISO 7064 MOD 11-2 (its own example ends in X)", () => {
    assert.equal(idCheckChar("11010519491231002", 0), "X");
    // 4·7+4·9+0·10+5·5+2·8+4·4+1·2+9·1+8·6+0·3+0·7+1·9+0·10+1·5+0·8+0·4+1·2 = 196, 196 mod 11 = 9 -> "3"
    assert.equal(idCheckChar("44052419800101001", 0), "3");
    assert.ok(isIdCard18("11010519491231002X", 0, 2026));
    assert.ok(isIdCard18("11010519491231002x", 0, 2026), "a lowercase x is the same check character");
    assert.ok(isIdCard18("440524198001010013", 0, 2026));
  });

  test("a wrong check character, province or birth date is not an ID number", () => {
    assert.ok(!isIdCard18("110105194912310021", 0, 2026), "check digit");
    assert.ok(!isIdCard18("990105194912310026", 0, 2026), "province 99");
    const withCheck = (body: string) => body + idCheckChar(body, 0);
    assert.ok(!isIdCard18(withCheck("44052418800101001"), 0, 2026), "born 1880");
    assert.ok(!isIdCard18(withCheck("11010520300101001"), 0, 2026), "born in the future");
    assert.ok(isIdCard18(withCheck("11010520000229001"), 0, 2026), "2000 was a leap year");
    assert.ok(!isIdCard18(withCheck("11010519000229001"), 0, 2026), "1900 was not");
    assert.ok(!isIdCard18(withCheck("11010519491331002"), 0, 2026), "month 13");
    assert.ok(!isIdCard18(withCheck("11010519490431002"), 0, 2026), "April 31");
  });

  test("the old 15-digit form: province and a 19YYMMDD date, converted to its 18-character form", () => {
    assert.ok(isIdCard15("110105491231002", 0));
    assert.ok(!isIdCard15("110105491331002", 0), "month 13");
    assert.ok(!isIdCard15("990105491231002", 0), "province 99");
    assert.equal(idCard15To18("110105491231002"), "11010519491231002X");
  });
});

describe("bank cards", () => {
  test("Luhn", () => {
    assert.ok(luhnValid("4111111111111111"));
    assert.ok(luhnValid("79927398713"));
    assert.ok(!luhnValid("79927398710"));
    assert.ok(!luhnValid("4111111111111112"));
  });

  test("issuer prefixes and lengths: real networks yes, timestamps and 13-digit ids no", () => {
    assert.ok(knownCardPrefix(4111, 16), "Visa");
    assert.ok(!knownCardPrefix(4111, 13), "13-digit Visa numbers are no longer issued");
    assert.ok(knownCardPrefix(5500, 16), "Mastercard");
    assert.ok(knownCardPrefix(2221, 16) && !knownCardPrefix(2220, 16), "Mastercard 2-series");
    assert.ok(knownCardPrefix(6222, 19), "UnionPay");
    assert.ok(knownCardPrefix(3400, 15) && !knownCardPrefix(3400, 16), "Amex is 15 digits");
    assert.ok(knownCardPrefix(3530, 16) && !knownCardPrefix(3500, 16), "JCB 3528-3589");
    assert.ok(knownCardPrefix(3600, 14), "Diners");
    for (const len of [13, 16, 19]) assert.ok(!knownCardPrefix(1795, len), "a millisecond or microsecond timestamp");
    for (const first of [2026, 4111, 5500, 6222, 3400, 8100])
      assert.ok(!knownCardPrefix(first, 13), `${first}: 13 digits`);
  });
});
