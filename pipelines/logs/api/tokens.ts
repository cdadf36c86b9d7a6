// Bearer tokens of the logs API. The server keeps only each token's SHA-256, its name (what logs and
// metrics show: never the token) and the services it may read. A file of hashes can be committed to a
// private config repository or mounted as a secret without handing out the tokens themselves.
//
//   tokens:
//     - name: oncall-gifting
//       sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
//       services: [gift-svc, pay-svc]
//     - name: sre
//       sha256: ...
//       services: "*"
//
// Tokens are random (`weir logs token` makes one), so a plain SHA-256 is enough: there is nothing to
// guess that a slow hash would protect.
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { parseYamlConfig, validateConfig } from "../../../schemas/config/yaml-config.ts";
import type { ServiceScope } from "../search/scope.ts";

export const TOKENS_FILE_ENV = "WEIR_LOGS_TOKENS_FILE";
/** The same YAML as the file, in the variable itself (containers without a mounted file). */
export const TOKENS_ENV = "WEIR_LOGS_TOKENS";

const TokenEntry = z.strictObject({
  name: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/,
      "a name of letters, digits and _ . @ - (shown in logs, so never the token)",
    ),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "the token's SHA-256 as 64 hex digits (`weir logs token` prints it)")
    .transform((h) => h.toLowerCase()),
  services: z.union([
    z.literal("*"),
    z.array(z.string().min(1, "a service name")).min(1, 'list at least one service, or "*" for all'),
  ]),
});

export const TokensFileSchema = z
  .strictObject({ tokens: z.array(TokenEntry).min(1, "list at least one token") })
  .superRefine((file, ctx) => {
    const names = new Map<string, number>();
    const hashes = new Map<string, number>();
    file.tokens.forEach((t, i) => {
      const sameName = names.get(t.name);
      if (sameName !== undefined)
        ctx.addIssue({ code: "custom", path: ["tokens", i, "name"], message: `also the name of tokens[${sameName}]` });
      names.set(t.name, i);
      const sameHash = hashes.get(t.sha256);
      if (sameHash !== undefined)
        ctx.addIssue({
          code: "custom",
          path: ["tokens", i, "sha256"],
          message: `the same token as tokens[${sameHash}]`,
        });
      hashes.set(t.sha256, i);
    });
  });

/** A token the server accepts: its name and the services it may read. */
export interface ApiToken {
  name: string;
  scope: ServiceScope;
}

export type Authentication =
  | { ok: true; token: ApiToken }
  /** missing: no Authorization header; malformed: not `Bearer <token>`; unknown: no such token. */
  | { ok: false; reason: "missing" | "malformed" | "unknown" };

export class TokensError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = "TokensError";
  }
}

/** The hex SHA-256 of a token, as the tokens file holds it. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** A new random token: `wlt_` and 32 random bytes, base64url. */
export function newToken(): string {
  return `wlt_${randomBytes(32).toString("base64url")}`;
}

export class TokenStore {
  private readonly byHash: Map<string, ApiToken>;

  constructor(tokens: ReadonlyArray<{ sha256: string; name: string; services: "*" | readonly string[] }>) {
    this.byHash = new Map(
      tokens.map((t) => [
        t.sha256.toLowerCase(),
        { name: t.name, scope: t.services === "*" ? "all" : [...t.services] },
      ]),
    );
  }

  /** Parses and checks the YAML of a tokens file; errors name the file, line and field. */
  static parse(text: string, file: string): TokenStore {
    const { value, locate } = parseYamlConfig(file, text);
    return new TokenStore(validateConfig(file, TokensFileSchema, value, locate).tokens);
  }

  /** The tokens from WEIR_LOGS_TOKENS_FILE (a file) or WEIR_LOGS_TOKENS (its text); one of them must be set. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env, file?: string): TokenStore {
    const path = file ?? env[TOKENS_FILE_ENV];
    const inline = env[TOKENS_ENV];
    if (path && inline && file === undefined) {
      throw new TokensError(
        `both ${TOKENS_FILE_ENV} and ${TOKENS_ENV} are set`,
        "unset one: tokens come from exactly one place",
      );
    }
    if (path) {
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch (e) {
        throw new TokensError(
          `cannot read the tokens file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
          `point ${TOKENS_FILE_ENV} (or --tokens) at a readable YAML file of token hashes`,
        );
      }
      return TokenStore.parse(text, path);
    }
    if (inline) return TokenStore.parse(inline, TOKENS_ENV);
    throw new TokensError(
      "the logs API needs tokens and none are configured",
      `make one with \`weir logs token --name <who> [--service s]\`, put the printed entry in a YAML file and set ${TOKENS_FILE_ENV} to it (or pass --tokens)`,
    );
  }

  get size(): number {
    return this.byHash.size;
  }

  /** Who an `Authorization` header is. */
  authenticate(header: string | undefined): Authentication {
    if (header === undefined || header === "") return { ok: false, reason: "missing" };
    const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
    if (!m) return { ok: false, reason: "malformed" };
    // A map lookup by hash: timing tells at most how a hash of the guess compares, which says nothing of a token.
    const token = this.byHash.get(hashToken(m[1] as string));
    return token ? { ok: true, token } : { ok: false, reason: "unknown" };
  }
}
