import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { CidrSet, networkOf, PrefixTable, parseAddress, parseCidr, StringSet, WordList } from "./matchers.ts";

describe("PrefixTable", () => {
  it("finds the longest matching prefix and its label", () => {
    const t = new PrefixTable("p", [
      ["170", "MVNO 170"],
      ["1700", "MVNO 1700"],
      ["14", "IoT"],
    ]);
    assert.equal(t.longest("17001234567"), "1700");
    assert.equal(t.label("17012345678"), "MVNO 170");
    assert.equal(t.label("14812345678"), "IoT");
    assert.equal(t.has("13812345678"), false);
    assert.equal(t.label("1"), "");
  });

  it("agrees with a scan of every prefix (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.stringMatching(/^[0-9]{1,5}$/), { maxLength: 30 }),
        fc.stringMatching(/^[0-9]{0,8}$/),
        (prefixes, value) => {
          const t = new PrefixTable(
            "p",
            prefixes.map((p) => [p, p] as const),
          );
          const expected = prefixes.filter((p) => value.startsWith(p)).sort((a, b) => b.length - a.length)[0];
          assert.equal(t.longest(value), expected);
        },
      ),
    );
  });
});

describe("CidrSet", () => {
  const set = new CidrSet("c", [
    ["47.100.0.0/16", "cloud"],
    ["47.100.3.0/24", "farm"],
    ["2408:4000::/22", "cloud v6"],
    ["10.1.2.3", "one host"],
  ]);

  it("answers the most specific IPv4 range", () => {
    assert.equal(set.lookup("47.100.3.7"), "farm");
    assert.equal(set.lookup("47.100.9.7"), "cloud");
    assert.equal(set.lookup("47.101.0.1"), undefined);
    assert.equal(set.lookup("10.1.2.3"), "one host");
  });

  it("answers IPv6, and IPv4-mapped IPv6 as IPv4", () => {
    assert.equal(set.lookup("2408:4001:abcd::1"), "cloud v6");
    assert.equal(set.lookup("2408:8207:1:2::5"), undefined);
    assert.equal(set.lookup("::ffff:47.100.3.9"), "farm");
  });

  it("says no for what is not an address", () => {
    for (const s of [
      "",
      "47.100.3",
      "47.100.3.256",
      "047.100.3.1",
      "x",
      "1:2:3:4:5:6:7:8:9",
      "::1::2",
      "a".repeat(100),
    ])
      assert.equal(set.lookup(s), undefined, s);
  });

  it("refuses a range with host bits set, a bad length, or garbage", () => {
    assert.equal(parseCidr("47.100.3.1/24"), undefined);
    assert.equal(parseCidr("47.100.0.0/33"), undefined);
    assert.equal(parseCidr("2408::/129"), undefined);
    assert.equal(parseCidr("nope/8"), undefined);
    assert.throws(() => new CidrSet("c", [["1.2.3.4/8", ""]]), /not a CIDR range/);
  });

  it("agrees with a direct containment test (property, IPv4)", () => {
    const octets = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
    fc.assert(
      fc.property(fc.array(fc.tuple(octets, fc.nat(32)), { maxLength: 20 }), octets, (ranges, addr) => {
        const toInt = (o: number[]) =>
          (o[0] as number) * 2 ** 24 + (o[1] as number) * 2 ** 16 + (o[2] as number) * 256 + (o[3] as number);
        const mask = (v: number, bits: number) =>
          bits === 0 ? 0 : Math.floor(v / 2 ** (32 - bits)) * 2 ** (32 - bits);
        const text = (v: number) =>
          `${Math.floor(v / 2 ** 24)}.${Math.floor(v / 65536) % 256}.${Math.floor(v / 256) % 256}.${v % 256}`;
        const nets = ranges.map(([o, bits]) => ({ net: mask(toInt(o), bits), bits }));
        const s = new CidrSet(
          "c",
          nets.map((n) => [`${text(n.net)}/${n.bits}`, String(n.bits)] as const),
        );
        const a = toInt(addr);
        const best = nets.filter((n) => mask(a, n.bits) === n.net).sort((x, y) => y.bits - x.bits)[0];
        assert.equal(s.lookup(text(a)), best ? String(best.bits) : undefined);
      }),
    );
  });

  it("names an address's network", () => {
    assert.equal(networkOf("47.100.3.77", 24), "47.100.3.0/24");
    assert.equal(networkOf("2408:8207:aa:bb::1", 64), "2408:8207:aa:bb::/64");
    assert.equal(networkOf("nonsense", 24), "");
    assert.deepEqual(parseAddress("::"), { v: 6, value: 0n });
  });
});

describe("WordList and StringSet", () => {
  it("finds every word of the list in a text, once each, in one pass", () => {
    const w = new WordList("w", ["加v", "微信", "qq"]);
    assert.deepEqual(w.find("加v微信 加v qq"), ["加v", "微信", "qq"]);
    assert.equal(w.has("主播好美"), false);
    assert.equal(new WordList("empty", []).has("x"), false);
  });

  it("matches numbers by their decimal form", () => {
    const s = new StringSet("s", ["100000042", "abc"]);
    assert.equal(s.has(100000042), true);
    assert.equal(s.has("abc"), true);
    assert.equal(s.has(1), false);
  });
});
