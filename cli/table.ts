/** Prints rows as aligned columns under a header. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  for (const row of [header, ...rows])
    console.log(
      row
        .map((c, i) => (c ?? "").padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    );
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  return `${Math.round(n / 1024 ** 2)} MiB`;
}
