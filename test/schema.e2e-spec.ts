import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleLogger, Logger } from '@nestjs/common';
import { loadAppConfig } from '../src/config/app-config';
import { Client } from 'pg';
import {
  AppDataSource,
  dataSourceOptions,
  MIGRATION_LOCK_KEY,
  MIGRATIONS,
  openDatabase,
} from '../src/database/database.options';
import { createTestDatabase, type TestDatabase } from './harness/databases';
import { CapturedLogs } from './support/captured-logs';
import { builtServer, runServer } from './support/server-process';

// These tests start node processes (the server, TypeORM's CLI); a loaded machine needs seconds for each.
jest.setTimeout(180_000);

const ROOT = join(__dirname, '..');
const MIGRATION_FILES_DIR = join(ROOT, 'src', 'database', 'migrations');

/** What TypeORM's schema builder would run to make the database match the entities (`migration:generate`'s diff). */
async function schemaDiff(url: string): Promise<string[]> {
  const dataSource = await new AppDataSource({
    ...dataSourceOptions(loadAppConfig({ DATABASE_URL: url }).database),
    migrationsRun: false,
    // The table is missing before the first migration; that is an answer here, not an error to log.
    logging: false,
    logger: undefined,
  }).initialize();
  try {
    return (await dataSource.driver.createSchemaBuilder().log()).upQueries.map((query) => query.query);
  } finally {
    await dataSource.destroy();
  }
}

async function appliedMigrations(url: string): Promise<string[]> {
  const dataSource = await new AppDataSource({
    ...dataSourceOptions(loadAppConfig({ DATABASE_URL: url }).database),
    migrationsRun: false,
    // The table is missing before the first migration; that is an answer here, not an error to log.
    logging: false,
    logger: undefined,
  }).initialize();
  try {
    const rows = (await dataSource.query('SELECT name FROM migrations ORDER BY id')) as { name: string }[];
    return rows.map((row) => row.name);
  } finally {
    await dataSource.destroy();
  }
}

const ALL = MIGRATIONS.map((migration) => migration.name);

it('every migration file is registered in MIGRATIONS', async () => {
  const files = (await readdir(MIGRATION_FILES_DIR)).filter((file) => file.endsWith('.ts'));
  expect(files).toHaveLength(MIGRATIONS.length);
});

describe.each(['sqlite', 'postgres'] as const)('the schema on %s', (kind) => {
  let database: TestDatabase;
  let cwd: string;

  beforeAll(async () => {
    await builtServer();
  }, 180_000);

  beforeEach(async () => {
    database = await createTestDatabase(kind);
    cwd = await mkdtemp(join(tmpdir(), 'an-schema-'));
  });

  afterEach(async () => {
    await database.drop();
    await rm(cwd, { recursive: true, force: true });
  });

  it('after the migrations, matches the entities exactly: the schema diff is empty', async () => {
    // No app here, so Nest's logger would print to the console: its lines are captured instead.
    const logs = new CapturedLogs();
    Logger.overrideLogger(logs);
    try {
      const dataSource = await openDatabase(dataSourceOptions(loadAppConfig({ DATABASE_URL: database.url }).database));
      await dataSource.destroy();
    } finally {
      Logger.overrideLogger(new ConsoleLogger());
    }
    expect(logs.lines('log')).toEqual([`Database: Applied migrations: ${MIGRATIONS.map((m) => m.name).join(', ')}`]);
    expect(await schemaDiff(database.url)).toEqual([]);
  });

  it('npm run migration:run / migration:revert round-trip, and migration:generate finds nothing to generate', async () => {
    const dist = await builtServer();
    const env = { DATABASE_URL: database.url, NO_COLOR: '1' };
    const typeorm = (...args: string[]) =>
      runServer({
        cwd,
        env,
        entry: join('..', '..', 'node_modules', 'typeorm', 'cli.js'),
        args: [...args, '-d', join(dist, 'database', 'data-source.js')],
      });

    const run = await runServer({ cwd, env, entry: join('database', 'migrate.cli.js') });
    expect({ code: run.code, output: run.output }).toEqual({ code: 0, output: expect.stringContaining('Applied') });
    expect(await appliedMigrations(database.url)).toEqual(ALL);

    const revert = await typeorm('migration:revert');
    expect(revert.code).toBe(0);
    expect(await appliedMigrations(database.url)).toEqual(ALL.slice(0, -1));
    const again = await runServer({ cwd, env, entry: join('database', 'migrate.cli.js') });
    expect(again.code).toBe(0);
    expect(await appliedMigrations(database.url)).toEqual(ALL);

    const generate = await typeorm('migration:generate', join(cwd, 'Nothing'));
    expect(generate.output).toMatch(/No changes in database schema were found/);
    expect(await readdir(cwd)).toEqual([]);
  });

  it('four servers starting at once on a fresh database all come up, and each migration runs once', async () => {
    const runs = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => {
        const objects = join(cwd, `objects-${i}`);
        return runServer({
          cwd,
          env: {
            NO_COLOR: '1',
            HOST: '127.0.0.1',
            PORT: '0',
            DATABASE_URL: database.url,
            LOCAL_STORAGE_DIR: objects,
            AUTH_JWT_SECRET: 'a-secret-of-at-least-thirty-two-characters',
          },
          until: /Advanced Notes API on/,
          timeoutMs: 150_000,
        });
      }),
    );
    for (const run of runs) expect(run.output).toMatch(/Advanced Notes API on/);
    expect(await appliedMigrations(database.url)).toEqual(ALL);
    expect(await schemaDiff(database.url)).toEqual([]);
  });

  if (kind === 'postgres') {
    it('a server waits while another holds the migration lock, and migrates once it is free', async () => {
      const holder = new Client({ connectionString: database.url });
      await holder.connect();
      try {
        await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
        const starting = runServer({
          cwd,
          env: {
            NO_COLOR: '1',
            HOST: '127.0.0.1',
            PORT: '0',
            DATABASE_URL: database.url,
            LOCAL_STORAGE_DIR: join(cwd, 'objects'),
            AUTH_JWT_SECRET: 'a-secret-of-at-least-thirty-two-characters',
          },
          until: /Advanced Notes API on/,
          timeoutMs: 150_000,
        });
        // Until the lock is free, not one migration may run.
        const waiting = await holder.query(
          "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        );
        for (let i = 0; i < 150 && waiting.rows[0].n === 0; i += 1) {
          await new Promise((resolve) => setTimeout(resolve, 200));
          Object.assign(
            waiting,
            await holder.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"),
          );
        }
        expect(waiting.rows[0].n).toBe(1);
        expect(
          (await holder.query("SELECT to_regclass('notes') AS t, to_regclass('audio_clips') AS u")).rows[0],
        ).toEqual({ t: null, u: null });
        await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
        const run = await starting;
        expect(run.output).toMatch(/waiting for it[\s\S]*Advanced Notes API on/);
        expect(await appliedMigrations(database.url)).toEqual(ALL);
      } finally {
        await holder.end();
      }
    });
  }

  it('with MIGRATIONS_RUN=false, runs none, refuses to start while any is pending, and starts once they ran', async () => {
    const env = {
      NO_COLOR: '1',
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: database.url,
      MIGRATIONS_RUN: 'false',
      LOCAL_STORAGE_DIR: join(cwd, 'objects'),
      AUTH_JWT_SECRET: 'a-secret-of-at-least-thirty-two-characters',
    };
    const run = await runServer({ cwd, env });
    expect(run.code).toBe(1);
    expect(run.output.trim()).toMatch(
      new RegExp(
        `^Advanced Notes could not start: MIGRATIONS_RUN=false and ${MIGRATIONS.length} migration\\(s\\) are pending`,
      ),
    );
    expect(run.output).toMatch(/npm run migration:run/);
    // Not even TypeORM's migrations table was created.
    await expect(appliedMigrations(database.url)).rejects.toThrow(/migrations/);

    expect((await runServer({ cwd, env, entry: join('database', 'migrate.cli.js') })).code).toBe(0);
    const started = await runServer({ cwd, env, until: /Advanced Notes API on/ });
    expect(started.output).toMatch(/Advanced Notes API on/);
    expect(started.output).not.toMatch(/Applied migrations/);
  });
});
