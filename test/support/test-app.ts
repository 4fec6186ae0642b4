import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { SignJWT } from 'jose';
import { DataSource } from 'typeorm';
import { createApp } from '../../src/app.factory';
import { STORAGE_DRIVER, type StorageDriver } from '../../src/storage/storage-driver';
import { AudioClipJanitor } from '../../src/audio-clips/audio-clip-janitor.service';
import { createTestDatabase, testS3Env } from '../harness/databases';
import { freePort } from '../harness/free-port';
import { Phone, type PhoneOptions } from './phone';

export type DatabaseKind = 'sqlite' | 'postgres';
/** `s3`: s3rver (or the store S3_ENDPOINT_URL names); `rgw`: Ceph's RADOS Gateway, an optional leg (test/harness/legs.ts). */
export type StorageKind = 'local' | 's3' | 'rgw';

export interface TestAppOptions {
  database: DatabaseKind;
  storage: StorageKind;
  /** Extra or overriding environment variables. */
  env?: Record<string, string>;
  /** Share another test app's database and objects (several instances of one deployment). */
  sameDeploymentAs?: TestApp;
  /**
   * Receives the app's log lines (with LOG_LEVEL in `env`). Without one they are kept in memory
   * (`TestApp.logLines`) rather than printed, so a passing run prints nothing of the app's.
   */
  logDestination?: { write(line: string): void };
}

/** The whole app on a real loopback port, with its own fresh database and its own key prefix. */
export interface TestApp {
  baseUrl: string;
  app: NestFastifyApplication;
  dataSource: DataSource;
  storage: StorageDriver;
  keyPrefix: string;
  env: Record<string, string>;
  /** The app's log lines (errors only unless `env` sets LOG_LEVEL), when the test gave no `logDestination`. */
  logLines: string[];
  janitor: AudioClipJanitor;
  /** A valid bearer token for the given user (the `sub`), signed with the app's shared secret. */
  tokenFor(userId: string, claims?: Record<string, unknown>): Promise<string>;
  /** A phone signed in as the given user; its answers are checked against openapi.json unless `options` say not. */
  phone(userId: string, options?: PhoneOptions): Promise<Phone>;
  /** Files under the local driver's folder (object bytes and metadata), for leak checks; empty for S3. */
  localFiles(): Promise<string[]>;
  /**
   * What this app has stored (object keys under its prefix, or the local driver's files), for leak
   * checks. Not on s3rver, which mis-verifies the signature of bucket-level calls such as listing.
   */
  storedKeys(): Promise<string[]>;
  rowCounts(): Promise<{ notes: number; audioClips: number }>;
  close(): Promise<void>;
}

export async function startTestApp(options: TestAppOptions): Promise<TestApp> {
  const port = await freePort();
  const shared = options.sameDeploymentAs;
  const database = shared
    ? { url: shared.env.DATABASE_URL, drop: async () => {} }
    : await createTestDatabase(options.database);
  const localDir = shared
    ? undefined
    : options.storage === 'local'
      ? await mkdtemp(join(tmpdir(), 'an-objects-'))
      : undefined;
  // Each app gets its own prefix, so runs sharing one bucket (or a real S3) never see each other's objects.
  const keyPrefix = `e2e-${randomBytes(6).toString('hex')}`;
  const authSecret = randomBytes(32).toString('base64url');
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    DATABASE_URL: database.url,
    S3_KEY_PREFIX: keyPrefix,
    AUTH_JWT_SECRET: authSecret,
    // The tests run the janitor themselves, at the times they choose.
    JANITOR_INTERVAL_SECONDS: '0',
    // No background renditions unless a test asks (test/renditions*): the other tests' rows and objects stay still.
    RENDITION_CONCURRENCY: '0',
    // One test user makes far more requests than a phone would; the rate-limit tests set their own.
    RATE_LIMIT_PER_MINUTE: '100000',
    UPLOAD_RATE_LIMIT_PER_MINUTE: '100000',
    // Quiet unless a test listens; no metrics port unless a test scrapes one.
    LOG_LEVEL: 'error',
    METRICS_PORT: '0',
    ...(localDir
      ? { STORAGE_DRIVER: 'local', LOCAL_STORAGE_DIR: localDir }
      : { STORAGE_DRIVER: 's3', ...testS3Env(options.storage === 'rgw' ? 'rgw' : 's3') }),
    ...shared?.env,
    ...options.env,
    PORT: String(port),
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
  };

  const logLines: string[] = [];
  const logDestination = options.logDestination ?? { write: (line: string) => void logLines.push(line) };
  let app: NestFastifyApplication | undefined;
  try {
    app = await createApp({ env, logDestination });
    await app.listen(port, '127.0.0.1');
  } catch (error) {
    await app?.close();
    await database.drop();
    if (localDir) await rm(localDir, { recursive: true, force: true });
    throw error;
  }
  const started = app;
  const dataSource = started.get(DataSource);
  const baseUrl = `http://127.0.0.1:${port}`;
  // Ten minutes of validity unless the claims say otherwise (expired and not-yet-valid tokens).
  const tokenFor = (userId: string, claims: Record<string, unknown> = {}) =>
    new SignJWT({ iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600, ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(userId)
      .sign(new TextEncoder().encode(env.AUTH_JWT_SECRET));

  return {
    baseUrl,
    env,
    logLines,
    janitor: started.get(AudioClipJanitor),
    tokenFor,
    phone: async (userId, phoneOptions) => new Phone(baseUrl, await tokenFor(userId), phoneOptions),
    app: started,
    dataSource,
    storage: started.get<StorageDriver>(STORAGE_DRIVER),
    keyPrefix: env.S3_KEY_PREFIX,
    localFiles: async () =>
      env.LOCAL_STORAGE_DIR && env.STORAGE_DRIVER === 'local' ? listFiles(env.LOCAL_STORAGE_DIR) : [],
    storedKeys: async () => (env.STORAGE_DRIVER === 'local' ? listFiles(env.LOCAL_STORAGE_DIR) : listS3Keys(env)),
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

async function listS3Keys(env: Record<string, string>): Promise<string[]> {
  const client = new S3Client({
    endpoint: env.S3_ENDPOINT_URL,
    region: env.AWS_REGION,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
    forcePathStyle: true,
  });
  try {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: env.S3_BUCKET, Prefix: `${env.S3_KEY_PREFIX}/`, ContinuationToken: token }),
      );
      keys.push(...(page.Contents ?? []).map((object) => object.Key!));
      token = page.NextContinuationToken;
    } while (token);
    return keys.sort();
  } finally {
    client.destroy();
  }
}
