// One simulator run for the benchmark: prints its own timing as JSON.
import { SIMULATE_DEFAULTS, simulate } from "../../infra/simulator/simulate.ts";

const [out, events] = [process.argv[2] as string, Number(process.argv[3])];
// A high simulated rate packs many records into little simulated time: the generator's peak load.
const r = await simulate({ ...SIMULATE_DEFAULTS, events, rate: 50_000, rotateBytes: 64 * 1024 * 1024, out });
console.log(JSON.stringify({ records: r.records, lines: r.lines, bytes: r.bytes, wallMs: r.wallMs }));
