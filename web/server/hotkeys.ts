// The Hot keys page's API: the latest top-K list of each dimension and window as `weir run hotkeys`
// publishes them to hotkeys.top, and the marks in force (hotkeys.marks), followed by a HotKeysClient of
// this process (as `weir hotkeys serve` does); marking and unmarking a key by hand writes the same
// HotKeyMark records as `weir hotkeys mark` and `unmark`, with the token's name as who marked it.
//
// Hot keys belong to no service (rooms, streamers, users): a token limited to services reads none of it.
import type { HotKeysClient } from "../../pipelines/hotkeys/client/hot-keys-client.ts";
import {
  buildMark,
  MAX_MARK_MS,
  MAX_REASON_LENGTH,
  markKey,
  markProblem,
  unmarkKey,
} from "../../pipelines/hotkeys/client/marks.ts";
import { DimensionName } from "../../pipelines/hotkeys/config.ts";
import { HttpError } from "../../pipelines/logs/api/server.ts";
import { ms } from "../../stream/types.ts";
import { type ConsoleRoute, type RouteContext, readJsonBody } from "./console-server.ts";

export interface HotKeysConsoleOptions {
  client: HotKeysClient;
  brokers: string[];
  marksTopic?: string;
}

export function hotKeysRoutes(options: HotKeysConsoleOptions): ConsoleRoute[] {
  const { client } = options;
  const target = { brokers: options.brokers, ...(options.marksTopic ? { topic: options.marksTopic } : {}) };
  const guard = (ctx: RouteContext) => {
    if (ctx.services !== undefined) {
      throw new HttpError(
        403,
        "forbidden",
        "hot keys belong to no service: a token limited to services cannot read them",
        "use a token for all services (weir logs token --services '*')",
      );
    }
  };
  const dimensionOf = (ctx: RouteContext): string => {
    const d = ctx.params[0] ?? "";
    if (!DimensionName.safeParse(d).success)
      throw new HttpError(400, "bad_request", "a dimension: letters, digits, '_', '.', '-' (1 to 64)");
    return d;
  };
  const keyOf = (body: Record<string, unknown>, dimension: string): string => {
    const key = body.key;
    if (typeof key !== "string") throw new HttpError(400, "bad_request", "key is missing", '{"key": "700018"}');
    const problem = markProblem(dimension, key);
    if (problem) throw new HttpError(400, "bad_request", problem);
    return key;
  };
  return [
    {
      name: "hotkeys",
      method: "GET",
      pattern: /^\/v1\/hotkeys$/,
      handle: async (ctx) => {
        guard(ctx);

        const dimensions = client.dimensions();
        ctx.audit.results = dimensions.length;
        ctx.json(200, { dimensions: dimensions.map((d) => client.snapshot(d)) });
      },
    },
    {
      name: "hotkeys-dimension",
      method: "GET",
      pattern: /^\/v1\/hotkeys\/([^/]+)$/,
      handle: async (ctx) => {
        guard(ctx);
        const d = dimensionOf(ctx);

        ctx.json(200, client.snapshot(d));
      },
    },
    {
      name: "hotkeys-mark",
      method: "POST",
      pattern: /^\/v1\/hotkeys\/([^/]+)\/mark$/,
      handle: async (ctx) => {
        guard(ctx);
        const d = dimensionOf(ctx);
        const body = await readJsonBody(ctx.req);
        for (const k of Object.keys(body))
          if (k !== "key" && k !== "for" && k !== "reason")
            throw new HttpError(400, "bad_request", `unknown field ${k}`, '{"key", "for": "2h", "reason"}');
        const key = keyOf(body, d);
        const forText = body.for ?? "1h";
        let forMs: number;
        try {
          forMs = typeof forText === "string" && forText.length <= 16 ? ms(forText) : Number.NaN;
        } catch {
          forMs = Number.NaN;
        }
        if (!(forMs > 0) || forMs > MAX_MARK_MS)
          throw new HttpError(400, "bad_request", "for: a duration from 1s to 30d", '"for": "2h"');
        const reason = body.reason ?? "";
        if (typeof reason !== "string" || reason.length > MAX_REASON_LENGTH)
          throw new HttpError(400, "bad_request", `reason: text of at most ${MAX_REASON_LENGTH} characters`);
        const mark = { ...buildMark(d, key, forMs, reason), markedBy: `console:${ctx.token.name}` };
        await markKey(target, mark);
        // The client sees its own mark at once, not one poll of the topic later.
        client.onMark(mark.id, mark);
        ctx.audit.results = 1;
        ctx.json(200, mark);
      },
    },
    {
      name: "hotkeys-unmark",
      method: "POST",
      pattern: /^\/v1\/hotkeys\/([^/]+)\/unmark$/,
      handle: async (ctx) => {
        guard(ctx);
        const d = dimensionOf(ctx);
        const body = await readJsonBody(ctx.req);
        for (const k of Object.keys(body))
          if (k !== "key") throw new HttpError(400, "bad_request", `unknown field ${k}`, '{"key": "700018"}');
        const key = keyOf(body, d);
        await unmarkKey(target, d, key);
        client.onMark(`${d}/${key}`, null);
        ctx.json(200, { dimension: d, key, unmarked: true });
      },
    },
  ];
}
