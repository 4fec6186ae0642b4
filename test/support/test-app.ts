import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';
import { createApp } from '../../src/app.factory';
import { STORAGE_DRIVER, type StorageDriver } from '../../src/storage/storage-driver';
import { createTestDatabase, testS3Env } from '../harness/databases';
import { freePort } from '../harness/free-port';

export type DatabaseKind = 'sqlite' | 'postgres';
export type StorageKind = 'local' | 's3';

export interface TestAppOptions {
  database: DatabaseKind;
  storage: StorageKind;
  /** Extra or overriding environment variables. */
  env?: Record<string, string>;
}

/** The whole app on a real loopback port, with its own fresh database and its own key prefix. */
export interface TestApp {
  baseUrl: string;
  app: NestFastifyApplication;
  dataSource: DataSource;
  storage: StorageDriver;
  keyPrefix: string;
  /** Files under the local driver's folder (object bytes and metadata), for leak checks; empty for S3. */
  localFiles(): Promise<string[]>;
  rowCounts(): Promise<{ notes: number; audioClips: number }>;
  close(): Promise<void>;
}

export async function startTestApp(options: TestAppOptions): Promise<TestApp> {
  const port = await freePort();
  const database = await createTestDatabase(options.database);
  const localDir = options.storage === 'local' ? await mkdtemp(join(tmpdir(), 'an-objects-')) : undefined;
  // Each app gets its own prefix, so runs sharing one bucket (or a real S3) never see each other's objects.
  const keyPrefix = `e2e-${randomBytes(6).toString('hex')}`;
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: database.url,
    S3_KEY_PREFIX: keyPrefix,
    ...(localDir ? { STORAGE_DRIVER: 'local', LOCAL_STORAGE_DIR: localDir } : { STORAGE_DRIVER: 's3', ...testS3Env() }),
    ...options.env,
  };

  let app: NestFastifyApplication | undefined;
  try {
    app = await createApp({ env, logLevels: ['error'] });
    await app.listen(port, '127.0.0.1');
  } catch (error) {
    await app?.close();
    await database.drop();
    if (localDir) await rm(localDir, { recursive: true, force: true });
    throw error;
  }
  const started = app;
  const dataSource = started.get(DataSource);

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    app: started,
    dataSource,
    storage: started.get<StorageDriver>(STORAGE_DRIVER),
    keyPrefix,
    localFiles: async () => (localDir ? listFiles(localDir) : []),
    rowCounts: async () => {
      const [notes] = await dataSource.query('SELECT COUNT(*) AS count FROM notes');
      const [audioClips] = await dataSource.query('SELECT COUNT(*) AS count FROM audio_clips');
      return { notes: Number(notes.count), audioClips: Number(audioClips.count) };
    },
    close: async () => {
      await started.close();
      await database.drop();
      if (localDir) await rm(localDir, { recursive: true, force: true });
    },
  };
}

/** Every file below `dir` except the driver's own signing key, relative to `dir`. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name !== '.signing-key')
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
    .sort();
}
