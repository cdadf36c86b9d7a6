// The options every batching sink shares, as zod schemas a sink's own schema is built from.
import { z } from "zod";
import { type Duration, ms } from "../../stream/types.ts";

/** A duration as ms or text (`250ms`, `1s`, `1h`), read into ms. */
export const DurationSchema = z.union([z.number().nonnegative(), z.string()]).transform((d, ctx) => {
  try {
    return ms(d as Duration);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
    return z.NEVER;
  }
});

/**
 * How a sink retries what failed for a passing reason (the store unreachable, restarting, overloaded).
 * Unbounded by default, as Logstash's and Vector's outputs do: an outage of any length is waited out
 * (the checkpoint holds the offsets meanwhile and /health says so), the wait between tries doubling up
 * to `maxDelay`. `max` bounds it for who would rather have the worker stop, loudly and with nothing
 * committed past what the store has, than wait.
 */
export const RetriesSchema = z
  .strictObject({
    /** Tries of a batch after its first one, counted across its requests; then flush() rejects. Unset: unbounded. */
    max: z.number().int().min(0).optional(),
    initialDelay: DurationSchema.default(200),
    maxDelay: DurationSchema.default(15_000),
  })
  .prefault({});

export type Retries = z.output<typeof RetriesSchema>;

/** Parses a sink's options, or throws a TypeError naming each option that is wrong. */
export function parseOptions<S extends z.ZodType>(kind: string, schema: S, options: unknown): z.output<S> {
  const parsed = schema.safeParse(options);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`);
  throw new TypeError(`${kind}: invalid options: ${problems.join("; ")}`);
}
