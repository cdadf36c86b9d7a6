// Stress test of the file source through rotations (not a unit test: it runs for a while and reports).
//
// A writer process appends N numbered lines to app.log and, at random moments, rotates it the way
// logrotate does with `rotate <keep>`: the rotated files shift (app.log.1 -> app.log.2 ...), the
// oldest is deleted, then either
//   - rename + create: app.log -> app.log.1; the writer writes a few more lines to its open file
//     (it has not reopened its log yet), then reopens app.log; or
//   - copytruncate: app.log is copied to app.log.1, the writer may write a few lines ("the race":
//     they are only in the original, and the truncation wipes them), then app.log is truncated.
// Meanwhile a FileSource in this process reads, and is optionally stopped and restarted from the
// positions its sink had acknowledged (what the agent's checkpoints would hold). At the end every
// line number is counted: lost, duplicated, out of order within its fileId.
//
//   node --import tsx shipper/sources/file/rotation-stress.ts [--lines 300000] [--glob all|live]
//        [--restarts 5] [--keep 5] [--rate 50000] [--rotate-every 20000] [--seed 1]
//
// --rate is lines per second; --rotate-every the mean number of lines between two rotations.
//
// --glob all matches the rotated names too (app.log*), live only app.log. Lines lost are split into
// those written in a copytruncate race window (logrotate's documented loss; the source may still have
// read them from the original before the truncation), with --glob live those of a copytruncated file
// the source had not read when it was copied (only the copy has them, and it is not matched), and
// the others, which must be none: the exit code is 1 if any, or any duplicate or order error.
// Files logrotate deletes (`--keep`) before the source read them are lost too: with rotations only
// tens of ms apart, raise --keep above the number of rotations a restart can span. On a duplicate,
// the source's log entries about the files involved are printed (kept in memory at WEIR_STRESS_LOG,
// debug by default).
import { spawn } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  existsSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pino from "pino";
import type { RawLine, ResumePoint } from "../../types.ts";
import { FileSource } from "./file-source.ts";

const { values: args } = parseArgs({
  options: {
    lines: { type: "string", default: "300000" },
    glob: { type: "string", default: "all" },
    restarts: { type: "string", default: "5" },
    keep: { type: "string", default: "5" },
    rate: { type: "string", default: "50000" },
    seed: { type: "string", default: "1" },
    "rotate-every": { type: "string", default: "20000" },
    writer: { type: "string" },
  },
});

const N = Number(args.lines);
const KEEP = Number(args.keep);
const RATE = Number(args.rate);
const EVERY = Number(args["rotate-every"]);

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const lineOf = (i: number, pad: string) => `${String(i).padStart(9, "0")} ${pad}\n`;

/** The writer process: lines, rotations, and a record of the copytruncate race windows. */
async function writer(dir: string): Promise<void> {
  const rand = prng(Number(args.seed));
  const path = join(dir, "app.log");
  const pads = Array.from({ length: 64 }, (_, k) => "p".repeat(20 + k * 3));
  let fd = openSync(path, "a");
  const race: number[] = [];
  /** [first, last] line numbers of each generation that was copytruncated (its copy is app.log.1). */
  const copied: [number, number][] = [];
  /** [first line, how it ended, when it started and ended (ms)] of each generation of app.log. */
  const generations: [number, string, number, number][] = [[0, "end of the run", Date.now(), 0]];
  const ended = (how: string) => {
    const g = generations.at(-1) as [number, string, number, number];
    g[1] = how;
    g[3] = Date.now();
  };
  let generationStart = 0;
  let renames = 0;
  let copytruncates = 0;
  const gap = () => Math.floor(EVERY / 4 + rand() * EVERY * 1.5);
  let nextRotation = gap();
  const burst = Math.max(1, Math.round(RATE / 100));
  let i = 0;
  const write = () => {
    writeSync(fd, lineOf(i, pads[i % 64] as string));
    i++;
  };
  const shift = () => {
    if (existsSync(`${path}.${KEEP}`)) unlinkSync(`${path}.${KEEP}`);
    for (let k = KEEP - 1; k >= 1; k--) if (existsSync(`${path}.${k}`)) renameSync(`${path}.${k}`, `${path}.${k + 1}`);
  };
  while (i < N) {
    const end = Math.min(N, i + burst);
    while (i < end) {
      write();
      if (i === nextRotation) {
        shift();
        if (rand() < 0.5) {
          renameSync(path, `${path}.1`);
          ended(`renamed after line ${i - 1}`);
          const late = Math.floor(rand() * 20);
          for (let k = 0; k < late && i < N; k++) write();
          closeSync(fd);
          fd = openSync(path, "a");
          renames++;
        } else {
          copyFileSync(path, `${path}.1`);
          const window = Math.floor(rand() * 5);
          for (let k = 0; k < window && i < N; k++) {
            race.push(i);
            write();
          }
          ftruncateSync(fd, 0);
          copied.push([generationStart, i - 1]);
          ended(`copytruncated after line ${i - 1}`);
          copytruncates++;
        }
        generationStart = i;
        generations.push([i, "end of the run", Date.now(), 0]);
        nextRotation = i + gap();
      }
    }
    await sleep(10);
  }
  closeSync(fd);
  writeFileSync(
    join(dir, "writer.json"),
    JSON.stringify({ written: i, renames, copytruncates, race, copied, generations }),
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "weir-rotation-stress-"));
  const path = join(dir, "app.log");
  writeFileSync(path, "");
  const counts = new Uint8Array(N);
  const last = new Map<string, RawLine>();
  let orderErrors = 0;
  let delivered = 0;
  // Where each line was first delivered from (fileId, offset), to say where a duplicate came from.
  const fileIds: string[] = [];
  const fileIndex = new Map<string, number>();
  const firstFile = new Int32Array(N);
  const firstOffset = new Float64Array(N);
  const duplicates: string[] = [];
  const sink = async (lines: RawLine[]) => {
    for (const l of lines) {
      let n = 0;
      for (let k = 0; k < 9; k++) n = n * 10 + ((l.bytes[k] ?? 48) - 48);
      if (n >= 0 && n < N) {
        counts[n] = Math.min(255, (counts[n] ?? 0) + 1);
        if (counts[n] === 1) {
          const where = `${l.fileId} ${l.file}`;
          let index = fileIndex.get(where);
          if (index === undefined) {
            index = fileIds.push(where) - 1;
            fileIndex.set(where, index);
          }
          firstFile[n] = index;
          firstOffset[n] = l.offset;
        } else if (duplicates.length < 5) {
          const first = `${fileIds[firstFile[n] ?? 0]} @${firstOffset[n]}`;
          duplicates.push(`line ${n}: first ${first}, again ${l.fileId} ${l.file} @${l.offset} #${l.seq}`);
        }
      }
      const prev = last.get(l.fileId);
      if (prev && (l.seq !== prev.seq + 1 || l.offset !== prev.end)) orderErrors++;
      last.set(l.fileId, l);
    }
    delivered += lines.length;
  };
  const resume = (): ResumePoint[] =>
    [...last.values()].map((l) => ({ fileId: l.fileId, offset: l.end, seq: l.seq + 1, path: l.file }));
  const config = {
    name: "stress",
    paths: [args.glob === "live" ? path : `${path}*`],
    scanIntervalMs: 250,
    rotateWaitMs: 1000,
    partialLineFlushMs: 1000,
  };
  // The source's log is kept in memory: the entries about a duplicated line's files are printed.
  const logLines: string[] = [];
  const logger = pino(
    { level: process.env.WEIR_STRESS_LOG ?? "debug" },
    { write: (line: string) => void logLines.push(line) },
  );
  const sourceStats: ReturnType<FileSource["stats"]>[] = [];

  const started = Date.now();
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(import.meta.url), "--writer", dir, ...process.argv.slice(2)],
    { stdio: "inherit" },
  );
  const writerDone = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 1)));
  let writing = true;
  void writerDone.then(() => {
    writing = false;
  });

  const rand = prng(Number(args.seed) + 7);
  let restarts = Number(args.restarts);
  const restartsAt: string[] = [];
  let source = new FileSource(config, { sink, resume: [], logger });
  await source.start();
  while (writing) {
    await Promise.race([sleep(200 + rand() * 2000), writerDone]);
    if (writing && restarts > 0) {
      restarts--;
      const at = Date.now() - started;
      await source.stop();
      restartsAt.push(`${at}..${Date.now() - started} ms`);
      sourceStats.push(source.stats());
      source = new FileSource(config, { sink, resume: resume(), logger });
      await source.start();
    }
  }
  const code = await writerDone;
  if (code !== 0) throw new Error(`the writer failed (exit ${code})`);
  // Done when nothing new arrived for longer than the source's rotate and flush waits.
  for (let quiet = 0, seen = delivered; quiet < 4; ) {
    await sleep(1000);
    quiet = delivered === seen ? quiet + 1 : 0;
    seen = delivered;
  }
  await source.stop();
  sourceStats.push(source.stats());
  const elapsed = (Date.now() - started) / 1000;

  const w = JSON.parse(readFileSync(join(dir, "writer.json"), "utf8")) as {
    written: number;
    renames: number;
    copytruncates: number;
    race: number[];
    copied: [number, number][];
    generations: [number, string, number, number][];
  };
  /** The lost lines that should not have been, by generation: "first..last of <generation>". */
  const lostByGeneration = new Map<number, number[]>();
  const live = args.glob === "live";
  const inCopy = new Uint8Array(N);
  for (const [from, to] of w.copied) inCopy.fill(1, from, to + 1);
  const race = new Set(w.race);
  let lost = 0;
  let lostInRace = 0;
  let lostWithCopies = 0;
  let duplicated = 0;
  const lostSample: number[] = [];
  for (let n = 0; n < N; n++) {
    const c = counts[n] ?? 0;
    if (c === 0) {
      if (race.has(n)) lostInRace++;
      else if (live && inCopy[n]) lostWithCopies++;
      else {
        lost++;
        if (lostSample.length < 10) lostSample.push(n);
        const g = w.generations.findLastIndex(([from]) => from <= n);
        const list = lostByGeneration.get(g) ?? [];
        list.push(n);
        lostByGeneration.set(g, list);
      }
    }
    if (c > 1) duplicated += c - 1;
  }
  const total = (k: keyof ReturnType<FileSource["stats"]>) => sourceStats.reduce((s, x) => s + x[k], 0);
  const report = {
    glob: config.paths[0]?.endsWith("*") ? "app.log* (rotated names matched)" : "app.log (rotated names not matched)",
    written: w.written,
    renameRotations: w.renames,
    copytruncateRotations: w.copytruncates,
    restarts: Number(args.restarts) - restarts,
    restartsAt,
    delivered,
    lost,
    lostSample,
    lostByGeneration: [...lostByGeneration].map(([g, ns]) => {
      const [from, how, start, end] = w.generations[g] ?? [0, "?", 0, 0];
      const life = end ? `, lived ${end - start} ms from ${start - started} ms` : "";
      return `${ns.length} lines, ${ns[0]}..${ns.at(-1)}, of the generation from line ${from}, ${how}${life}`;
    }),
    raceWindowLines: race.size,
    lostInRaceWindow: lostInRace,
    lostWithUnmatchedCopies: live ? lostWithCopies : undefined,
    duplicated,
    duplicates,
    orderErrors,
    truncationsSeen: total("truncations"),
    copiesFollowed: total("copiesFollowed"),
    rotationsSeen: total("rotations"),
    elapsedSeconds: elapsed,
  };
  console.log(JSON.stringify(report, null, 2));
  if (duplicates.length > 0) {
    const ids = new Set(duplicates[0]?.match(/[0-9a-f]{32}-\d+(-[0-9.]+)?/g) ?? []);
    for (const line of logLines) if ([...ids].some((id) => line.includes(id))) process.stdout.write(line);
  }
  rmSync(dir, { recursive: true, force: true });
  process.exit(lost === 0 && duplicated === 0 && orderErrors === 0 ? 0 : 1);
}

if (args.writer) {
  await writer(args.writer);
} else {
  await main();
}
