// 10,000 dirty lines among good ones: malformed JSON, values of the wrong type, invalid UTF-8,
// binary garbage and 10 MiB lines. Each lands in the DLQ with its reason and its position, every
// good line lands in its topic, and the shipper never crashes.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { codecFor } from "../../schemas/codec.ts";
import { consumeAll } from "../support/kcat.ts";
import { createTopics, deleteTopics, rssBytes, shipSourceOf, startShip } from "../support/ship.ts";
import { requireStack, uniqueName } from "../support/stack.ts";

type Kind = "good" | "malformed-json" | "wrong-type" | "invalid-utf8" | "binary" | "oversized";

function good(n: number): string {
  return `{"id":"dirty-${n}","ts":${1_795_000_000_000 + n},"app":"live","system":"room","service":"room-svc","endpoint":"/room/{id}/enter","method":"POST","status":200,"latencyUs":${900 + n},"bytesIn":80,"bytesOut":312,"traceId":"${n.toString(16).padStart(32, "0")}","uid":${100000000 + n},"clientIp":"10.2.3.4","roomId":700001,"host":"room-svc-1"}`;
}

function bad(kind: Kind, n: number): Buffer {
  const line = good(n);
  switch (kind) {
    case "malformed-json":
      return Buffer.from(line.slice(0, 40 + (n % 150)));
    case "wrong-type":
      return Buffer.from(
        n % 2 ? line.replace(/"ts":\d+/, '"ts":"yesterday"') : line.replace(/"status":\d+/, '"status":"OK"'),
      );
    case "invalid-utf8": {
      const b = Buffer.from(line);
      return Buffer.concat([b.subarray(0, 30), Buffer.from([0xc3, 0x28, 0xff]), b.subarray(30)]);
    }
    case "binary": {
      // Random bytes with NULs and bytes >= 0x80, never a newline.
      const b = randomBytes(64 + (n % 400));
      for (let i = 0; i < b.length; i++) if (b[i] === 0x0a) b[i] = 0xfe;
      b[0] = 0xff;
      return b;
    }
    case "oversized":
      return Buffer.from(`{"id":"big-${n}","message":"${"x".repeat(10 * 1024 * 1024)}"}`);
    default:
      return Buffer.from(line);
  }
}

test("10,000 dirty lines each land in the DLQ with their reason, the good ones in their topic, and weir ship stays up", async () => {
  await requireStack();
  const root = mkdtempSync(join(tmpdir(), "weir-ship-dirty-"));
  const topic = uniqueName("ship_dirty");
  const dlq = `${topic}.dlq`;
  await createTopics([topic, dlq]);
  const file = join(root, "room-svc", "access.log");
  const plan: Array<[Kind, number]> = [
    ["malformed-json", 4000],
    ["wrong-type", 2500],
    ["invalid-utf8", 2000],
    ["binary", 1480],
    ["oversized", 20],
  ];
  // Interleave: one bad line after every two good ones, kinds shuffled deterministically.
  const kinds: Kind[] = plan.flatMap(([k, n]) => new Array<Kind>(n).fill(k));
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1);
    [kinds[i], kinds[j]] = [kinds[j] as Kind, kinds[i] as Kind];
  }
  const expected = new Map<number, Kind>();
  let goodLines = 0;
  let ship = null as ReturnType<typeof startShip> | null;
  try {
    mkdirSync(join(root, "room-svc"));
    const fd = openSync(file, "w");
    let offset = 0;
    let n = 0;
    const put = (b: Buffer) => {
      writeSync(fd, b);
      writeSync(fd, "\n");
      offset += b.length + 1;
    };
    for (const kind of kinds) {
      for (let g = 0; g < 2; g++) {
        put(Buffer.from(good(n++)));
        goodLines++;
      }
      expected.set(offset, kind);
      put(bad(kind, n++));
    }
    closeSync(fd);
    writeFileSync(
      join(root, "ship.yaml"),
      `dataDir: ${JSON.stringify(join(root, "data"))}
topics:
  ${topic}: { schema: AccessLog, key: service }
  ${dlq}: { schema: DeadLetter, key: id }
dlq: { topic: ${dlq} }
metrics: { port: 0 }
sources:
  - name: access
    paths: [${JSON.stringify(join(root, "*/access.log"))}]
    format: json
    topic: ${topic}
    maxLineBytes: 1048576
`,
    );
    ship = startShip(["--config", join(root, "ship.yaml")]);
    const pid = ship.child.pid as number;
    let peakRss = 0;
    let letters: ReturnType<typeof decodeLetters> = [];
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2000));
      peakRss = Math.max(peakRss, rssBytes(pid));
      assert.equal(ship.child.exitCode, null, `weir ship exited: ${ship.output().slice(-2000)}`);
      letters = decodeLetters(await consumeAll(dlq));
      if (letters.length >= kinds.length) break;
    }
    const events = await consumeAll(topic);
    ship.child.kill("SIGTERM");
    const exit = await ship.exited;
    ship = null;
    assert.equal(exit.code, 0);

    const wrong: string[] = [];
    const seen = new Set<number>();
    for (const d of letters) {
      const want = expected.get(d.offset);
      seen.add(d.offset);
      const ok = want === d.reason || (want === "binary" && (d.reason === "invalid-utf8" || d.reason === "binary"));
      if (!ok && wrong.length < 10)
        wrong.push(`offset ${d.offset}: expected ${want ?? "no dead letter"}, got ${d.reason} (${d.message})`);
      if (d.reason === "oversized") assert.ok(d.rawSize > 10 * 1024 * 1024 && d.truncated && d.rawLength <= 64 * 1024);
    }
    assert.deepEqual(wrong, []);
    assert.equal(seen.size, kinds.length, `${kinds.length - seen.size} dirty lines have no dead letter`);
    const offsets = new Set(events.map((m) => shipSourceOf("AccessLog", m.value).offset));
    assert.equal(offsets.size, goodLines, "every good line is in the topic");
    for (const o of offsets) assert.equal(expected.has(o), false, `a dirty line at ${o} was shipped as an event`);
    console.log(
      `ship-dirty: ${kinds.length} dirty lines dead-lettered with their reasons, ${goodLines} good lines shipped, peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`,
    );
    assert.ok(peakRss < 300 * 2 ** 20, `peak RSS ${peakRss} bytes: 10 MiB lines must not be held whole`);
  } finally {
    if (ship) {
      ship.child.kill("SIGKILL");
      await ship.exited;
    }
    await deleteTopics([topic, dlq]);
    rmSync(root, { recursive: true, force: true });
  }
});

function decodeLetters(messages: Array<{ value: Buffer }>) {
  const codec = codecFor("DeadLetter");
  return messages.map((m) => {
    const d = codec.decode(m.value);
    return {
      offset: d.origin.fileOffset ?? -1,
      reason: d.reason,
      message: d.message,
      rawSize: d.rawSize,
      rawLength: d.raw.length,
      truncated: d.truncated,
    };
  });
}
