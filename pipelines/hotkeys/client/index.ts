// `weir/hotkeys`: what a Node service imports to follow hot keys and to write hot counters
// (docs/hotkeys.md). It runs under tsx (node --import tsx), like weir itself.

export type { HotKeyMark, HotKeys } from "../../../schemas/types.generated.ts";
export { CounterBuffer, type CounterBufferOptions } from "../../../sinks/redis/counter-buffer.ts";
export {
  type DimensionSnapshot,
  type HotKeyEvent,
  HotKeysClient,
  type HotKeysClientOptions,
  type Threshold,
} from "./hot-keys-client.ts";
export { HotKeysHttpServer, type HotKeysHttpServerOptions } from "./http-server.ts";
export { buildMark, markKey, readMarks, unmarkKey } from "./marks.ts";
