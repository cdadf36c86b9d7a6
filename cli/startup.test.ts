// What a user sees when weir cannot start: one line saying what is wrong and what to do, never a
// stack trace, and nothing left behind (issue 21, defect 3). The CLI runs as a child process, as a
// user runs it; no server is needed.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { PROJECT_ROOT } from "../infra/stack/config.ts";

function weir(args: string[], opts: { cli?: string; input?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [opts.cli ?? join(PROJECT_ROOT, "cli", "weir.mjs"), ...args], {
    encoding: "utf8",
    input: opts.input ?? "",
    timeout: 60_000,
    env: { ...process.env, WEIR_KAFKA_BROKERS: "127.0.0.1:1", ...opts.env },
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}`, stderr: r.stderr };
}

function noStack(out: string): void {
  assert.doesNotMatch(out, /^\s+at /m, `a stack trace:\n${out}`);
  assert.doesNotMatch(out, /EADDRINUSE|ERR_MODULE_NOT_FOUND/, out);
}

test("weir ship on a taken metrics port: one line naming the port and its holder; no channel, no lock left", async () => {
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(0, "127.0.0.1", r));
  const port = (squatter.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), "weir-startup-"));
  try {
    const r = weir(["ship", "--stdin", "--topic", "logs.app", "--data-dir", dir, "--metrics-port", String(port)], {
      input: '{"message":"hello"}\n',
    });
    assert.equal(r.code, 1, r.out);
    assert.match(
      r.stderr,
      new RegExp(
        `^weir: port ${port} on 127\\.0\\.0\\.1 \\(for /metrics and /health\\) is taken by pid ${process.pid} \\(`,
      ),
    );
    assert.match(
      r.stderr,
      /\n {2}what to do: stop that process, or choose another port with metrics\.port in the config or --metrics-port/,
    );
    assert.equal(r.stderr.trimEnd().split("\n").length, 2, r.stderr);
    noStack(r.out);
    assert.ok(!existsSync(join(dir, "channel", "LOCK")), "the channel's lock is left behind");
    // The next shipper on a free port starts (and stops at the end of its input).
    const next = weir(["ship", "--stdin", "--topic", "logs.app", "--data-dir", dir, "--check"]);
    assert.equal(next.code, 0, next.out);
  } finally {
    await new Promise((r) => squatter.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test("weir run on a taken metrics port: one line naming the port and its holder", async () => {
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(0, "127.0.0.1", r));
  const port = (squatter.address() as { port: number }).port;
  try {
    const r = weir(["run", "logs", "--metrics-port", String(port)], { env: { WEIR_ENV: "development" } });
    assert.equal(r.code, 1, r.out);
    assert.match(
      r.stderr,
      new RegExp(
        `^weir: port ${port} on 127\\.0\\.0\\.1 \\(for /metrics and /health\\) is taken by pid ${process.pid} `,
        "m",
      ),
    );
    assert.match(r.stderr, /what to do: stop that process, or choose another port with --metrics-port/);
    noStack(r.out);
  } finally {
    await new Promise((r) => squatter.close(r));
  }
});

test("weir before npm install: one line saying to run npm install", () => {
  const copy = mkdtempSync(join(tmpdir(), "weir-not-installed-"));
  try {
    cpSync(join(PROJECT_ROOT, "cli"), join(copy, "cli"), { recursive: true });
    cpSync(join(PROJECT_ROOT, "package.json"), join(copy, "package.json"));
    const bare = weir(["--help"], { cli: join(copy, "cli", "weir.mjs") });
    assert.equal(bare.code, 1, bare.out);
    assert.equal(
      bare.stderr,
      `weir: its dependencies are not installed (tsx is missing from ${join(copy, "node_modules")})\n  what to do: run npm install (or npm ci) in ${copy}\n`,
    );
    noStack(bare.out);

    // tsx there, the rest not (a half-finished install): the missing package is named.
    mkdirSync(join(copy, "node_modules"));
    for (const dep of readdirSync(join(PROJECT_ROOT, "node_modules"))) {
      if (["tsx", "esbuild", "@esbuild", "get-tsconfig", "resolve-pkg-maps"].includes(dep))
        symlinkSync(join(PROJECT_ROOT, "node_modules", dep), join(copy, "node_modules", dep));
    }
    const half = weir(["--help"], { cli: join(copy, "cli", "weir.mjs") });
    assert.equal(half.code, 1, half.out);
    assert.match(half.stderr, /^weir: its dependencies are not installed \(\S+ is missing from /);
    noStack(half.out);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});
