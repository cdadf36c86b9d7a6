// `weir stack` as a user runs it, on a second stack beside the one the other tests use: other ports,
// another folder, the same downloads. Proves that two stacks coexist, that `up` twice is a no-op,
// and that `down` leaves no process behind.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import type { ServiceStatus } from "../../infra/stack/local-stack.ts";
import { allPids, commandLine } from "../../infra/stack/proc.ts";
import { KAFKA_VERSION } from "../../infra/stack/versions.ts";
import { loadTopicCatalog } from "../../schemas/catalog.ts";
import { requireStack, stackConfig } from "../support/stack.ts";

const dir = mkdtempSync(join(tmpdir(), "weir-second-stack-"));
chmodSync(dir, 0o755); // the servers' unprivileged user must reach it
let env: NodeJS.ProcessEnv;

async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  for (let i = 0; i < n; i++) {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    servers.push(s);
  }
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function weir(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "cli", "weir.mjs"), ...args], {
    env: { ...env, ...extraEnv },
    encoding: "utf8",
    timeout: 300_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Processes whose command line names the second stack's folder. */
function secondStackProcesses(): string[] {
  return allPids()
    .map((pid) => `${pid} ${commandLine(pid)}`)
    .filter((line) => line.includes(dir));
}

before(async () => {
  await requireStack(); // its downloads are shared, so nothing is fetched again
  const [kafka, controller, es, transport, chHttp, chTcp, redis] = await freePorts(7);
  env = {
    ...process.env,
    WEIR_STACK_CONFIG: "",
    WEIR_STACK_DIR: dir,
    WEIR_STACK_DOWNLOADS: stackConfig.paths.downloads,
    WEIR_KAFKA_PORT: String(kafka),
    WEIR_KAFKA_CONTROLLER_PORT: String(controller),
    WEIR_ES_PORT: String(es),
    WEIR_ES_TRANSPORT_PORT: String(transport),
    WEIR_CH_HTTP_PORT: String(chHttp),
    WEIR_CH_TCP_PORT: String(chTcp),
    WEIR_REDIS_PORT: String(redis),
    WEIR_KAFKA_HEAP: "512m",
    WEIR_ES_HEAP_MAX: "512m",
  };
});

after(() => {
  weir(["stack", "down"]);
  rmSync(dir, { recursive: true, force: true });
});

test("a second stack comes up beside the first; up again is a no-op; down leaves no process", async () => {
  const first = weir(["stack", "up"]);
  assert.equal(first.code, 0, first.out);
  assert.match(first.out, /stack ready/);

  // A fresh broker: once `up` returns, every catalog topic exists and serves offsets on the first try
  // (kafkajs gives up at once on the NOT_LEADER_FOR_PARTITION a just-created topic answers).
  const admin = new Kafka({
    clientId: "test-fresh",
    brokers: [`127.0.0.1:${env.WEIR_KAFKA_PORT}`],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  }).admin();
  await admin.connect();
  try {
    for (const t of loadTopicCatalog().topics)
      assert.equal((await admin.fetchTopicOffsets(t.name)).length, t.partitions, t.name);
  } finally {
    await admin.disconnect();
  }

  const status = weir(["stack", "status", "--json"]);
  assert.equal(status.code, 0, status.out);
  const rows = JSON.parse(status.out) as ServiceStatus[];
  assert.deepEqual(
    rows.map((r) => [r.service, r.healthy]),
    [
      ["kafka", true],
      ["elasticsearch", true],
      ["clickhouse", true],
      ["redis", true],
    ],
  );
  assert.equal(rows.find((r) => r.service === "kafka")?.ports.broker, Number(env.WEIR_KAFKA_PORT));
  for (const r of rows) assert.ok(r.rss > 10 * 1024 * 1024, `${r.service} rss ${r.rss}`);
  const pids = rows.map((r) => r.pid);

  const second = weir(["stack", "up"]);
  assert.equal(second.code, 0, second.out);
  assert.equal(second.out.match(/already running/g)?.length, 4, second.out);
  assert.doesNotMatch(second.out, /started/);
  const again = JSON.parse(weir(["stack", "status", "--json"]).out) as ServiceStatus[];
  assert.deepEqual(
    again.map((r) => r.pid),
    pids,
  );
  assert.ok(secondStackProcesses().length >= 4, secondStackProcesses().join("\n"));
  assert.ok(
    secondStackProcesses().some((p) => p.includes("redis-server")),
    secondStackProcesses().join("\n"),
  );

  const down = weir(["stack", "down"]);
  assert.equal(down.code, 0, down.out);
  assert.equal(down.out.match(/stopped \(was pid/g)?.length, 4, down.out);
  assert.deepEqual(secondStackProcesses(), []);
  const stopped = weir(["stack", "status", "--json"]);
  assert.equal(stopped.code, 1);
  assert.ok((JSON.parse(stopped.out) as ServiceStatus[]).every((r) => !r.running));

  // reset: data, configs and logs go; the installed servers (shared here) stay.
  const reset = weir(["stack", "reset"]);
  assert.equal(reset.code, 0, reset.out);
  assert.deepEqual(readdirSync(dir), []);
  assert.ok(existsSync(join(stackConfig.paths.downloads, `kafka-${KAFKA_VERSION}`, ".installed")));
});

test("a taken port is a clear error naming the port, the service and the process holding it", async () => {
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(0, "127.0.0.1", r));
  const port = (squatter.address() as { port: number }).port;
  try {
    const r = weir(["stack", "up"], { WEIR_ES_PORT: String(port) });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, new RegExp(`port ${port} \\(elasticsearch http\\) is taken by pid ${process.pid} `));
    assert.match(r.out, /what to do: /);
  } finally {
    await new Promise((r) => squatter.close(r));
    weir(["stack", "down"]);
  }
});

test("a bad setting is refused before anything starts, naming the variable", () => {
  const r = weir(["stack", "up"], { WEIR_KAFKA_PORT: "80" });
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /kafka\.port: use a port >= 1024 .*\(from WEIR_KAFKA_PORT\)/);
  assert.deepEqual(secondStackProcesses(), []);
});
