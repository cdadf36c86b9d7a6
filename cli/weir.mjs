#!/usr/bin/env node
// The `weir` command. weir runs its TypeScript sources through tsx's loader: no build step stands
// between a checkout and a working command.
import { register } from "tsx/esm/api";

register();
// `weir ... | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on("error", (e) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv);
