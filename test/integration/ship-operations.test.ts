// weir ship's operations against the real Kafka: a pipe shipped to the end, a SIGHUP reload that
// changes and adds sources without losing or repeating a line, and a broken config refused with
// where it is broken.
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { codecFor } from "../../schemas/codec.ts";
import { consumeAll } from "../support/kcat.ts";
import { createTopics, deleteTopics, startShip } from "../support/ship.ts";
import { requireStack, uniqueName } from "../support/stack.ts";

const appLog = codecFor("AppLog");
const line = (n: number, tag: string) =>
  `{"ts":${1_795_000_000_000 + n},"level":"INFO","service":"ops-svc","host":"h1","message":"${tag} line ${n}"}\n`;

async function waitUntil(ok: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

test("weir ship --stdin ships a pipe to its end and exits 0", async () => {
  await requireStack();
  const root = mkdtempSync(join(tmpdir(), "weir-ship-stdin-"));
  const topic = uniqueName("ship_stdin");
  await createTopics([topic, `${topic}.dlq`]);
  try {
    const ship = startShip([
      "--stdin",
      "--format",
      "json",
      "--topic",
      topic,
      "--schema",
      "AppLog",
      "--data-dir",
      join(root, "data"),
      "--metrics-port",
      "0",
    ]);
    let text = "";
    for (let n = 0; n < 5000; n++) text += line(n, "stdin");
    ship.child.stdin?.end(`${text}{"ts":1,"level":"INFO","service":"ops-svc","message":"no newline at the end"}`);
    const exit = await ship.exited;
    assert.equal(exit.code, 0, ship.output().slice(-2000));
    const messages = (await consumeAll(topic)).map((m) => appLog.decode(m.value).message);
    assert.equal(messages.length, 5001);
    assert.equal(new Set(messages).size, 5001);
    assert.ok(messages.includes("no newline at the end"));
  } finally {
    await deleteTopics([topic, `${topic}.dlq`]);
    rmSync(root, { recursive: true, force: true });
  }
});

test("SIGHUP applies a changed and an added source from where they were: no line lost or repeated", async () => {
  await requireStack();
  const root = mkdtempSync(join(tmpdir(), "weir-ship-hup-"));
  const topic = uniqueName("ship_hup");
  const dlq = `${topic}.dlq`;
  await createTopics([topic, dlq]);
  mkdirSync(join(root, "a"));
  mkdirSync(join(root, "b"));
  const config = (withB: boolean, env: string) => `dataDir: ${JSON.stringify(join(root, "data"))}
topics:
  ${topic}: { schema: AppLog, key: service }
  ${dlq}: { schema: DeadLetter, key: id }
dlq: { topic: ${dlq} }
metrics: { port: 0 }
sources:
  - name: a
    paths: [${JSON.stringify(join(root, "a", "*.log"))}]
    topic: ${topic}
    fields: { env: ${env} }
${
  withB
    ? `  - name: b
    paths: [${JSON.stringify(join(root, "b", "*.log"))}]
    topic: ${topic}
`
    : ""
}`;
  const file = join(root, "ship.yaml");
  writeFileSync(file, config(false, "one"));
  const ship = startShip(["--config", file]);
  try {
    const count = async () => (await consumeAll(topic)).length;
    for (let n = 0; n < 3000; n++) appendFileSync(join(root, "a", "x.log"), line(n, "a"));
    appendFileSync(join(root, "b", "y.log"), line(0, "b"));
    await waitUntil(async () => (await count()) >= 3000, 60_000, "the first 3,000 lines");

    writeFileSync(file, config(true, "two"));
    ship.child.kill("SIGHUP");
    await waitUntil(async () => ship.output().includes("reload: sources applied"), 30_000, "the reload");
    for (let n = 3000; n < 6000; n++) appendFileSync(join(root, "a", "x.log"), line(n, "a"));
    for (let n = 1; n < 1000; n++) appendFileSync(join(root, "b", "y.log"), line(n, "b"));
    await waitUntil(async () => (await count()) >= 7000, 60_000, "every line after the reload");

    // A broken file: reported, and the running config goes on.
    writeFileSync(file, "sources: [ { name: a, paths: 3 } ]\n");
    ship.child.kill("SIGHUP");
    await waitUntil(async () => ship.output().includes("the new config is invalid"), 30_000, "the refusal");
    appendFileSync(join(root, "a", "x.log"), line(6000, "a"));
    await waitUntil(async () => (await count()) >= 7001, 60_000, "a line after the refused reload");

    ship.child.kill("SIGTERM");
    assert.equal((await ship.exited).code, 0);
    const records = (await consumeAll(topic)).map((m) => appLog.decode(m.value));
    const messages = records.map((r) => r.message);
    assert.equal(messages.length, 7001, "no line repeated");
    assert.equal(new Set(messages).size, 7001);
    const envTwo = records.filter((r) => r.message.startsWith("a line") && r.attributes.env === "two").length;
    assert.ok(envTwo >= 3001, `the changed source's lines after the reload carry its new fields (${envTwo})`);
  } finally {
    if (ship.child.exitCode === null) ship.child.kill("SIGKILL");
    await deleteTopics([topic, dlq]);
    rmSync(root, { recursive: true, force: true });
  }
});

test("weir ship --check refuses a broken config and names the line and field", async () => {
  const root = mkdtempSync(join(tmpdir(), "weir-ship-check-"));
  try {
    const file = join(root, "ship.yaml");
    writeFileSync(file, "sources:\n  - name: a\n    paths: ['/tmp/*.log']\n    format: yaml\n    topic: logs.app\n");
    const bad = startShip(["--config", file, "--check"]);
    assert.equal((await bad.exited).code, 2);
    assert.match(bad.output(), /ship\.yaml:4:\d+: sources\[0\]\.format/);
    writeFileSync(file, "sources:\n  - name: a\n    paths: ['/tmp/*.log']\n    format: pino\n    topic: logs.access\n");
    const wrongTopic = startShip(["--config", file, "--check"]);
    assert.equal((await wrongTopic.exited).code, 2);
    assert.match(wrongTopic.output(), /source a: .*logs\.access holds AccessLog/);
    assert.doesNotMatch(wrongTopic.output(), /\n\s+at /, "a usage error, not a stack trace");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
