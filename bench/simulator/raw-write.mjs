// The I/O ceiling: the simulator's output bytes, already in memory, written in 1 MiB chunks to as
// many files. What generation costs is the gap between this and the simulator.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";

const [src, dest] = process.argv.slice(2);
const files = [];
const walk = (d) => {
  for (const e of readdirSync(d, { withFileTypes: true })) {
    if (e.isDirectory()) walk(join(d, e.name));
    else if (e.name.includes(".log")) files.push(join(d, e.name));
  }
};
walk(src);
const data = files.map((f) => readFileSync(f));
mkdirSync(dest, { recursive: true });
const t0 = process.hrtime.bigint();
let bytes = 0;
data.forEach((buf, i) => {
  const fd = openSync(join(dest, `f${i}.log`), "a");
  for (let off = 0; off < buf.length; off += 1 << 20) {
    const end = Math.min(buf.length, off + (1 << 20));
    let o = off;
    while (o < end) o += writeSync(fd, buf, o, end - o);
  }
  closeSync(fd);
  bytes += buf.length;
});
console.log(JSON.stringify({ bytes, wallMs: Number(process.hrtime.bigint() - t0) / 1e6 }));
