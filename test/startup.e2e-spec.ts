import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { loadAppConfig } from '../src/config/app-config';
import { dataSourceOptions, MIGRATIONS } from '../src/database/database.options';
import { createTestDatabase, testS3Env, type TestDatabase } from './harness/databases';
import { freePort } from './harness/free-port';
import { builtServer, runServer, type ServerRun } from './support/server-process';

/** Generous: a loaded machine takes seconds to start node; what is caught is the old ~30 s of retries. */
const FAIL_FAST_SECONDS = 25;

// Each test starts node processes; a loaded machine needs seconds for each.
jest.setTimeout(120_000);

/** A TCP server that accepts connections and never says a word, as a firewall's black hole looks. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('start-up of the real server process', () => {
  let cwd: string;

  beforeAll(async () => {
    await builtServer();
  }, 180_000);

  beforeEach(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'an-startup-'));
  });

  afterEach(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  /** Local storage and a throwaway auth secret, so only the variable under test can stop the start. */
  function baseEnv(): Record<string, string> {
    return {
      HOST: '127.0.0.1',
      PORT: '0',
      NO_COLOR: '1',
      LOCAL_STORAGE_DIR: join(cwd, 'objects'),
      AUTH_JWT_SECRET: 'a-secret-of-at-least-thirty-two-characters',
      DATABASE_URL: `sqlite:${join(cwd, 'db.sqlite')}`,
    };
  }

  /** The whole output is one line: the reason, naming what to fix; no stack, no retries, non-zero exit. */
  function expectOneLineFailure(run: ServerRun, ...mentions: (string | RegExp)[]): string {
    const lines = run.output.trim().split('\n');
    expect({ lines, code: run.code }).toEqual({ lines: [expect.stringContaining('could not start')], code: 1 });
    for (const mention of mentions) expect(lines[0]).toMatch(mention);
    expect(run.output).not.toMatch(/^\s+at /m);
    expect(run.seconds).toBeLessThan(FAIL_FAST_SECONDS);
    return lines[0];
  }

  describe('npm run sweep (one janitor pass from cron) with a database it cannot use', () => {
    it.each<[string, () => Promise<string>, RegExp]>([
      [
        'a port where nothing listens',
        async () => `postgres://notes:hunter2secret@127.0.0.1:${await freePort()}/notes`,
        /ECONNREFUSED/,
      ],
      ['a SQLite path that is a folder', async () => `sqlite:${cwd}`, /DATABASE_URL/],
    ])('%s: one line naming DATABASE_URL, no stack, exit 1', async (_name, url, mention) => {
      const run = await runServer({
        cwd,
        entry: 'audio-clips/sweep.cli.js',
        env: { ...baseEnv(), DATABASE_URL: await url() },
      });
      const lines = run.output.trim().split('\n');
      expect({ lines, code: run.code }).toEqual({ lines: [expect.stringContaining('DATABASE_URL')], code: 1 });
      expect(lines[0]).toMatch(mention);
      expect(lines[0]).not.toContain('hunter2secret');
      expect(run.output).not.toMatch(/^\s+at /m);
    });
  });

  describe('a database it cannot use stops the start at once, in one line naming DATABASE_URL', () => {
    it('a port where nothing listens: the host named, the password hidden', async () => {
      const port = await freePort();
      const run = await runServer({
        cwd,
        env: { ...baseEnv(), DATABASE_URL: `postgres://notes:hunter2secret@127.0.0.1:${port}/notes` },
      });
      const line = expectOneLineFailure(run, /DATABASE_URL/, `127.0.0.1:${port}`, /ECONNREFUSED/);
      expect(line).not.toContain('hunter2secret');
    });

    it('a host name that does not resolve', async () => {
      const run = await runServer({
        cwd,
        env: { ...baseEnv(), DATABASE_URL: 'postgres://notes:pw@db.does-not-exist.invalid:5432/notes' },
      });
      expect(expectOneLineFailure(run, /DATABASE_URL/, 'db.does-not-exist.invalid', /ENOTFOUND|EAI_AGAIN/)).not.toMatch(
        /:pw@/,
      );
    });

    it('a server that never answers: waits DATABASE_CONNECT_TIMEOUT_SECONDS, and says so', async () => {
      const silent = await silentServer();
      try {
        const run = await runServer({
          cwd,
          env: {
            ...baseEnv(),
            DATABASE_URL: `postgres://notes:pw@127.0.0.1:${silent.port}/notes`,
            DATABASE_CONNECT_TIMEOUT_SECONDS: '1',
          },
        });
        expectOneLineFailure(run, /DATABASE_URL/, `127.0.0.1:${silent.port}`, /DATABASE_CONNECT_TIMEOUT_SECONDS=1/);
      } finally {
        await silent.close();
      }
    });

    it('a Postgres server without that database', async () => {
      const url = new URL(process.env.TEST_PG_URL!);
      url.pathname = '/no_such_database_here';
      const run = await runServer({ cwd, env: { ...baseEnv(), DATABASE_URL: url.toString() } });
      expectOneLineFailure(run, /DATABASE_URL/, url.host, /no_such_database_here.*does not exist/);
    });

    it('a SQLite path that is a folder, or not a database', async () => {
      const folder = await runServer({ cwd, env: { ...baseEnv(), DATABASE_URL: `sqlite:${cwd}` } });
      expectOneLineFailure(folder, /DATABASE_URL/, cwd, /unable to open/);
      await writeFile(join(cwd, 'garbage.sqlite'), 'this is not a SQLite file, not even close to one.'.repeat(100));
      const garbage = await runServer({
        cwd,
        env: { ...baseEnv(), DATABASE_URL: `sqlite:${join(cwd, 'garbage.sqlite')}` },
      });
      expectOneLineFailure(garbage, /DATABASE_URL/, 'garbage.sqlite', /not a database/);
    });
  });

  describe('a bucket it cannot use stops the start, in one line naming S3_BUCKET', () => {
    function s3Env(overrides: Record<string, string>): Record<string, string> {
      return { ...baseEnv(), ...testS3Env(), STORAGE_DRIVER: 's3', ...overrides };
    }

    it('a bucket that does not exist', async () => {
      const run = await runServer({ cwd, env: s3Env({ S3_BUCKET: 'no-such-bucket-here' }) });
      expectOneLineFailure(run, /S3_BUCKET/, 'no-such-bucket-here', /does not exist/);
    });

    it('a secret key the store refuses, and an access key it does not know', async () => {
      const wrongSecret = await runServer({ cwd, env: s3Env({ AWS_SECRET_ACCESS_KEY: 'not-the-secret' }) });
      const line = expectOneLineFailure(wrongSecret, /S3_BUCKET/, /AWS_SECRET_ACCESS_KEY/, /refuses/);
      expect(line).not.toContain('not-the-secret');
      const unknownKey = await runServer({ cwd, env: s3Env({ AWS_ACCESS_KEY_ID: 'NOBODY' }) });
      expectOneLineFailure(unknownKey, /S3_BUCKET/, /AWS_ACCESS_KEY_ID NOBODY/, /refuses/);
    });

    it('an endpoint where nothing listens, and one that never answers (S3_CONNECT_TIMEOUT_SECONDS)', async () => {
      const port = await freePort();
      const refused = await runServer({ cwd, env: s3Env({ S3_ENDPOINT_URL: `http://127.0.0.1:${port}` }) });
      expectOneLineFailure(refused, /S3_BUCKET/, `http://127.0.0.1:${port}`, /ECONNREFUSED/);
      const silent = await silentServer();
      try {
        const run = await runServer({
          cwd,
          env: s3Env({ S3_ENDPOINT_URL: `http://127.0.0.1:${silent.port}`, S3_CONNECT_TIMEOUT_SECONDS: '1' }),
        });
        expectOneLineFailure(run, /S3_BUCKET/, `127.0.0.1:${silent.port}`);
      } finally {
        await silent.close();
      }
    });
  });

  describe('.env', () => {
    let database: TestDatabase;

    beforeEach(async () => {
      database = await createTestDatabase('sqlite');
    });

    afterEach(async () => {
      await database.drop();
    });

    it('is read from the working directory, under the process environment, by the migrations too (LEGACY_OWNER_ID)', async () => {
      // A database from before sign-in existed, with one note.
      const config = loadAppConfig({ DATABASE_URL: database.url });
      const before = await new DataSource({
        ...dataSourceOptions(config.database),
        migrations: MIGRATIONS.slice(0, 1),
        migrationsRun: false,
        logging: false,
      }).initialize();
      await before.runMigrations();
      await before.query(
        "INSERT INTO notes (id, title, body, created_at, updated_at) VALUES ('5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90', 'old', '', '2026-01-01 00:00:00.000', '2026-01-01 00:00:00.000')",
      );
      await before.destroy();

      const { PORT: _port, DATABASE_URL: _url, ...env } = baseEnv();
      await writeFile(
        join(cwd, '.env'),
        [
          `DATABASE_URL=${database.url}`,
          'LEGACY_OWNER_ID=owner-from-dotenv',
          'PORT=not-a-port',
          'S3_KEY_PREFIX=from-dotenv',
        ].join('\n'),
      );
      // PORT from the process wins over the file's; the rest comes from the file.
      const run = await runServer({ cwd, env: { ...env, PORT: '0' }, until: /Advanced Notes API on/ });
      expect(run.output).toMatch(/Advanced Notes API on .*database: sqlite.*key prefix: from-dotenv\//);

      const after = await new DataSource({ ...dataSourceOptions(config.database), logging: false }).initialize();
      try {
        expect(await after.query('SELECT owner_id FROM notes')).toEqual([{ owner_id: 'owner-from-dotenv' }]);
      } finally {
        await after.destroy();
      }
    });
  });
});
