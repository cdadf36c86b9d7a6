// `weir run logs` started while Kafka does not answer (issue 21, defect 1). The broker here is a
// port that takes connections and never answers, as a frozen broker does: kafkajs' first request
// times out and its next ones fail with "Broker not connected". Before the fix the worker crashed
// with that error's stack and exited 1 after about 30 s; now it waits with backoff, says what for
// on /health, /metrics and in its log, and a SIGTERM stops it cleanly. No real Kafka is touched.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";

test("weir run logs with Kafka not answering waits for it, and says so on /health and /metrics", async () => {
  const sockets = new Set<Socket>();
  const silent = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const port = (silent.address() as { port: number }).port;
  const child = spawn(process.execPath, [join(PROJECT_ROOT, "cli", "weir.mjs"), "run", "logs", "--metrics-port", "0"], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, WEIR_KAFKA_BROKERS: `127.0.0.1:${port}`, WEIR_ENV: "development" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  child.stderr.on("data", (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  try {
    const metricsPort = Number(await waitFor(() => /"metricsPort":(\d+)/.exec(out)?.[1], "/metrics served", 30_000));
    // The first attempt ends when kafkajs' ApiVersions request times out (30 s); the crash came right after.
    await waitFor(
      () => /"msg":"waiting for Kafka at 127\.0\.0\.1:\d+ to answer \(attempt 2;/.test(out),
      "a second attempt",
      90_000,
    );
    assert.equal(child.exitCode, null, `weir run exited:\n${out.slice(-3000)}`);
    const health = await fetch(`http://127.0.0.1:${metricsPort}/health`);
    assert.equal(health.status, 503);
    const body = (await health.json()) as { kafka?: string; waitingFor?: string };
    assert.equal(body.waitingFor, `Kafka at 127.0.0.1:${port}`);
    assert.match(String(body.kafka), /^unreachable for [\d.]+ s \(\d+ attempts\): /);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /^weir_stream_kafka_reachable\{app="weir-logs"\} 0$/m);
    assert.match(metrics, /^weir_stream_kafka_connect_retries_total\{app="weir-logs"\} [1-9]\d*$/m);
    child.kill("SIGTERM");
    assert.equal(await exited, 0, out.slice(-3000));
    assert.doesNotMatch(out, /^\s+at /m, "no stack trace");
    assert.doesNotMatch(out, /Broker not connected\n/);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  }
});

async function waitFor<T>(check: () => T | undefined | false, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
