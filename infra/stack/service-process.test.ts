import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { portIsFree, portOwner, processInfo } from "./proc.ts";
import { ServiceProcess } from "./service-process.ts";

const dir = mkdtempSync(join(tmpdir(), "weir-svc-"));
const meta = { version: "1", ports: {}, user: "me" };

test("start records the group; stop terminates every member, children included", async () => {
  const svc = new ServiceProcess("sleeper", dir);
  // A parent that starts a child, like Elasticsearch's launcher and server.
  svc.start(
    {
      command: "sh",
      args: ["-c", "sleep 600 & sleep 600; wait"],
      cwd: dir,
      env: process.env,
      outputFile: join(dir, "out.log"),
    },
    meta,
  );
  await sleep(200);
  const members = svc.members();
  assert.ok(members.length >= 3, `members: ${members.length}`);
  assert.equal(svc.running(), true);
  assert.ok(svc.rss() > 0);
  assert.equal(await svc.stop(5000), "stopped");
  assert.equal(svc.running(), false);
  // Exited (a zombie awaiting this test process's reap counts as exited).
  for (const m of members) assert.equal(processInfo(m.pid), undefined);
  assert.equal(svc.record(), undefined);
});

test("a process that ignores SIGTERM is killed after the grace period", async () => {
  const svc = new ServiceProcess("stubborn", dir);
  svc.start(
    {
      command: "sh",
      args: ["-c", "trap '' TERM; sleep 600 & wait"],
      cwd: dir,
      env: process.env,
      outputFile: join(dir, "out2.log"),
    },
    meta,
  );
  await sleep(200);
  assert.equal(await svc.stop(500), "killed");
  assert.equal(svc.running(), false);
});

test("a pid file from another boot, or a reused pid, is not a running server", () => {
  const svc = new ServiceProcess("stale", dir);
  const own = {
    service: "stale",
    pid: process.pid,
    pgid: process.pid,
    startTicks: 0,
    bootId: "another-boot",
    startedAt: "",
    ...meta,
  };
  writeFileSync(svc.pidFile, JSON.stringify(own));
  assert.equal(svc.running(), false);
  // Same boot but a start time after every live process: the pid was reused by something else.
  const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  writeFileSync(svc.pidFile, JSON.stringify({ ...own, bootId: boot, startTicks: Number.MAX_SAFE_INTEGER }));
  assert.equal(svc.running(), false);
});

test("stop on a stopped server is a no-op", async () => {
  assert.equal(await new ServiceProcess("never", dir).stop(100), "not-running");
});

test("a taken port is reported with its owner", async () => {
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  assert.equal(await portIsFree(port), false);
  assert.match(portOwner(port) ?? "", new RegExp(`pid ${process.pid} `));
  await new Promise((r) => server.close(r));
  assert.equal(await portIsFree(port), true);
});
