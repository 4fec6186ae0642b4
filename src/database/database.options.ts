import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Logger } from '@nestjs/common';
import { DataSource, MigrationExecutor, type DataSourceOptions, type QueryRunner } from 'typeorm';
import type { DatabaseConfig } from '../config/app-config';
import { describeCause, redactUrl, StartupError } from '../common/startup-error';
import { AudioClip } from '../audio-clips/audio-clip.entity';
import { Note } from '../notes/note.entity';
import { IdempotencyKey } from '../idempotency/idempotency-key.entity';
import { NoteRevision } from '../notes/note-revision.entity';
import { SyncOwner } from '../sync/sync-owner.entity';
import { SyncTombstone } from '../sync/sync-tombstone.entity';
import { StorageDeletion } from '../audio-clips/deletions/storage-deletion.entity';
import { Rendition } from '../renditions/rendition.entity';
import { CreateNotesAndAudioClips1764220000000 } from './migrations/1764220000000-create-notes-and-audio-clips';
import { AddOwners1764300000000 } from './migrations/1764300000000-add-owners';
import { ClipLifecycle1764400000000 } from './migrations/1764400000000-clip-lifecycle';
import { ServerCompletion1764500000000 } from './migrations/1764500000000-server-completion';
import { UploadKeyIndex1764600000000 } from './migrations/1764600000000-upload-key-index';
import { MultipartUploads1764900000000 } from './migrations/1764900000000-multipart-uploads';
import { DeadUploadHolders1765000000000 } from './migrations/1765000000000-dead-upload-holders';
import { NoteSearch1765200000000 } from './migrations/1765200000000-note-search';
import { registerSqliteSearchFunction } from '../notes/search/search-sql';
import { DatabaseLogger } from './database-logger';
import { installSqliteGate } from './sqlite-gate';
import { Renditions1765400000000 } from './migrations/1765400000000-renditions';

import { Exports1765300000000 } from './migrations/1765300000000-exports';
import { Export } from '../exports/export.entity';
import { NotesSync1765100000000 } from './migrations/1765100000000-notes-sync';
import { NotesOwnerUpdated1765500000000 } from './migrations/1765500000000-notes-owner-updated';
import { SearchPrefixIndex1765600000000 } from './migrations/1765600000000-search-prefix-index';
import { SearchOwnerTerms1765700000000 } from './migrations/1765700000000-search-owner-terms';

export const ENTITIES = [
  Note,
  AudioClip,
  StorageDeletion,
  IdempotencyKey,
  NoteRevision,
  SyncOwner,
  SyncTombstone,
  Rendition,
  Export,
];
/** Every migration, in order. A new one (`npm run migration:generate`) must be added here. */
export const MIGRATIONS = [
  CreateNotesAndAudioClips1764220000000,
  AddOwners1764300000000,
  ClipLifecycle1764400000000,
  ServerCompletion1764500000000,
  UploadKeyIndex1764600000000,
  MultipartUploads1764900000000,
  DeadUploadHolders1765000000000,
  NotesSync1765100000000,
  NoteSearch1765200000000,
  Exports1765300000000,
  Renditions1765400000000,
  NotesOwnerUpdated1765500000000,
  SearchPrefixIndex1765600000000,
  SearchOwnerTerms1765700000000,
];

/** The migrations as configured: the owners migration hands old rows to LEGACY_OWNER_ID. */
export function migrationsFor(database: Pick<DatabaseConfig, 'legacyOwnerId'>): typeof MIGRATIONS {
  return MIGRATIONS.map((migration) =>
    migration === AddOwners1764300000000 ? AddOwners1764300000000.withLegacyOwner(database.legacyOwnerId) : migration,
  );
}

/**
 * Migrations, never `synchronize`. `migrationsRun` here means "openDatabase applies them, under a lock";
 * TypeORM itself never runs them on initialize (it would race other instances).
 */
export function dataSourceOptions(database: DatabaseConfig): DataSourceOptions {
  const common = {
    entities: ENTITIES,
    migrations: migrationsFor(database),
    migrationsRun: database.migrationsRun,
    migrationsTransactionMode: 'each' as const,
    synchronize: false,
    logging: ['error' as const, 'warn' as const],
    logger: new DatabaseLogger(),
  };
  if (database.type === 'postgres') {
    return {
      ...common,
      type: 'postgres',
      url: database.url,
      connectTimeoutMS: database.connectTimeoutSeconds * 1000,
      extra: { max: 10 },
    };
  }
  return {
    ...common,
    type: 'better-sqlite3',
    database: database.path,
    // WAL lets readers carry on while a write commits; the busy timeout rides out short write contention.
    prepareDatabase: (db: { pragma(source: string): unknown } & Parameters<typeof registerSqliteSearchFunction>[0]) => {
      db.pragma('journal_mode = WAL');
      db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
      db.pragma('foreign_keys = ON');
      // The search triggers on `notes` call it: without it a write to notes fails rather than leave search stale.
      registerSqliteSearchFunction(db);
    },
  };
}

const SQLITE_BUSY_TIMEOUT_MS = 5000;
/** How long an instance waits for another one's migrations on SQLite (Postgres waits as long as it takes). */
const SQLITE_MIGRATION_LOCK_TIMEOUT_MS = 10 * 60 * 1000;
/** Key of the Postgres advisory lock held while migrating (any fixed number; the lock is per database). */
export const MIGRATION_LOCK_KEY = 7_316_022_415;

const logger = new Logger('Database');

/**
 * The app's DataSource. Entities declare timestamps as `Date`, which TypeORM maps to SQLite's `datetime`
 * but to Postgres's `timestamp` without time zone, while the schema has `timestamptz` (the right type:
 * an instant). Decorators cannot say "timestamptz on Postgres only", so the built metadata says it here;
 * TypeORM's schema diff (and `migration:generate`) then agree with the migrations.
 */
export class AppDataSource extends DataSource {
  protected override async buildMetadatas(): Promise<void> {
    await super.buildMetadatas();
    if (this.options.type !== 'postgres') return;
    for (const entity of this.entityMetadatas) {
      for (const column of entity.columns) {
        if (column.type === Date || column.type === 'timestamp') column.type = 'timestamptz';
      }
    }
  }
}

/**
 * Connects, then applies pending migrations under a lock when `options.migrationsRun` says so, or
 * refuses to start while migrations are pending when it does not. A database that cannot be reached
 * stops the start within the connect timeout with one `StartupError` line naming DATABASE_URL.
 */
export async function openDatabase(options: DataSourceOptions): Promise<DataSource> {
  const dataSource = new AppDataSource({ ...options, migrationsRun: false });
  await connect(dataSource, options);
  if (options.type === 'better-sqlite3') installSqliteGate(dataSource, SQLITE_BUSY_TIMEOUT_MS);
  try {
    if (options.migrationsRun) await runMigrationsLocked(dataSource);
    else await refusePendingMigrations(dataSource);
    return dataSource;
  } catch (error) {
    await dataSource.destroy().catch(() => {});
    throw error;
  }
}

async function connect(dataSource: DataSource, options: DataSourceOptions): Promise<void> {
  const where = describeDatabase(options);
  try {
    if (options.type === 'better-sqlite3' && options.database !== ':memory:') {
      mkdirSync(dirname(options.database), { recursive: true });
    }
  } catch (error) {
    throw new StartupError(`DATABASE_URL: cannot create the folder of ${where}: ${describeCause(error)}`, {
      cause: error,
    });
  }
  const timeoutMs = options.type === 'postgres' ? (options.connectTimeoutMS ?? 5000) : SQLITE_BUSY_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const initializing = dataSource.initialize();
  // pg's own connect timeout covers the connection; this bounds anything after it too (a server that never answers).
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs + 1000);
  });
  try {
    await Promise.race([initializing, deadline]);
  } catch (error) {
    // If it connects after all, let it go.
    void initializing.then(() => dataSource.destroy()).catch(() => {});
    const verb = options.type === 'postgres' ? 'connect to' : 'open';
    const timedOut = /timeout|no answer within/i.test(describeCause(error));
    const hint = timedOut ? ` (DATABASE_CONNECT_TIMEOUT_SECONDS=${timeoutMs / 1000} sets how long to wait)` : '';
    throw new StartupError(`DATABASE_URL: cannot ${verb} ${where}: ${describeCause(error)}${hint}`, {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
  }
}

/** Where the database is, for messages: the Postgres URL without its password, or the SQLite file. */
export function describeDatabase(options: DataSourceOptions): string {
  if (options.type === 'postgres') return redactUrl(options.url ?? `postgres://${options.host}:${options.port}`);
  if (options.type === 'better-sqlite3') return `the SQLite file ${options.database}`;
  return options.type;
}

/** Instances starting together take turns: the first migrates, the others then find nothing to do. */
async function runMigrationsLocked(dataSource: DataSource): Promise<void> {
  const runner = dataSource.createQueryRunner();
  try {
    await runner.connect();
    if (dataSource.options.type === 'postgres') await migratePostgres(dataSource, runner);
    else await migrateSqlite(dataSource, runner);
  } finally {
    await runner.release();
  }
}

async function migratePostgres(dataSource: DataSource, runner: QueryRunner): Promise<void> {
  // A session lock on the runner's own connection: the migrations below run on that same connection.
  const [{ locked }] = (await runner.query('SELECT pg_try_advisory_lock($1) AS locked', [MIGRATION_LOCK_KEY])) as {
    locked: boolean;
  }[];
  if (!locked) {
    logger.log('Another instance is migrating the database; waiting for it.');
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
  }
  try {
    await execute(dataSource, runner, 'each');
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
  }
}

/** SQLite has one writer at a time: one exclusive transaction around the whole run (DDL included) is the lock. */
const sqliteTurns = new Map<string, Promise<unknown>>();

async function migrateSqlite(dataSource: DataSource, runner: QueryRunner): Promise<void> {
  // better-sqlite3 waits for a lock synchronously: two data sources of one process must not wait on each other.
  const file = String(dataSource.options.database);
  const previous = sqliteTurns.get(file) ?? Promise.resolve();
  const turn = previous
    .catch(() => {})
    .then(async () => {
      await runner.query(`PRAGMA busy_timeout = ${SQLITE_MIGRATION_LOCK_TIMEOUT_MS}`);
      try {
        await runner.query('BEGIN EXCLUSIVE');
      } finally {
        await runner.query(`PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
      }
      try {
        await execute(dataSource, runner, 'none');
        await runner.query('COMMIT');
      } catch (error) {
        await runner.query('ROLLBACK').catch(() => {});
        throw error;
      }
    });
  sqliteTurns.set(file, turn);
  try {
    await turn;
  } finally {
    if (sqliteTurns.get(file) === turn) sqliteTurns.delete(file);
  }
}

async function execute(dataSource: DataSource, runner: QueryRunner, transaction: 'each' | 'none'): Promise<void> {
  const executor = new MigrationExecutor(dataSource, runner);
  executor.transaction = transaction;
  const applied = await executor.executePendingMigrations();
  if (applied.length > 0) logger.log(`Applied migrations: ${applied.map((migration) => migration.name).join(', ')}`);
}

async function refusePendingMigrations(dataSource: DataSource): Promise<void> {
  const pending = (await new MigrationExecutor(dataSource).getPendingMigrations()).map((migration) => migration.name);
  if (pending.length > 0) {
    throw new StartupError(
      `MIGRATIONS_RUN=false and ${pending.length} migration(s) are pending (${pending.join(', ')}): ` +
        'run `npm run migration:run` first, or start with MIGRATIONS_RUN=true.',
    );
  }
}

/** SQLite keeps timestamps as `YYYY-MM-DD HH:MM:SS.SSS` text in UTC; comparisons must use the same form. */
export function timestampParameter(databaseType: DataSourceOptions['type'], value: Date): Date | string {
  return databaseType === 'postgres' ? value : value.toISOString().replace('T', ' ').replace('Z', '');
}
