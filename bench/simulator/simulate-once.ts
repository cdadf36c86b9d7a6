// One simulator run for the benchmark: prints its own timing as JSON.
import { simulate } from "../../infra/simulator/simulate.ts";

const [out, events] = [process.argv[2] as string, Number(process.argv[3])];
const r = await simulate({
  seed: 1,
  events,
  rate: 50_000,
  diurnal: true,
  users: 200_000,
  streamers: 2000,
  scenario: "default",
  fraud: 1,
  dirty: 0,
  oversizeBytes: 0,
  to: "files",
  out,
  rotateBytes: 64 * 1024 * 1024,
  rotation: "rename",
  keep: 0,
  realtime: false,
});
console.log(JSON.stringify({ records: r.records, lines: r.lines, bytes: r.bytes, wallMs: r.wallMs }));
