// Settings shared by the fuzz tests. CI runs a bounded number of inputs from a fixed seed, so a
// failure reproduces; `npm run test:chaos` (or WEIR_FUZZ_RUNS / WEIR_FUZZ_SEED) runs more, from any
// seed. fast-check prints the seed and the shrunk counterexample of a failing property.
import fc from "fast-check";

const runs = Number(process.env.WEIR_FUZZ_RUNS || "0");
const seed = process.env.WEIR_FUZZ_SEED ? Number(process.env.WEIR_FUZZ_SEED) : 21;

/** The fast-check parameters of a property: `ciRuns` inputs by default, WEIR_FUZZ_RUNS when set. */
export function fuzzParams(ciRuns: number): fc.Parameters<unknown> {
  return {
    numRuns: Number.isInteger(runs) && runs > 0 ? runs : ciRuns,
    seed: Number.isInteger(seed) ? seed : 21,
    endOnFailure: true,
    includeErrorInReport: true,
  };
}

/** How long one input may take before it counts as a hang (generous: the machine is shared). */
export const INPUT_BUDGET_MS = 2_000;

/** Runs `fn` and fails when it took longer than the budget: a decoder must not stall on one input. */
export function bounded<T>(what: string, fn: () => T, budgetMs = INPUT_BUDGET_MS): T {
  const began = performance.now();
  const out = fn();
  const took = performance.now() - began;
  if (took > budgetMs) throw new Error(`${what} took ${took.toFixed(0)} ms (budget ${budgetMs} ms)`);
  return out;
}

/**
 * A text and edits to it: characters inserted, removed, replaced, a slice repeated, the text cut.
 * Mutating valid inputs reaches far deeper into a parser than random text does.
 */
export function mutated(valid: fc.Arbitrary<string>, alphabet?: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const piece = fc.oneof(
    alphabet ??
      fc.constantFrom(
        '"',
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\\",
        "\n",
        "\t",
        " ",
        "-",
        "#",
        "'",
        "&",
        "*",
        "|",
        ">",
        "0",
        "\u0000",
        "\u00e9",
        "\ud83d\ude00",
        "\ud800",
      ),
    fc.string({ maxLength: 8 }),
    fc.string({ unit: "binary", maxLength: 8 }),
  );
  const edit = fc.oneof(
    fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: piece }),
    fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), text: piece }),
    fc.record({
      kind: fc.constant("repeat" as const),
      at: fc.nat(),
      n: fc.integer({ min: 1, max: 32 }),
      times: fc.integer({ min: 2, max: 50 }),
    }),
    fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  );
  return fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 6 })).map(([text, edits]) => {
    let s = text;
    for (const e of edits) {
      const at = s.length === 0 ? 0 : e.at % (s.length + 1);
      if (e.kind === "insert") s = s.slice(0, at) + e.text + s.slice(at);
      else if (e.kind === "delete") s = s.slice(0, at) + s.slice(at + e.n);
      else if (e.kind === "replace") s = s.slice(0, at) + e.text + s.slice(at + e.text.length);
      else if (e.kind === "repeat") s = s.slice(0, at) + s.slice(at, at + e.n).repeat(e.times) + s.slice(at + e.n);
      else s = s.slice(0, at);
    }
    return s;
  });
}

/** Bytes: a mutated valid buffer (bits flipped, bytes inserted, cut) or random bytes. */
export function mutatedBytes(valid: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  const edit = fc.oneof(
    fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({
      kind: fc.constant("set" as const),
      at: fc.nat(),
      byte: fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff),
    }),
    fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 12 }) }),
    fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  );
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([buf, edits]) => {
        let b = Buffer.from(buf);
        for (const e of edits) {
          const at = b.length === 0 ? 0 : e.at % b.length;
          if (e.kind === "flip" && b.length > 0) b[at] = (b[at] as number) ^ (1 << e.bit);
          else if (e.kind === "set" && b.length > 0) b[at] = e.byte;
          else if (e.kind === "insert") b = Buffer.concat([b.subarray(0, at), Buffer.from(e.bytes), b.subarray(at)]);
          else if (e.kind === "delete") b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.n)]);
          else if (e.kind === "cut") b = b.subarray(0, at);
        }
        return b;
      }),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
  );
}

/** JSON nested up to `depth` levels, as text (deeper than any real log line, shallower than a limit). */
export function nestedJson(depth: number): fc.Arbitrary<string> {
  return fc
    .tuple(fc.integer({ min: 1, max: depth }), fc.boolean(), fc.jsonValue({ maxDepth: 2 }))
    .map(([d, arrays, leaf]) => {
      let s = JSON.stringify(leaf);
      for (let i = 0; i < d; i++) s = arrays ? `[${s}]` : `{"k${i}":${s}}`;
      return s;
    });
}
