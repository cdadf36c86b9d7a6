// The /metrics and /health endpoint every long-running weir process serves (weir ship, weir run):
// Prometheus text from a prom-client registry, and a health answer that is 200 when ok and 503
// when not, with the process's own details as JSON.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { portOwner } from "./port-owner.ts";

/** The port is taken: said in one line, naming the port and who holds it, with what to do. */
export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    readonly host: string,
    readonly holder: string | undefined,
    readonly hint: string,
  ) {
    super(`port ${port} on ${host} (for /metrics and /health) is taken by ${holder ?? "another process"}`);
    this.name = "PortInUseError";
  }
}

export interface Health {
  ok: boolean;
  detail: Record<string, unknown>;
}

/**
 * Serves a registry's /metrics and a /health answered by `healthy`. Port 0 picks a free one: the
 * port actually bound is returned. Loopback unless the caller names another host (the shipper's
 * config can). A taken port rejects with PortInUseError; `setting` names where the port comes
 * from, for its hint.
 */
export async function serveMetrics(
  registry: Registry,
  healthy: () => Health,
  port: number,
  host = "127.0.0.1",
  setting = "--metrics-port",
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.url === "/metrics") {
      registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(text);
        })
        .catch((e: Error) => {
          res.writeHead(500);
          res.end(e.message);
        });
      return;
    }
    if (req.url === "/health") {
      const h = healthy();
      res.writeHead(h.ok ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: h.ok ? "ok" : "unavailable", ...h.detail }));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code !== "EADDRINUSE") return reject(e);
      reject(
        new PortInUseError(
          port,
          host,
          portOwner(port),
          `stop that process, or choose another port with ${setting} (0: any free port, logged at start)`,
        ),
      );
    });
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
