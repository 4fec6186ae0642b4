import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const EXIT_WAIT_MS = 5_000;

/**
 * Immediate shutdown (SIGQUIT) of the postmaster serving dataDir, if one runs, waiting for it to
 * exit: deleting the data directory under a postgres that is still shutting down leaves parts of
 * it behind. Synchronous so that it also works in a process 'exit' handler. Returns false when a
 * live process holds the recorded pid but cannot be confirmed to be that postmaster.
 */
export function killPostmaster(dataDir: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return true;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return true;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  // A stale pid file's pid may since belong to an unrelated process.
  if (!cmdline.includes(dataDir)) return true;
  try {
    process.kill(pid, 'SIGQUIT');
  } catch {
    return true;
  }
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (const deadline = Date.now() + EXIT_WAIT_MS; isAlive(pid) && Date.now() < deadline;) {
    Atomics.wait(pause, 0, 0, 20);
  }
  return true;
}

/** Whether pid runs; a zombie counts as gone, since our own child stays one while we block. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    // no such process, or no /proc (then ask the kernel)
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
