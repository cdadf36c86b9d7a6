// What the logs pipeline masks and where: the built-in kinds (phone, ID card, email, bank card) with
// their switches, extra patterns a team adds, and per record type the fields scanned for PII and the
// fields replaced whole. Read from YAML (the `pii:` part of the logs pipeline's file) and validated here.
import { readFileSync } from "node:fs";
import { z } from "zod";
import { parseYamlConfig, validateConfig } from "../../../schemas/config/yaml-config.ts";

/** The built-in kinds, and the short code each one's tokens carry: `pii:ph_…`. */
export const BUILTIN_KINDS = { phone: "ph", idCard: "id", email: "em", card: "bc" } as const;
export type BuiltinKind = keyof typeof BUILTIN_KINDS;

/** A kind is a built-in one or the name of an extra pattern. */
export type PiiKind = BuiltinKind | (string & {});

const RESERVED = new Set<string>([...Object.keys(BUILTIN_KINDS), ...Object.values(BUILTIN_KINDS)]);

const ExtraPattern = z
  .strictObject({
    /** Also the token's code: `pii:<name>_<hash>`, so short and lowercase. */
    name: z
      .string()
      .regex(
        /^[a-z][a-z0-9]{1,15}$/,
        "2 to 16 lowercase letters and digits, starting with a letter (it goes in the token)",
      )
      .refine((n) => !RESERVED.has(n), "is a built-in kind or code; choose another name"),
    /** A JavaScript regular expression; the whole match is masked. */
    pattern: z.string().min(1),
    /** Regular expression flags besides g, e.g. "i" or "u". */
    flags: z
      .string()
      .regex(/^[imsuy]*$/, "only the flags i, m, s, u, y (g is always on)")
      .default(""),
    /** A check every match must also pass. */
    validator: z.enum(["none", "luhn"]).default("none"),
    /** What the hash is computed over, so that spellings of one value get one token. */
    normalise: z.enum(["none", "digits", "lowercase"]).default("none"),
    /** Characters of the normalised value's end shown before the token (0: none). */
    keepLast: z.number().int().min(0).max(8).default(0),
  })
  .superRefine((p, ctx) => {
    try {
      const re = new RegExp(p.pattern, `g${p.flags}`);
      if (re.test("")) ctx.addIssue({ code: "custom", path: ["pattern"], message: "matches the empty string" });
    } catch (e) {
      ctx.addIssue({ code: "custom", path: ["pattern"], message: `not a regular expression: ${(e as Error).message}` });
    }
  });
export type ExtraPatternConfig = z.output<typeof ExtraPattern>;

/**
 * A field path in a record: `message`, `error.stack` (a field of a nested, possibly null, record),
 * `attributes.*` (every value of a map), `attributes.phone` (one key of a map).
 */
const FieldPath = z
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z0-9_@-][A-Za-z0-9_.@-]*|\*))?$/,
    "a field such as message, error.stack, attributes.* or attributes.phone",
  );

const RecordFields = z.strictObject({
  /** Fields whose text is scanned, every PII found in it masked. */
  scan: z.array(FieldPath).default([]),
  /** Fields replaced whole, whatever they hold, by a token of the given kind. */
  whole: z.record(FieldPath, z.string().min(1)).default({}),
  /** Fields holding a URL or a query string: scanned, each parameter percent-decoded first. */
  urls: z.array(FieldPath).default([]),
});
export type RecordFieldsConfig = z.output<typeof RecordFields>;

export const DEFAULT_RECORD_FIELDS: Record<string, RecordFieldsConfig> = {
  AppLog: {
    scan: ["message", "error.message", "error.stack", "attributes.*"],
    whole: {
      "attributes.phone": "phone",
      "attributes.mobile": "phone",
      "attributes.idCard": "idCard",
      "attributes.email": "email",
      "attributes.cardNo": "card",
    },
    urls: [],
  },
  AccessLog: { scan: ["userAgent"], whole: {}, urls: ["urlQuery", "referrer"] },
};

export const PiiConfigSchema = z
  .strictObject({
    phone: z.boolean().default(true),
    idCard: z
      .strictObject({
        enabled: z.boolean().default(true),
        /**
         * The 15-digit numbers issued until 2004 have no check digit: only a province and a date
         * tell them from other numbers, and about one random 15-digit number in eight passes. Off
         * unless the logs are known to hold them.
         */
        legacy15: z.boolean().default(false),
      })
      .default({ enabled: true, legacy15: false }),
    email: z.boolean().default(true),
    card: z
      .strictObject({
        enabled: z.boolean().default(true),
        /**
         * `known`: only numbers of a real issuer's prefix and length (Visa, Mastercard, UnionPay, ...).
         * `any`: every Luhn-valid 13-19 digit number, which is one in ten of all such numbers.
         */
        iin: z.enum(["known", "any"]).default("known"),
      })
      .default({ enabled: true, iin: "known" }),
    extra: z.array(ExtraPattern).default([]),
    /**
     * By record type (the Avro record's name): which fields are scanned and which are masked whole.
     * A record type not named keeps its defaults; `AccessLog: { scan: [] }` turns one off.
     */
    fields: z
      .record(z.string(), RecordFields)
      .default({})
      .transform((given) => ({ ...DEFAULT_RECORD_FIELDS, ...given })),
  })
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.extra.forEach((p, i) => {
      if (names.has(p.name)) ctx.addIssue({ code: "custom", path: ["extra", i, "name"], message: "used twice" });
      names.add(p.name);
    });
    for (const [record, f] of Object.entries(c.fields)) {
      for (const [path, kind] of Object.entries(f.whole)) {
        if (!(kind in BUILTIN_KINDS) && !names.has(kind)) {
          ctx.addIssue({
            code: "custom",
            path: ["fields", record, "whole", path],
            message: `unknown kind "${kind}": one of ${[...Object.keys(BUILTIN_KINDS), ...names].join(", ")}`,
          });
        }
      }
    }
  });

export type PiiConfig = z.output<typeof PiiConfigSchema>;
export type PiiConfigInput = z.input<typeof PiiConfigSchema>;

/** A configuration from an object (defaults filled in); a ConfigError names the field when it is wrong. */
export function parsePiiConfig(value: unknown = {}, file = "pii configuration"): PiiConfig {
  return validateConfig(file, PiiConfigSchema, value);
}

/** A configuration from a YAML file (its `pii:` key, or the whole document when it has none). */
export function loadPiiConfigFile(file: string): PiiConfig {
  const { value, locate } = parseYamlConfig(file, readFileSync(file, "utf8"));
  const hasKey = value !== null && typeof value === "object" && "pii" in value;
  const section = hasKey ? (value as { pii: unknown }).pii : value;
  return validateConfig(file, PiiConfigSchema, section ?? {}, (path) => locate(hasKey ? ["pii", ...path] : path));
}
