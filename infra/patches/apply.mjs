// Applies weir's fixes to third-party code after npm installs it, like patch-package, without a
// dependency. Each patch names the exact file it replaces and that file's hash: an upgraded
// library is never patched blindly (the run fails and says so). Idempotent.
import { createHash } from "node:crypto";
import { copyFileSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const patches = [
  {
    why: "read_committed consumers see records of aborted transactions (docs/stream.md)",
    target: "node_modules/kafkajs/src/consumer/filterAbortedMessages.js",
    original: "54ce50f2a41ee1686da8b73bf8b502c7dd07c9d7cb0a494cdb36a7fc536ced8e",
    replacement: "infra/patches/kafkajs-aborted-transactions.cjs",
  },
  {
    why: "grouping a batch by partition copied an array per message (quadratic in the batch size)",
    target: "node_modules/kafkajs/src/producer/groupMessagesPerPartition.js",
    original: "ea72357721fbf67770b5e06b9bf4260faa1e60f3affb556bff2cc7892c1881fb",
    replacement: "infra/patches/kafkajs-group-messages.cjs",
  },
  {
    why: "a transactional batch sent to several brokers lost and doubled records (concurrent AddPartitionsToTxn, retries beside requests in flight)",
    target: "node_modules/kafkajs/src/producer/sendMessages.js",
    original: "8a120e6993955e040a13014cccebd79b8d41e7355d6eda1065fa83fea2fbbcdb",
    replacement: "infra/patches/kafkajs-send-messages.cjs",
  },
  {
    why: "a record declaring an array or map block larger than its bytes kept the reader looping (docs/reliability.md)",
    target: "node_modules/avsc/lib/types.js",
    original: "f5c8bfe63da5a9201397446e3fc159f2e5800cd9303e395a97b3b464790ac2e1",
    replacement: "infra/patches/avsc-types.cjs",
  },
];

const sha = (file) => createHash("sha256").update(readFileSync(file)).digest("hex");
let failed = false;
for (const p of patches) {
  const target = join(root, p.target);
  const replacement = join(root, p.replacement);
  const have = sha(target);
  if (have === sha(replacement)) continue;
  if (have !== p.original) {
    console.error(
      `patches: ${p.target} is not the version the patch was written for (sha256 ${have}); review ${p.replacement}`,
    );
    failed = true;
    continue;
  }
  copyFileSync(replacement, target);
  console.log(`patched ${p.target}: ${p.why}`);
}
if (failed) process.exit(1);
