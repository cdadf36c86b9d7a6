#!/usr/bin/env node
// The `weir` command. weir runs its TypeScript sources through tsx's loader: no build step stands
// between a checkout and a working command.
import { register } from "tsx/esm/api";

register();
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv);
