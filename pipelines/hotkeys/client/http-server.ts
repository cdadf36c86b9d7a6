// `weir hotkeys serve`: the hot-key lists and marks over HTTP, for services without Kafka access.
//   GET /hotkeys               {"dimensions": [...]}
//   GET /hotkeys/<dimension>   {"dimension", "lists": [HotKeys per window], "marks": [HotKeyMark]}; 404 before any
//   GET /health                200
// It follows the topics with a HotKeysClient of its own. Only GET and HEAD; a dimension is checked
// against the names the pipeline allows before anything else.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { KafkaSecurity } from "../../../kafka/security.ts";
import { DimensionName } from "../config.ts";
import { HotKeysClient, type HotKeysClientOptions } from "./hot-keys-client.ts";

export interface HotKeysHttpServerOptions {
  brokers: string[];
  security?: KafkaSecurity | undefined;
  topic?: string;
  marksTopic?: string;
  port: number;
  host?: string;
  onError?: (e: Error) => void;
}

export class HotKeysHttpServer {
  readonly client: HotKeysClient;
  private server: Server | null = null;

  constructor(private readonly options: HotKeysHttpServerOptions) {
    const clientOptions: HotKeysClientOptions = {
      brokers: options.brokers,
      security: options.security,
      clientId: "weir-hotkeys-serve",
    };
    if (options.topic) clientOptions.topic = options.topic;
    if (options.marksTopic) clientOptions.marksTopic = options.marksTopic;
    if (options.onError) clientOptions.onError = options.onError;
    this.client = new HotKeysClient(clientOptions);
  }

  /** Starts following the topics and listening; resolves with the port. */
  async start(): Promise<number> {
    await this.client.start();
    const server = createServer((req, res) => {
      const send = (status: number, body: unknown) => {
        const text = JSON.stringify(body);
        res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : text);
      };
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.setHeader("allow", "GET, HEAD");
        send(405, { error: "only GET" });
        return;
      }
      const path = (req.url ?? "/").split("?")[0] as string;
      if (path === "/health") return send(200, { ok: true });
      if (path === "/hotkeys" || path === "/hotkeys/") return send(200, { dimensions: this.client.dimensions() });
      const m = /^\/hotkeys\/([^/]+)$/.exec(path);
      if (!m) return send(404, { error: "not found: GET /hotkeys/<dimension>" });
      let dimension: string;
      try {
        dimension = decodeURIComponent(m[1] as string);
      } catch {
        return send(400, { error: "a dimension: letters, digits, '_', '.', '-'" });
      }
      if (!DimensionName.safeParse(dimension).success) {
        return send(400, { error: "a dimension: letters, digits, '_', '.', '-' (1 to 64)" });
      }
      const snap = this.client.snapshot(dimension);
      if (snap.lists.length === 0 && snap.marks.length === 0) {
        return send(404, { error: `nothing published for ${dimension} yet`, dimensions: this.client.dimensions() });
      }
      send(200, snap);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port, this.options.host ?? "127.0.0.1", () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await this.client.close();
  }
}
