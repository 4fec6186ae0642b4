import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DataSourceOptions } from 'typeorm';
import type { DatabaseConfig } from '../config/app-config';
import { AudioClip } from '../audio-clips/audio-clip.entity';
import { Note } from '../notes/note.entity';
import { IdempotencyKey } from '../audio-clips/idempotency-key.entity';
import { StorageDeletion } from '../audio-clips/deletions/storage-deletion.entity';
import { CreateNotesAndAudioClips1764220000000 } from './migrations/1764220000000-create-notes-and-audio-clips';
import { AddOwners1764300000000 } from './migrations/1764300000000-add-owners';
import { ClipLifecycle1764400000000 } from './migrations/1764400000000-clip-lifecycle';
import { MultipartUploads1764900000000 } from './migrations/1764900000000-multipart-uploads';

export const ENTITIES = [Note, AudioClip, StorageDeletion, IdempotencyKey];
export const MIGRATIONS = [
  CreateNotesAndAudioClips1764220000000,
  AddOwners1764300000000,
  ClipLifecycle1764400000000,
  MultipartUploads1764900000000,
];

/** Migrations run at start-up and the schema is never synchronized from the entities. */
export function dataSourceOptions(database: DatabaseConfig): DataSourceOptions {
  const common = {
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsRun: true,
    migrationsTransactionMode: 'each' as const,
    synchronize: false,
    logging: ['error' as const, 'warn' as const],
  };
  if (database.type === 'postgres') {
    return { ...common, type: 'postgres', url: database.url, extra: { max: 10 } };
  }
  if (database.path !== ':memory:') mkdirSync(dirname(database.path), { recursive: true });
  return {
    ...common,
    type: 'better-sqlite3',
    database: database.path,
    // WAL lets readers carry on while a write commits; the busy timeout rides out short write contention.
    prepareDatabase: (db: { pragma(source: string): unknown }) => {
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
      db.pragma('foreign_keys = ON');
    },
  };
}

/** SQLite keeps timestamps as `YYYY-MM-DD HH:MM:SS.SSS` text in UTC; comparisons must use the same form. */
export function timestampParameter(databaseType: DataSourceOptions['type'], value: Date): Date | string {
  return databaseType === 'postgres' ? value : value.toISOString().replace('T', ' ').replace('Z', '');
}
