// The benchmarks' command-line flags: `--name value`, or `--name` alone for true.
export function benchFlags(argv = process.argv.slice(2)) {
  function flag(name: string): string | undefined {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    return v === undefined || v.startsWith("--") ? "true" : v;
  }
  /** A positive number, `dflt` when the flag is absent. */
  function num(name: string, dflt: number): number {
    const v = flag(name);
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
    return n;
  }
  return { argv, flag, num };
}
