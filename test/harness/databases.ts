import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { dropDatabase, withAdmin } from './pg-admin';

export interface TestDatabase {
  /** DATABASE_URL for the app: `postgres://…` or `sqlite:/abs/path.sqlite`. */
  readonly url: string;
  drop(): Promise<void>;
}

/** A fresh, empty database of the given kind; drop() it when done. */
export async function createTestDatabase(kind: 'sqlite' | 'postgres'): Promise<TestDatabase> {
  return kind === 'postgres' ? createPostgresDatabase() : createSqliteDatabase();
}

/**
 * The S3 settings for the app under test: `s3` is the store global setup provided (s3rver, or the one
 * S3_ENDPOINT_URL names), `rgw` the RADOS Gateway leg.
 */
export function testS3Env(store: 's3' | 'rgw' = 's3'): Record<string, string> {
  const prefix = store === 'rgw' ? 'TEST_RGW_' : 'TEST_';
  const names = ['S3_ENDPOINT_URL', 'S3_BUCKET', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];
  return Object.fromEntries(names.map((name) => [name, harnessVar(prefix + name)]));
}

async function createPostgresDatabase(): Promise<TestDatabase> {
  const adminUrl = harnessVar('TEST_PG_URL');
  const name = `${harnessVar('TEST_PG_DB_PREFIX')}${randomBytes(8).toString('hex')}`;
  await withAdmin(adminUrl, (admin) => admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withAdmin(adminUrl, (admin) => dropDatabase(admin, name)),
  };
}

function createSqliteDatabase(): TestDatabase {
  // Inside the run's scratch directory, so global teardown removes files a test forgot to drop.
  const path = join(harnessVar('TEST_SQLITE_DIR'), `test-${randomBytes(8).toString('hex')}.sqlite`);
  return {
    url: `sqlite:${path}`,
    drop: async () => {
      await Promise.all(['', '-wal', '-shm', '-journal'].map((suffix) => rm(path + suffix, { force: true })));
    },
  };
}

function harnessVar(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: the e2e global setup (test/harness/global-setup.ts) did not run. ` +
        'Run the tests with `npm run test:e2e`.',
    );
  }
  return value;
}
