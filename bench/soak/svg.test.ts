import assert from "node:assert/strict";
import { test } from "node:test";
import { escapeXml, plotSvg, ticks } from "./svg.ts";

test("ticks are round steps from 0 that cover the maximum", () => {
  assert.deepEqual(ticks(10), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(ticks(0.9), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(ticks(437), [0, 100, 200, 300, 400, 500]);
  assert.deepEqual(ticks(30, 10), [0, 5, 10, 15, 20, 25, 30]);
  assert.deepEqual(ticks(0), [0, 1]);
  assert.deepEqual(ticks(Number.NaN), [0, 1]);
  for (const max of [1, 3, 7.5, 99, 12345, 2.5e6]) {
    const t = ticks(max);
    assert.ok((t.at(-1) as number) >= max, `${max}: ${t}`);
    assert.ok(t.length <= 12, `${max}: ${t.length} ticks`);
  }
});

test("the plot: one polyline per series, scaled into its panel, names escaped", () => {
  const MiB = 1048576;
  const svg = plotSvg(
    "soak <test> & co",
    [
      {
        title: "resident memory",
        unit: "MiB",
        scale: MiB,
        marks: [{ t: 60, label: "warm-up ends" }],
        series: [
          {
            name: "health",
            points: [
              { t: 0, v: 100 * MiB },
              { t: 120, v: 200 * MiB },
            ],
          },
          { name: 'evil"<script>', points: [{ t: 60, v: 50 * MiB }] },
          { name: "never sampled", points: [] },
        ],
      },
      { title: "lag", unit: "records", scale: 1, series: [{ name: "logs", points: [{ t: 0, v: 5 }] }] },
    ],
    120,
  );
  assert.ok(svg.startsWith("<svg xmlns="));
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  assert.equal((svg.match(/<polyline /g) ?? []).length, 3, "a series without points draws no line");
  assert.ok(!svg.includes("<script>"));
  assert.ok(svg.includes(escapeXml('evil"<script>')));
  assert.ok(svg.includes("soak &#60;test&#62; &#38; co"));
  assert.ok(svg.includes("warm-up ends"));
  // The health line runs from the left edge to the right one, from 100 to 200 of the axis' 250 MiB
  // (the top tick above 210, the maximum with 5% headroom), in a 260-pixel panel whose top is y=64.
  const points = /<polyline [^>]*points="([^"]+)"/.exec(svg)?.[1]?.split(" ") ?? [];
  const [x0, y0] = (points[0] as string).split(",").map(Number) as [number, number];
  const [x1, y1] = (points[1] as string).split(",").map(Number) as [number, number];
  assert.deepEqual([x0, x1], [70, 900 - 190]);
  assert.deepEqual([y0, y1], [64 + 260 - (100 / 250) * 260, 64 + 260 - (200 / 250) * 260]);
});

test("escapeXml leaves no markup", () => {
  assert.equal(escapeXml(`<a href="x">'&'</a>`), "&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;");
});
