// Tests that fill a disk mount a small tmpfs of their own; this says why they cannot, or null.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Null when a tmpfs can be mounted here (Linux, root, mount works); else the reason to skip. */
export function tmpfsUnavailable(): string | null {
  if (process.platform !== "linux") return "needs Linux to mount a tmpfs for the channel";
  if (process.getuid?.() !== 0) return "needs root to mount a tmpfs for the channel";
  const probe = mkdtempSync(join(tmpdir(), "weir-tmpfs-probe-"));
  try {
    const r = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { encoding: "utf8" });
    if (r.status !== 0) return `cannot mount a tmpfs: ${r.stderr || r.error?.message}`;
    spawnSync("umount", [probe]);
    return null;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
