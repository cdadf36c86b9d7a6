#!/usr/bin/env node
// The `weir` command. weir runs its TypeScript sources through tsx's loader: no build step stands
// between a checkout and a working command.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * A package that is not installed (weir run before `npm install`, or a broken node_modules) is one
 * line saying what to run, not Node's ERR_MODULE_NOT_FOUND stack.
 */
function exitIfNotInstalled(e) {
  if (e?.code !== "ERR_MODULE_NOT_FOUND") return;
  const name = /Cannot find (?:package|module) '([^']+)'/.exec(String(e.message))?.[1] ?? "a package";
  // A missing file of weir itself (a bare name is a package; a path is one of weir's own files).
  if (name.startsWith("/") || name.startsWith(".")) {
    console.error(
      `weir: ${name} is missing from this checkout of weir (in ${root})\n  what to do: restore it (git status, git checkout -- <file>)`,
    );
  } else {
    console.error(
      `weir: its dependencies are not installed (${name} is missing from ${join(root, "node_modules")})\n  what to do: run npm install (or npm ci) in ${root}`,
    );
  }
  process.exit(1);
}

let register;
try {
  ({ register } = await import("tsx/esm/api"));
} catch (e) {
  exitIfNotInstalled(e);
  throw e;
}
register();
// `weir ... | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on("error", (e) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});
try {
  const { main } = await import("./main.ts");
  process.exitCode = await main(process.argv);
} catch (e) {
  exitIfNotInstalled(e);
  throw e;
}
