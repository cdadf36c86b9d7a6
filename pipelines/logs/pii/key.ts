// The secret the PII tokens are keyed with. The same key gives the same token for a value in every
// process and after every restart, which is what makes masked lines searchable; without the key a
// token cannot be turned back into the value, nor a guessed phone number into its token.
//
// Where it comes from: WEIR_PII_KEY (the key itself) or WEIR_PII_KEY_FILE (a file holding it, e.g. a
// mounted secret). Without either, weir refuses to start, except when WEIR_ENV=development, which
// selects a fixed, public development key: tokens made with it protect nothing.
import { readFileSync } from "node:fs";
import { inspect } from "node:util";

/** At least 32 bytes: HMAC-SHA256 gains nothing from more, and a short key can be brute-forced. */
export const MIN_KEY_BYTES = 32;

/** Public on purpose: only for WEIR_ENV=development, so that a laptop needs no setup. */
const DEVELOPMENT_KEY = "weir-development-pii-key: not secret, never use it in production";

export type PiiKeySource = "WEIR_PII_KEY" | "WEIR_PII_KEY_FILE" | "development default" | "given";

export class PiiKeyError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = "PiiKeyError";
  }
}

/**
 * The key's bytes, kept out of logs: printing, inspecting or serialising a PiiKey shows where it came
 * from, never the key.
 */
export class PiiKey {
  readonly #bytes: Buffer;

  constructor(
    bytes: Buffer | string,
    readonly source: PiiKeySource,
  ) {
    const b = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : Buffer.from(bytes);
    if (b.length < MIN_KEY_BYTES) {
      throw new PiiKeyError(
        `the PII key from ${source} is ${b.length} bytes; it needs at least ${MIN_KEY_BYTES}`,
        "generate one with `openssl rand -hex 32`",
      );
    }
    this.#bytes = b;
  }

  /** The raw bytes, for the HMAC only. */
  bytes(): Buffer {
    return this.#bytes;
  }

  /** Development keys are marked so that a process can say loudly that it runs with one. */
  get isDevelopment(): boolean {
    return this.source === "development default";
  }

  toString(): string {
    return `PiiKey(${this.source})`;
  }

  toJSON(): string {
    return this.toString();
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * The key from the environment: WEIR_PII_KEY, or the contents of WEIR_PII_KEY_FILE (one trailing
 * newline ignored). Setting both is a mistake (which one would win?). Neither: an error, unless
 * WEIR_ENV is `development`.
 */
export function loadPiiKey(env: NodeJS.ProcessEnv = process.env): PiiKey {
  const inline = env.WEIR_PII_KEY;
  const file = env.WEIR_PII_KEY_FILE;
  if (inline && file) {
    throw new PiiKeyError(
      "both WEIR_PII_KEY and WEIR_PII_KEY_FILE are set",
      "unset one of them: the key must come from exactly one place",
    );
  }
  if (inline) return new PiiKey(inline, "WEIR_PII_KEY");
  if (file) {
    let text: Buffer;
    try {
      text = readFileSync(file);
    } catch (e) {
      throw new PiiKeyError(
        `cannot read the PII key file WEIR_PII_KEY_FILE=${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        "point WEIR_PII_KEY_FILE at a readable file that holds the key",
      );
    }
    let end = text.length;
    if (end > 0 && text[end - 1] === 0x0a) end--;
    if (end > 0 && text[end - 1] === 0x0d) end--;
    return new PiiKey(text.subarray(0, end), "WEIR_PII_KEY_FILE");
  }
  if (env.WEIR_ENV === "development") return new PiiKey(DEVELOPMENT_KEY, "development default");
  throw new PiiKeyError(
    "no PII key: logs cannot be masked without one",
    "set WEIR_PII_KEY_FILE to a file holding the key (e.g. `openssl rand -hex 32 > pii.key`) or WEIR_PII_KEY; on a laptop, WEIR_ENV=development uses a public development key",
  );
}
