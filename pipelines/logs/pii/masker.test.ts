import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";
import { ConfigError } from "../../../schemas/config/yaml-config.ts";
import { SchemaRegistry } from "../../../schemas/registry.ts";
import type { AccessLog, AppLog } from "../../../schemas/types.generated.ts";
import { PiiKey } from "./key.ts";
import { compileMasker, PiiMasker, type RecordSchema } from "./masker.ts";
import { piiToken, TOKEN_PATTERN } from "./token.ts";

const KEY_TEXT = "weir-test-key-0123456789abcdef0123456789";
const key = new PiiKey(KEY_TEXT, "given");
const otherKey = new PiiKey("another-key-0123456789abcdef0123456789", "given");

function tokensIn(s: string): string[] {
  return [...s.matchAll(/\[(pii:[a-z0-9]+_[0-9a-f]{16})\]/g)].map((m) => m[1] as string);
}

describe("masking text", () => {
  const masker = new PiiMasker({}, key);

  test("a value becomes what a human may see of it and its token", () => {
    assert.equal(
      masker.maskText("call 13800138000 now"),
      `call 138****8000[${piiToken("phone", "13800138000", key)}] now`,
    );
    assert.match(masker.maskText("id 11010519491231002X"), /^id 110105\*{12}\[pii:id_[0-9a-f]{16}\]$/);
    assert.match(masker.maskText("mail Bob@Example.com"), /^mail b\*\*\*@example\.com\[pii:em_[0-9a-f]{16}\]$/);
    assert.match(masker.maskText("card 4111 1111 1111 1111"), /^card \*{4}1111\[pii:bc_[0-9a-f]{16}\]$/);
  });

  test("the token is the first 64 bits of HMAC-SHA256(key, code:normalised), the same in every process", () => {
    const expected = createHmac("sha256", KEY_TEXT).update("ph:13800138000").digest("hex").slice(0, 16);
    assert.equal(piiToken("phone", "13800138000", key), `pii:ph_${expected}`);
    // Pinned: a change of the format or the hashing would orphan every token already stored.
    assert.equal(piiToken("phone", "13800138000", key), "pii:ph_6cecbd2c8d965364");
    assert.equal(piiToken("email", "bob@example.com", key), "pii:em_bf894ebffbbfd153");
    assert.match(piiToken("card", "4111111111111111", key), TOKEN_PATTERN);
  });

  test("every spelling of a value gets one token; another key gives other tokens", () => {
    const phones = ["13800138000", "+86 138 0013 8000", "138-0013-8000", "+86-138-0013-8000", "008613800138000"];
    const tokens = new Set(phones.map((p) => tokensIn(masker.maskText(`tel ${p}`))[0]));
    assert.deepEqual([...tokens], [piiToken("phone", "13800138000", key)]);
    for (const p of phones) assert.equal(piiToken("phone", p, key), piiToken("phone", "13800138000", key), p);
    assert.equal(tokensIn(masker.maskText("BOB@Example.COM"))[0], piiToken("email", "bob@example.com", key));
    assert.equal(tokensIn(masker.maskText("11010519491231002x"))[0], piiToken("idCard", "11010519491231002X", key));
    assert.equal(tokensIn(masker.maskText("4111-1111-1111-1111"))[0], piiToken("card", "4111111111111111", key));
    const legacy = new PiiMasker({ idCard: { legacy15: true } }, key);
    assert.equal(tokensIn(legacy.maskText("110105491231002"))[0], piiToken("idCard", "11010519491231002X", key));
    assert.equal(piiToken("idCard", "110105491231002", key), piiToken("idCard", "11010519491231002X", key));
    assert.notEqual(piiToken("phone", "13800138000", otherKey), piiToken("phone", "13800138000", key));
    assert.equal(new PiiMasker({}, key).token("phone", "+86 13800138000"), piiToken("phone", "13800138000", key));
  });

  test("nothing of a raw value is left but what the display shows", () => {
    const out = masker.maskText("a 13800138000 b 11010519491231002X c 6222021234567890128 d bob.smith@example.com");
    for (const raw of ["13800138000", "00138", "19491231", "1234567890", "bob.smith"])
      assert.ok(!out.includes(raw), raw);
  });

  test("text without PII comes back unchanged, and masked text masked again does not change", () => {
    for (const line of ["handled GET /gift/list status=200 in 6 ms", "", "ts=1795177800175", "无"]) {
      assert.equal(masker.maskText(line), line);
    }
    for (const line of [
      "tel +86 138 0013 8000 and 17012345678",
      "id 110105 19491231 002X",
      "mail bob@example.com; card 4111111111111111",
    ]) {
      const once = masker.maskText(line);
      assert.notEqual(once, line);
      assert.equal(masker.maskText(once), once, line);
    }
  });

  describe("mobile numbers written to dodge word filters", () => {
    const plain = `138****8000[${piiToken("phone", "13800138000", key)}]`;
    const disguised: [string, string][] = [
      ["Chinese numerals", "联系一三八零零一三八零零零"],
      ["幺 for 1 and 〇 for 0", "联系幺三八〇〇幺三八〇〇〇"],
      ["full-width digits", "联系１３８００１３８０００"],
      ["full-width, +86 and dashes", "联系＋８６－１３８－００１３－８０００"],
      ["a space between every digit", "联系 1 3 8 0 0 1 3 8 0 0 0"],
      ["spaced digits after +86", "联系 +8 6-1 3 8-0 0 1 3-8 0 0 0"],
      ["dots", "联系 138.0013.8000"],
      ["full-width spaces", "联系\u3000138\u30000013\u30008000"],
      ["spaced Chinese numerals", "联系 一 三 八 零 零 一 三 八 零 零 零 免费"],
      ["mixed forms", "联系 +八六 1三8 ００13 - 八000。"],
      ["grouped oddly", "联系 1380 013 8000"],
      ["0086 in Chinese numerals", "联系〇〇八六一三八零零一三八零零零"],
      ["86 set apart", "联系 八六 一三八零零一三八零零零"],
    ];
    for (const [how, line] of disguised) {
      test(`${how}: masked, with the plain number's token`, () => {
        const out = masker.maskText(line);
        assert.ok(out.endsWith(plain) || out.includes(`${plain} `) || out.includes(`${plain}。`), `${line} -> ${out}`);
        assert.equal(tokensIn(out).length, 1, out);
        assert.equal(masker.maskText(out), out); // masking again changes nothing
        assert.equal(piiToken("phone", line.replace(/^联系/, ""), key), piiToken("phone", "13800138000", key));
      });
    }

    test("only the number is replaced: the +86 written before it too, the text around it kept", () => {
      assert.equal(masker.maskText("加V 联系＋８６１３８００１３８０００ 领福利"), `加V 联系${plain} 领福利`);
      assert.equal(masker.maskText("我电话换了，新号 一三八 零零一三 八零零零"), `我电话换了，新号 ${plain}`);
      assert.equal(
        masker.maskText("13800138000 1 3 9 0 0 1 3 9 0 0 0"),
        `${plain} 139****9000[${piiToken("phone", "13900139000", key)}]`,
      );
      assert.equal(masker.maskValue("phone", "一三八零零一三八零零零"), plain);
    });

    test("near misses are left alone", () => {
      for (const line of [
        "联系一三八零零一三八零零", // 10 digits
        "联系 1 3 8 0 0 1 3 8 0 0", // 10 spaced digits
        "联系一三八零零一三八零零零零", // 12
        "联系 1 3 8 0 0 1 3 8 0 0 0 1",
        "QQ群一二三四五六七八九 免费送钻石", // a QQ group: 9 digits
        "ＱＱ群１２３４５６７８９ 免费送钻石",
        "QQ群1 2 3 4 5 6 7 8 9 免费送钻石",
        "QQ 1234567890", // 10 digits
        "ref 八六一三八零零一三八零零零", // 86 and 11 digits with no + and not set apart, as 8613800138000 is left
        "一二三四五六七八九十一", // counting, 十 is no digit
        "第一三八零零一三八零零零万", // a number of 万
        "一二〇〇一三八零零零零元", // 12 numerals (as read aloud: 1 2 0 0 1 3 8 0 0 0 0 ...): 11 of them do not start 1[3-9]
        "二〇二六年十一月二十日 一三点半",
        "2026-11-20 13:45:00.138",
        "2026.11.20 13.80 元",
        "价格 ¥138.00，原价 1380.01 3800 件",
        "vx:wx_1a3f8c 看私密视频",
        "uid 1 3 8 0 0 1 3 8 0 0 0x",
        "v1.3.8.0.0.1.3.8.0.0.0",
        "http://t.cn/1380013800",
        "订单 ２０２６１１２０ 已发货",
        "全场一折 三八节 零点开抢 一三八元",
        // IPv4 addresses whose 11 digits read as a mobile number: the simulator's clients are in 183.192.0.0/16
        "client 183.192.247.56 connected",
        "upstream 139.224.221.36:443 timed out",
        "x-forwarded-for: 10.0.0.1, 183.192.85.126",
        "183.192.13.188",
      ]) {
        assert.equal(masker.maskText(line), line, line);
      }
    });

    test("a run of digits and separators as long as one likes is passed in linear time", () => {
      const long = `${"1 ".repeat(200_000)}x${"一-".repeat(200_000)}`;
      const t0 = process.hrtime.bigint();
      assert.equal(masker.maskText(long), long);
      assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 2000, "took over 2 s");
    });
  });

  test("counts by kind, taken and reset", () => {
    const m = new PiiMasker({}, key);
    m.maskText("13800138000 17012345678 bob@example.com");
    m.maskValue("phone", "13800138001");
    assert.deepEqual(m.takeCounts(), { phone: 3, idCard: 0, email: 1, card: 0 });
    assert.deepEqual(m.counts, { phone: 0, idCard: 0, email: 0, card: 0 });
  });
});

describe("masking a whole value", () => {
  const masker = new PiiMasker(
    { extra: [{ name: "qq", pattern: "QQ ?[0-9]{5,11}", normalise: "digits", keepLast: 2 }] },
    key,
  );

  test("normalised by its kind, so it matches the same value found in text", () => {
    assert.equal(masker.maskValue("phone", "+86 138 0013 8000"), masker.maskText("13800138000"));
    assert.equal(masker.maskValue("email", " Bob@Example.com "), masker.maskText("bob@example.com"));
    assert.match(
      masker.maskValue("phone", "n/a"),
      /^\*{4}\[pii:ph_[0-9a-f]{16}\]$/,
      "whatever the field holds is hidden",
    );
  });

  test("empty and already masked values stay; an unknown kind is an error", () => {
    assert.equal(masker.maskValue("phone", ""), "");
    const masked = masker.maskValue("phone", "13800138000");
    assert.equal(masker.maskValue("phone", masked), masked);
    assert.throws(() => masker.maskValue("ssn", "x"), /unknown PII kind "ssn"/);
  });

  test("extra patterns: their own token code, normalisation and the characters they keep", () => {
    assert.match(masker.maskText("加QQ 123456789"), /^加\*\*\*89\[pii:qq_[0-9a-f]{16}\]$/);
    assert.equal(tokensIn(masker.maskText("QQ123456789"))[0], masker.token("qq", "QQ 123456789"));
  });
});

describe("masking records", () => {
  const registry = SchemaRegistry.load();
  const appLog = registry.current("AppLog").schema as unknown as RecordSchema;
  const accessLog = registry.current("AccessLog").schema as unknown as RecordSchema;
  const masker = new PiiMasker({}, key);

  function appRecord(): AppLog {
    return {
      id: "f:1",
      ts: 1795177800000,
      service: "user-svc",
      host: "user-svc-1",
      level: "ERROR",
      message: "register failed for 13800138000",
      logger: "com.live.user.13800138000", // not scanned by default
      traceId: "13800138000",
      spanId: null,
      error: {
        type: "IllegalStateException",
        message: "duplicate bob@example.com",
        stack: "at x\n card 4111111111111111",
      },
      attributes: { phone: "+86 170 1234 5678", note: "call 13800138000", uid: "100043296", mobile: "" },
      source: null,
    };
  }

  test("the default AppLog fields: message, error message and stack, attributes scanned, phone attributes masked whole", () => {
    const mask = compileMasker<AppLog>(appLog, masker);
    const rec = appRecord();
    assert.equal(mask(rec), rec, "in place");
    assert.equal(rec.message, masker.maskText("register failed for 13800138000"));
    assert.equal(rec.error?.message, masker.maskText("duplicate bob@example.com"));
    assert.match(rec.error?.stack ?? "", /card \*{4}1111\[pii:bc_/);
    assert.equal(rec.attributes.phone, masker.maskValue("phone", "17012345678"));
    assert.equal(rec.attributes.note, masker.maskText("call 13800138000"));
    assert.equal(rec.attributes.uid, "100043296");
    assert.equal(rec.attributes.mobile, "");
    assert.equal(rec.logger, "com.live.user.13800138000");
    assert.equal(rec.traceId, "13800138000");
    const nullError = { ...appRecord(), error: null };
    assert.doesNotThrow(() => mask(nullError));
  });

  test("AccessLog: the user agent, the query string and the referrer, their parameters decoded", () => {
    const mask = compileMasker<AccessLog>(accessLog, masker);
    const rec = {
      userAgent: "live-android/8.4.1 (tel 13800138000)",
      clientIp: "111.200.107.138",
      urlQuery: "from=feed&phone=%2B86%20138%200013%208000&mail=bob%40example.com&v=8.4.1",
      referrer: "https://live.example.com/invite?by=13800138000&x=%E4%B8%AD#top",
    } as AccessLog;
    mask(rec);
    assert.equal(rec.userAgent, masker.maskText("live-android/8.4.1 (tel 13800138000)"));
    const phone = masker.maskValue("phone", "13800138000");
    const mail = masker.maskText("bob@example.com");
    assert.equal(rec.urlQuery, `from=feed&phone=${phone}&mail=${mail}&v=8.4.1`);
    assert.equal(rec.referrer, `https://live.example.com/invite?by=${phone}&x=%E4%B8%AD#top`, "the rest as it came");
    const again = { ...rec };
    mask(again);
    assert.deepEqual(again, rec, "masking twice changes nothing");
    // A phone's "+86" sent unescaped: "+" read as a space hides the number, so it is read as it came too.
    const plus = { urlQuery: "by=+8613800138000&from=share", referrer: null } as AccessLog;
    mask(plus);
    assert.equal(plus.urlQuery, `by=${phone}&from=share`);
    const plain = { urlQuery: "a=%ZZ&b=1+2", referrer: "https://x.example/p%20q" } as AccessLog;
    mask(plain);
    assert.deepEqual([plain.urlQuery, plain.referrer], ["a=%ZZ&b=1+2", "https://x.example/p%20q"], "untouched");
    mask({ userAgent: null, urlQuery: null, referrer: null } as AccessLog);
  });

  test("chosen keys of a map, whole or scanned, and a nested record's field", () => {
    const mask = compileMasker<AppLog>(appLog, masker, {
      scan: ["attributes.note", "attributes.phone"],
      whole: { "attributes.phone": "phone", "error.type": "email" },
    });
    const rec = appRecord();
    mask(rec);
    assert.equal(rec.attributes.phone, masker.maskValue("phone", "+86 170 1234 5678"));
    assert.equal(rec.attributes.note, masker.maskText("call 13800138000"));
    assert.equal(rec.message, "register failed for 13800138000", "not configured");
    assert.match(rec.error?.type ?? "", /^\*\*\*\[pii:em_/);
  });

  test("configured record types replace their defaults; the others keep theirs", () => {
    const m = new PiiMasker({ fields: { AppLog: { scan: ["message"] } } }, key);
    assert.deepEqual(m.config.fields.AppLog, { scan: ["message"], whole: {}, urls: [] });
    assert.deepEqual(m.config.fields.AccessLog, { scan: ["userAgent"], whole: {}, urls: ["urlQuery", "referrer"] });
    const rec = appRecord();
    compileMasker<AppLog>(appLog, m)(rec);
    assert.equal(rec.attributes.phone, "+86 170 1234 5678", "no longer masked whole");
    assert.notEqual(rec.message, appRecord().message);
  });

  test("paths that do not fit the schema fail when compiled, each named", () => {
    assert.throws(
      () =>
        compileMasker(appLog, masker, {
          scan: ["mesage", "attributes", "error.trace", "level", "message.x"],
          whole: { "attributes.phone": "ssn" },
        }),
      (e: unknown) =>
        e instanceof ConfigError &&
        /has no field "mesage"/.test(e.message) &&
        /attributes: a map; name a key/.test(e.message) &&
        /error\.trace: AppLog\.error has no string field "trace"/.test(e.message) &&
        /level: AppLog\.level holds no text/.test(e.message) &&
        /message\.x: message is a string/.test(e.message) &&
        /unknown kind "ssn"/.test(e.message),
    );
    assert.throws(() => compileMasker({ name: "Other", fields: [] }, masker), /no fields configured for Other/);
    assert.throws(
      () => compileMasker(accessLog, masker, { scan: ["urlQuery"], whole: {}, urls: ["urlQuery", "status"] }),
      (e: unknown) =>
        e instanceof ConfigError &&
        /urlQuery is also scanned/.test(e.message) &&
        /urls: status: AccessLog has no string field/.test(e.message),
    );
  });
});
