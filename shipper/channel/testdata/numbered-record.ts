/** Record i of the SIGKILL test: its number, then filler of a length that varies, so frames straddle every boundary. */
export function numberedRecord(i: number): Buffer {
  return Buffer.from(`${String(i).padStart(10, "0")}:${"x".repeat(20 + ((i * 7919) % 300))}`);
}
