// weir hotkeys: the live hot-key lists, marks by hand, and the HTTP endpoint for services without Kafka.
import { Command } from "commander";
import { clientEndpoints } from "../../infra/stack/config.ts";
import type { KafkaSecurity } from "../../kafka/security.ts";
import { HotKeysClient } from "../../pipelines/hotkeys/client/hot-keys-client.ts";
import { HotKeysHttpServer } from "../../pipelines/hotkeys/client/http-server.ts";
import { buildMark, markKey, markProblem, readMarks, unmarkKey } from "../../pipelines/hotkeys/client/marks.ts";
import type { HotKeys } from "../../schemas/types.generated.ts";
import { ms } from "../../stream/types.ts";
import { UsageError } from "../errors.ts";

function duration(text: string, what: string): number {
  try {
    return ms(text);
  } catch {
    throw new UsageError(`${what}: not a duration: ${text}`, "write it as 30s, 10m, 2h or 7d");
  }
}

function clock(t: number): string {
  return new Date(t).toISOString().slice(11, 19);
}

function seconds(w: number): string {
  return w % 60_000 === 0 ? `${w / 60_000} min` : `${w / 1000} s`;
}

/** One list as text: header, then rank, key, count, share and a bar; marked keys flagged. */
export function formatList(list: HotKeys, limit: number, marked: Set<string>): string[] {
  const lines = [
    `${list.dimension}, last ${seconds(list.windowMs)} (${clock(list.windowStart)} to ${clock(list.windowStart + list.windowMs)} UTC): ${list.total.toLocaleString("en")} events`,
  ];
  const shown = list.keys.slice(0, limit);
  const width = Math.max(3, ...shown.map((e) => e.key.length));
  shown.forEach((e, i) => {
    const bar = "#".repeat(Math.max(1, Math.round(e.share * 40)));
    lines.push(
      `  ${String(i + 1).padStart(3)}  ${e.key.padEnd(width)}  ${e.count.toLocaleString("en").padStart(9)}  ${(e.share * 100).toFixed(1).padStart(5)}%  ${bar}${marked.has(e.key) ? "  (marked)" : ""}`,
    );
  });
  if (shown.length === 0) lines.push("  (no keys)");
  return lines;
}

export function hotkeysCommand(): Command {
  const cmd = new Command("hotkeys").description(
    "hot keys: the live top lists of weir run hotkeys, keys marked by hand, the HTTP endpoint",
  );

  cmd
    .command("top")
    .description("the heaviest keys of each dimension now, as published to hotkeys.top")
    .option("--dimension <name>", "only this dimension")
    .option("--window <d>", "only this window (10s, 1m)")
    .option("--limit <n>", "keys shown per list", "10")
    .option("--watch", "refresh every second until Ctrl-C")
    .option("--topic <topic>", "the lists' topic", "hotkeys.top")
    .option("--marks-topic <topic>", "the marks' topic", "hotkeys.marks")
    .option("--wait <d>", "how long to wait for a first list", "5s")
    .action(
      async (opts: {
        dimension?: string;
        window?: string;
        limit: string;
        watch?: boolean;
        topic: string;
        marksTopic: string;
        wait: string;
      }) => {
        const window = opts.window ? duration(opts.window, "--window") : undefined;
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new UsageError("--limit: a positive whole number");
        const client = new HotKeysClient({
          ...kafkaTarget(),
          topic: opts.topic,
          marksTopic: opts.marksTopic,
          clientId: "weir-hotkeys-top",
          onError: (e) => console.error(`weir hotkeys top: ${e.message}`),
          ...(opts.dimension ? { dimensions: [opts.dimension] } : {}),
        });
        await client.start();
        const render = (): string[] => {
          const out: string[] = [];
          for (const dimension of client.dimensions()) {
            if (opts.dimension && dimension !== opts.dimension) continue;
            const snap = client.snapshot(dimension);
            const marked = new Set(snap.marks.map((m) => m.key));
            for (const list of snap.lists) {
              if (window !== undefined && list.windowMs !== window) continue;
              out.push(...formatList(list, limit, marked), "");
            }
            for (const m of snap.marks) {
              out.push(
                `  marked ${dimension} ${m.key} until ${new Date(m.until).toISOString()}: ${m.reason} (${m.markedBy})`,
              );
            }
          }
          return out;
        };
        try {
          const deadline = Date.now() + duration(opts.wait, "--wait");
          while (render().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
          if (!opts.watch) {
            const lines = render();
            if (lines.length === 0) {
              throw new UsageError(
                `no list on ${opts.topic}${opts.dimension ? ` for ${opts.dimension}` : ""} within ${opts.wait}`,
                "is a worker running? node cli/weir.mjs run hotkeys",
              );
            }
            console.log(lines.join("\n").trimEnd());
            return;
          }
          let stop = false;
          process.once("SIGINT", () => {
            stop = true;
          });
          while (!stop) {
            process.stdout.write(`\x1b[2J\x1b[H${render().join("\n")}\n(${clock(Date.now())} UTC, Ctrl-C to stop)\n`);
            await new Promise((r) => setTimeout(r, 1000));
          }
        } finally {
          await client.close();
        }
      },
    );

  cmd
    .command("mark")
    .description("mark a key hot by hand until a time (a drill, or a big event known in advance)")
    .argument("<dimension>", "room, streamer, uid, endpoint, ...")
    .argument("<key>", "the key as the lists spell it")
    .requiredOption("--for <d>", "how long: 30m, 2h, 1d (at most 30d)")
    .option("--reason <text>", "why, for the people reading the list", "")
    .option("--topic <topic>", "the marks' topic", "hotkeys.marks")
    .action(async (dimension: string, key: string, opts: { for: string; reason: string; topic: string }) => {
      let mark: ReturnType<typeof buildMark>;
      try {
        mark = buildMark(dimension, key, duration(opts.for, "--for"), opts.reason);
      } catch (e) {
        if (e instanceof UsageError) throw e;
        throw new UsageError((e as Error).message);
      }
      await markKey({ ...kafkaTarget(), topic: opts.topic }, mark);
      console.log(
        `marked ${dimension} ${key} hot until ${new Date(mark.until).toISOString()}${mark.reason ? `: ${mark.reason}` : ""}`,
      );
    });

  cmd
    .command("unmark")
    .description("remove a key's mark")
    .argument("<dimension>")
    .argument("<key>")
    .option("--topic <topic>", "the marks' topic", "hotkeys.marks")
    .action(async (dimension: string, key: string, opts: { topic: string }) => {
      const problem = markProblem(dimension, key);
      if (problem) throw new UsageError(problem);
      await unmarkKey({ ...kafkaTarget(), topic: opts.topic }, dimension, key);
      console.log(`unmarked ${dimension} ${key}`);
    });

  cmd
    .command("marks")
    .description("the marks in force")
    .option("--topic <topic>", "the marks' topic", "hotkeys.marks")
    .action(async (opts: { topic: string }) => {
      const marks = await readMarks({ ...kafkaTarget(), topic: opts.topic });
      if (marks.length === 0) console.log("no marks in force");
      for (const m of marks.sort((a, b) => a.id.localeCompare(b.id))) {
        console.log(`${m.dimension} ${m.key} until ${new Date(m.until).toISOString()}  ${m.reason}  (${m.markedBy})`);
      }
    });

  cmd
    .command("serve")
    .description("GET /hotkeys/<dimension> over HTTP, for services without Kafka access")
    .option("--port <port>", "port to listen on", "8090")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--topic <topic>", "the lists' topic", "hotkeys.top")
    .option("--marks-topic <topic>", "the marks' topic", "hotkeys.marks")
    .action(async (opts: { port: string; host: string; topic: string; marksTopic: string }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError("--port: 0 to 65535");
      const server = new HotKeysHttpServer({
        ...kafkaTarget(),
        port,
        host: opts.host,
        topic: opts.topic,
        marksTopic: opts.marksTopic,
        onError: (e) => console.error(`weir hotkeys serve: ${e.message}`),
      });
      const bound = await server.start();
      console.log(`serving GET /hotkeys/<dimension> on http://${opts.host}:${bound}`);
      await new Promise<void>((resolve) => {
        process.once("SIGTERM", () => resolve());
        process.once("SIGINT", () => resolve());
      });
      await server.close();
    });

  return cmd;
}

/** The brokers weir's clients use, and their TLS and SASL (WEIR_KAFKA_*, or the local stack's). */
function kafkaTarget(): { brokers: string[]; security: KafkaSecurity | undefined } {
  const endpoints = clientEndpoints();
  return { brokers: endpoints.kafkaBrokers, security: endpoints.kafkaSecurity };
}
