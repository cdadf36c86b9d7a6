import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type PiiConfigInput, parsePiiConfig } from "./config.ts";
import { PiiDetector } from "./detector.ts";
import { idCheckChar, luhnValid } from "./validators.ts";

const detector = new PiiDetector({}, { maxBirthYear: 2026 });

/** [kind, the text matched, the normalised value] of every finding. */
function found(s: string, d = detector): [string, string, string][] {
  return d.find(s).map((m) => [m.kind, s.slice(m.start, m.end), m.value]);
}

function withLuhn(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(`${body}${d}`)) return `${body}${d}`;
  throw new Error("unreachable");
}

function withIdCheck(body17: string): string {
  return body17 + idCheckChar(body17, 0);
}

describe("mobile numbers", () => {
  test("every shape people type, with or without the country code, normalised to the 11 digits", () => {
    const shapes = [
      "13800138000",
      "+8613800138000",
      "008613800138000",
      "+86 13800138000",
      "+86-13800138000",
      "0086 138 0013 8000",
      "86 138-0013-8000",
      "+86 138 0013 8000",
      "+86-138-0013-8000",
      "138 0013 8000",
      "138-0013-8000",
      "138 0013-8000",
    ];
    for (const shape of shapes) assert.deepEqual(found(shape), [["phone", shape, "13800138000"]], shape);
  });

  test("in what surrounds it in logs and chat: CJK text, JSON, key=value, paths, punctuation", () => {
    const cases: [string, string][] = [
      ["兼职日结 联系13800138000", "13800138000"],
      ["办证 刷单 联系 +86 171 2345 6789", "+86 171 2345 6789"],
      ['{"phone":"+86-170-1234-5678","ok":true}', "+86-170-1234-5678"],
      ["register phone=16512345678 method=sms", "16512345678"],
      ["GET /user/19912345678/profile", "19912345678"],
      ["(13800138000)", "13800138000"],
      ["tel:13800138000;", "13800138000"],
      ["user_13800138000", "13800138000"],
      ["13800138000-1", "13800138000"],
    ];
    for (const [line, phone] of cases) {
      const f = found(line);
      assert.equal(f.length, 1, line);
      assert.equal(f[0]?.[1], phone, line);
    }
  });

  test("1[3-9] plus nine digits, and not inside a longer number, a word, a decimal or an IP", () => {
    const notPhones = [
      "ts=1795177800175", // a millisecond timestamp
      "ts=1795177800175123", // microseconds
      "order 1380013800012", // a 13-digit order id that starts like a phone
      "8613800138000", // the same without a + or 00: an order id as much as a phone
      "12800138000", // second digit 2
      "10800138000",
      "138001380001", // 12 digits
      "1380013800", // 10 digits
      "uid13800138000",
      "13800138000abc",
      "0x13800138000",
      "1.13800138000",
      "13800138000.5",
      "trace 032725aa9e77597fb752fc77ccacd1b0 span 13800138000ab",
      "QQ群123456789 免费送钻石",
    ];
    for (const line of notPhones) assert.deepEqual(found(line), [], line);
  });

  test("11 digits of a mobile number grouped any other way are one too: spammers group them to dodge filters", () => {
    // Once "not 3-4-4, so not a phone"; a number spaced out to get past a word filter is still one.
    assert.deepEqual(found("138 00138000"), [["phone", "138 00138000", "13800138000"]]);
    assert.deepEqual(found("1380 0138 000"), [["phone", "1380 0138 000", "13800138000"]]);
  });

  test("a number in a long run of grouped digits is still found (the group window moves on)", () => {
    assert.deepEqual(found("1 2 3 4 5 6 7 8 9 138 0013 8000"), [["phone", "138 0013 8000", "13800138000"]]);
    assert.deepEqual(found("1-2-3-4-5-6-7-13800138000-1-2"), [["phone", "13800138000", "13800138000"]]);
  });

  test("several in one line, in order", () => {
    assert.deepEqual(
      found("a 13800138000 b 17012345678 c").map((f) => f[2]),
      ["13800138000", "17012345678"],
    );
  });
});

describe("resident ID numbers", () => {
  const id = "11010519491231002X";

  test("18 characters with a valid check character and birth date, X in either case, grouped 6-8-4", () => {
    assert.deepEqual(found(`idCard=${id}`), [["idCard", id, id]]);
    assert.deepEqual(found("身份证11010519491231002x。"), [["idCard", "11010519491231002x", id]]);
    assert.deepEqual(found("110105 19491231 002X"), [["idCard", "110105 19491231 002X", id]]);
    const digitCheck = withIdCheck("44052419800101001");
    assert.deepEqual(found(`id ${digitCheck}`), [["idCard", digitCheck, digitCheck]]);
  });

  test("18 digits that fail the check, the date or the province are left alone", () => {
    for (const line of [
      "110105194912310021", // check digit
      withIdCheck("11010519491331002"), // month 13
      withIdCheck("99010519491231002"), // province
      withIdCheck("11010520300101001"), // born in 2030
      "123456789012345678", // any 18 digits
      `${id}9`, // part of a longer number
    ]) {
      assert.deepEqual(found(line), [], line);
    }
  });

  test("the old 15-digit form only when configured, normalised to the 18-character form", () => {
    assert.deepEqual(found("id 110105491231002"), []);
    const legacy = new PiiDetector({ idCard: { legacy15: true } }, { maxBirthYear: 2026 });
    assert.deepEqual(found("id 110105491231002", legacy), [["idCard", "110105491231002", id]]);
    assert.deepEqual(found("id 110105491331002", legacy), [], "month 13");
  });
});

describe("bank cards", () => {
  const unionPay19 = withLuhn("622202123456789012");

  test("13-19 digits, Luhn-valid, of a known issuer, contiguous or grouped by spaces or dashes", () => {
    const cases: [string, string][] = [
      ["4111111111111111", "4111111111111111"],
      ["4111 1111 1111 1111", "4111111111111111"],
      ["4111-1111-1111-1111", "4111111111111111"],
      [unionPay19, unionPay19],
      [
        `${unionPay19.slice(0, 4)} ${unionPay19.slice(4, 8)} ${unionPay19.slice(8, 12)} ${unionPay19.slice(12, 16)} ${unionPay19.slice(16)}`,
        unionPay19,
      ],
      ["3782 822463 10005", "378282246310005"], // American Express, 4-6-5
      ["3056 930902 5904", "30569309025904"], // Diners Club, 4-6-4
      ["5555555555554444", "5555555555554444"],
    ];
    for (const [line, digits] of cases) assert.deepEqual(found(`card ${line} ok`), [["card", line, digits]], line);
  });

  test("Luhn-invalid numbers, timestamps and ids that pass Luhn, unknown issuers are left alone", () => {
    const tsMs = withLuhn("179517780017"); // 13 digits
    const tsUs = withLuhn("179517780017512"); // 16 digits
    const nines = withLuhn("955880123456789"); // 16 digits of no network
    for (const n of ["4111111111111112", "4111 1111 1111 1112"]) assert.deepEqual(found(`n=${n}`), [], n);
    // Luhn lets one number in ten through: the issuer prefix and length keep these out.
    for (const n of [tsMs, tsUs, nines, withLuhn("411111111111")]) {
      assert.ok(luhnValid(n), n);
      assert.deepEqual(found(`n=${n}`), [], n);
    }
    const anyIssuer = new PiiDetector({ card: { iin: "any" } });
    assert.deepEqual(
      found(`n=${nines}`, anyIssuer),
      [["card", nines, nines]],
      "iin: any takes every Luhn-valid number",
    );
  });

  test("a 4-4-4-4 card followed by more groups is still found", () => {
    assert.deepEqual(found("4111 1111 1111 1111 2345"), [["card", "4111 1111 1111 1111", "4111111111111111"]]);
  });
});

describe("emails", () => {
  test("local part and domain, lowercased, the sentence's final dot left out", () => {
    const cases: [string, string, string][] = [
      ["mail bob@example.com", "bob@example.com", "bob@example.com"],
      ["to: Bob.Smith+tag@Mail.Example.co.uk.", "Bob.Smith+tag@Mail.Example.co.uk", "bob.smith+tag@mail.example.co.uk"],
      ["<a_b-c@x-y.cn>", "a_b-c@x-y.cn", "a_b-c@x-y.cn"],
      ["联系13800138000@qq.com", "13800138000@qq.com", "13800138000@qq.com"],
      ["email=.dot@example.org", "dot@example.org", "dot@example.org"],
    ];
    for (const [line, text, value] of cases) assert.deepEqual(found(line), [["email", text, value]], line);
  });

  test("object ids, package versions, scopes and hosts without a top-level domain are no emails", () => {
    for (const line of [
      "java.lang.Object@1b6d3586",
      "github.com/x/y@v1.2.3",
      "npm i pkg@1.2.3",
      "@scope/pkg",
      "root@localhost",
      "a@b.c",
      "name@.com",
    ]) {
      assert.deepEqual(found(line), [], line);
    }
  });
});

describe("everything else", () => {
  test("dates, times, IPs, versions, ids and ordinary numbers are nothing", () => {
    for (const line of [
      "2026-11-20 20:30:20.670 ERROR [http-nio-8080-exec-71] com.live.pay.WalletController",
      '{"@timestamp":"2026-11-20T20:30:00.040+08:00","level_value":20000}',
      "dial tcp 10.20.3.7:6379: i/o timeout",
      "clientIp=111.200.107.138 2408:8207:1a2b:3c4d::1f",
      "live-android/8.4.1 Chrome/126.0 Safari/537.36",
      "handled GET /gift/list status=200 in 6 ms",
      "stats heapUsedMb=412 openConnections=57",
      "goroutine 4211 [running]: /src/gift/handler/server.go:187 +0x1a4",
      "card_3f2a9b1c0d wx_1a2b3c",
    ]) {
      assert.deepEqual(found(line), [], line);
    }
  });

  test("tokens of an earlier masking are skipped, even when their hash looks like a card", () => {
    const card = "4111111111111111";
    assert.deepEqual(found(`x ****1111[pii:bc_${card}] y`), []);
  });

  test("only well-formed tokens are skipped: a fake one does not hide what follows", () => {
    for (const line of [
      "[pii: 13800138000]",
      "[pii:ph_ 13800138000",
      "[pii:ph_13800138000]",
      "[pii:ph_0123456789abcdef 13800138000]",
    ]) {
      assert.equal(found(line).length, 1, line);
    }
    const d = new PiiDetector({ extra: [{ name: "qq", pattern: "QQ[0-9]{5,11}" }] });
    assert.equal(found("[pii:QQ12345]", d).length, 1);
  });

  test("classify: a value that is exactly one PII value, surrounding spaces aside", () => {
    assert.equal(detector.classify(" +86 138 0013 8000 ")?.kind, "phone");
    assert.equal(detector.classify("bob@example.com")?.kind, "email");
    assert.equal(detector.classify("call 13800138000"), undefined);
    assert.equal(detector.classify("gift-svc"), undefined);
  });

  test("kinds can be switched off", () => {
    const none = new PiiDetector({ phone: false, email: false, idCard: { enabled: false }, card: { enabled: false } });
    assert.deepEqual(found("13800138000 bob@example.com 11010519491231002X 4111111111111111", none), []);
  });
});

describe("extra patterns", () => {
  const config: PiiConfigInput = {
    extra: [
      { name: "qq", pattern: "(?<=QQ[:：]?\\s*)[1-9][0-9]{4,10}", normalise: "digits", keepLast: 2 },
      { name: "wx", pattern: "\\bwx_[0-9a-f]{6}\\b", flags: "i", normalise: "lowercase" },
      { name: "acct", pattern: "\\bACCT-[0-9]{12,19}\\b", validator: "luhn" },
    ],
  };

  test("their matches are reported in line order with the built-in ones, and their validators apply", () => {
    const d = new PiiDetector(config);
    // numbers of no card network, so the built-in scan leaves them to the pattern
    const acct = `ACCT-${withLuhn("955880123456789")}`;
    assert.deepEqual(found(`加微信 WX_1A2B3C QQ：123456789 phone 13800138000 ${acct} ACCT-9558801234567890`, d), [
      ["wx", "WX_1A2B3C", "wx_1a2b3c"],
      ["qq", "123456789", "123456789"],
      ["phone", "13800138000", "13800138000"],
      ["acct", acct, acct],
    ]);
  });

  test("a validator given in code", () => {
    const d = new PiiDetector(config, { validators: { qq: (m) => m !== "10000" } });
    assert.deepEqual(found("QQ 10000 QQ 10001", d), [["qq", "10001", "10001"]]);
    assert.throws(() => new PiiDetector(config, { validators: { nope: () => true } }), /no extra pattern/);
  });

  test("bad patterns, names and kinds are configuration errors that name the field", () => {
    assert.throws(
      () => parsePiiConfig({ extra: [{ name: "qq", pattern: "(" }] }),
      /extra\[0\]\.pattern: not a regular expression/,
    );
    assert.throws(() => parsePiiConfig({ extra: [{ name: "qq", pattern: "a*" }] }), /matches the empty string/);
    assert.throws(
      () => parsePiiConfig({ extra: [{ name: "phone", pattern: "x" }] }),
      /extra\[0\]\.name: is a built-in kind/,
    );
    assert.throws(() => parsePiiConfig({ extra: [{ name: "Q Q", pattern: "x" }] }), /extra\[0\]\.name/);
    assert.throws(
      () => parsePiiConfig({ fields: { AppLog: { whole: { "attributes.qq": "qq" } } } }),
      /fields\.AppLog\.whole\.attributes\.qq: unknown kind "qq"/,
    );
    assert.throws(() => parsePiiConfig({ phone: "yes" }), /phone/);
  });
});
