// Work the worker does under its lock (a checkpoint's transactions, opening the tasks of an
// assignment) can outlast the group's session timeout while a coordinator fails over: the consumer
// cannot heartbeat from inside a batch that waits for the lock, and the group would drop a member
// that is only waiting. So the worker heartbeats itself while such work runs.

/** Awaits `work`, calling `heartbeat` every `everyMs` until it settles; `heartbeat` must not throw. */
export async function heartbeating<T>(work: Promise<T>, heartbeat: () => Promise<void>, everyMs = 1000): Promise<T> {
  let settled = false;
  const done = work.finally(() => {
    settled = true;
  });
  done.catch(() => {}); // awaited below
  while (!settled) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done.catch(() => {}), new Promise((r) => (timer = setTimeout(r, everyMs)))]);
    clearTimeout(timer);
    if (!settled) await heartbeat();
  }
  return done;
}
