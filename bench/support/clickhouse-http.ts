// Bare HTTP POSTs to ClickHouse over one kept-alive socket: what the ClickHouse benchmarks compare
// the sink with, to tell the protocol's cost from the sink's own.
import { Agent, request } from "node:http";

/** `post` resolves on 200 and rejects with the server's answer otherwise; `close` releases the socket. */
export function clickhousePoster(url: string): {
  post(query: string, body: Buffer): Promise<void>;
  close(): void;
} {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const post = (query: string, body: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        `${url}/?query=${encodeURIComponent(query)}`,
        { method: "POST", agent, headers: { "Content-Length": body.length } },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => {
            text += d;
          });
          res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(text))));
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  return { post, close: () => agent.destroy() };
}
