// Which log a file belongs to, rotated or not. logrotate and its kin name a log's older files after
// it (`access.log.1`, `access.log.2`, `access.log-20261120`, `access.log.2026-11-20`), so the name
// without that suffix names the log: the file source reads one log's files oldest first, and the
// shipper names a record's source after its log.

const NUMBERED = /\.\d{1,4}$/;
const DATED = /[-._](\d{8}(\d{2,6})?|\d{4}-\d{2}-\d{2}(T?\d{2}(-?\d{2}){0,2})?)$/;

/** `/var/log/x/access.log.2` and `/var/log/x/access.log-20261120` -> `/var/log/x/access.log`. */
export function logFamily(path: string): string {
  let p = path;
  // At most two suffixes (`x.log-20261120.1`): a name is not rewritten whole.
  for (let i = 0; i < 2; i++) {
    const next = p.replace(NUMBERED, "").replace(DATED, "");
    if (next === p || next.endsWith("/") || next.length === 0) break;
    p = next;
  }
  return p;
}

/**
 * How old a file's name says it is among its log's files: the live file 0, `x.1` 1, `x.2` 2; a dated
 * one by its date (older dates rank higher). Only breaks ties of modification times.
 */
export function rotationRank(path: string): number {
  const numbered = /\.(\d{1,4})$/.exec(path);
  if (numbered) return Number(numbered[1]);
  const dated = /(\d{4})-?(\d{2})-?(\d{2})/.exec(path.slice(logFamily(path).length));
  if (dated) return 1e9 - Number(`${dated[1]}${dated[2]}${dated[3]}`) / 100;
  return 0;
}
