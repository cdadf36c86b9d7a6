// The child of the SIGKILL test: puts numbered records into a disk channel as fast as it can, two
// puts in flight, and after each put resolves prints how many records are acknowledged so far. It
// never stops by itself: the test kills it with SIGKILL mid-stream.
//   node --import tsx shipper/channel/testdata/put-until-killed.ts <dir> <always|interval|never>
import { DiskChannel, type FsyncPolicy } from "../disk-channel.ts";
import { numberedRecord } from "./numbered-record.ts";

const [dir, fsync] = process.argv.slice(2) as [string, FsyncPolicy];
const channel = await DiskChannel.open({ dir, fsync, segmentBytes: 256 * 1024, maxBytes: 1024 * 1024 * 1024 });
const BATCH = 100;
let next = 0;
let acked = 0;

async function putForever(): Promise<never> {
  for (;;) {
    const batch: Buffer[] = [];
    for (let k = 0; k < BATCH; k++) batch.push(numberedRecord(next++));
    const end = next;
    await channel.put(batch);
    // Puts resolve in the order they were made, so `end` only grows; stdout to a pipe is synchronous.
    acked = Math.max(acked, end);
    process.stdout.write(`${acked}\n`);
  }
}

process.stdout.write("open\n");
await Promise.all([putForever(), putForever()]);
