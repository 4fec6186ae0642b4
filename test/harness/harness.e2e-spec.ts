import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { isAbsolute } from 'node:path';
import { Client } from 'pg';
import { createTestDatabase, testS3Env } from './databases';
import { freePort } from './free-port';
import { describeEachWithLegs, LegUnavailable, skippedLegsBanner, startOptionalLeg } from './legs';
import { RGW_LEG } from './rgw';

describe('e2e harness', () => {
  describeEachWithLegs<['s3' | 'rgw']>([['s3'], ['rgw']], [RGW_LEG])('S3 store (%s)', (store) => {
    // Read in beforeAll: a skipped leg's describe body still runs, without its settings.
    let env: Record<string, string>;
    let s3: S3Client;
    beforeAll(() => {
      env = testS3Env(store);
      s3 = new S3Client({
        endpoint: env.S3_ENDPOINT_URL,
        region: env.AWS_REGION,
        credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
        forcePathStyle: true,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
    });
    afterAll(() => s3?.destroy());

    it('exposes all five S3 settings', () => {
      expect(Object.keys(env).sort()).toEqual(
        ['AWS_ACCESS_KEY_ID', 'AWS_REGION', 'AWS_SECRET_ACCESS_KEY', 'S3_BUCKET', 'S3_ENDPOINT_URL'].sort(),
      );
      for (const value of Object.values(env)) expect(value).not.toBe('');
    });

    it('accepts a presigned PUT and rejects it once the SigV4 signature is tampered with', async () => {
      const key = `harness-check/${randomUUID()}.txt`;
      const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: env.S3_BUCKET, Key: key }), { expiresIn: 60 });

      const tampered = new URL(url);
      const signature = tampered.searchParams.get('X-Amz-Signature') ?? '';
      expect(signature).toMatch(/^[0-9a-f]{64}$/);
      tampered.searchParams.set('X-Amz-Signature', `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`);
      const rejected = await fetch(tampered, { method: 'PUT', body: 'forged' });
      expect(rejected.status).toBe(403);
      expect(await rejected.text()).toContain('SignatureDoesNotMatch');

      const accepted = await fetch(url, { method: 'PUT', body: 'hello from the harness' });
      expect(accepted.status).toBe(200);
      await accepted.arrayBuffer();
      try {
        const stored = await s3.send(new GetObjectCommand({ Bucket: env.S3_BUCKET, Key: key }));
        expect(await stored.Body?.transformToString()).toBe('hello from the harness');
      } finally {
        await s3.send(new DeleteObjectCommand({ Bucket: env.S3_BUCKET, Key: key }));
      }
    });

    // Not what the app relies on any more (the S3 driver checks what a copy wrote), but docs/testing.md's
    // table of stores says so: when a Ceph upgrade changes it, this tells.
    if (store === 'rgw')
      it('copies despite a failed x-amz-copy-source-if-match (an RGW quirk)', async () => {
        const key = `harness-check/${randomUUID()}`;
        await s3.send(new PutObjectCommand({ Bucket: env.S3_BUCKET, Key: key, Body: 'source' }));
        try {
          await s3.send(
            new CopyObjectCommand({
              Bucket: env.S3_BUCKET,
              Key: `${key}.copy`,
              CopySource: `${env.S3_BUCKET}/${key}`,
              CopySourceIfMatch: '"00000000000000000000000000000000"',
            }),
          );
          const copied = await s3.send(new GetObjectCommand({ Bucket: env.S3_BUCKET, Key: `${key}.copy` }));
          expect(await copied.Body?.transformToString()).toBe('source');
        } finally {
          await s3.send(new DeleteObjectCommand({ Bucket: env.S3_BUCKET, Key: key }));
          await s3.send(new DeleteObjectCommand({ Bucket: env.S3_BUCKET, Key: `${key}.copy` }));
        }
      });
  });

  describe('optional legs', () => {
    const ci = process.env.CI;
    const skip = process.env.TEST_SKIP_LEGS;
    afterEach(() => {
      restore('CI', ci);
      restore('TEST_SKIP_LEGS', skip);
    });
    const restore = (name: string, value: string | undefined) =>
      value === undefined ? delete process.env[name] : (process.env[name] = value);
    const missing = () => Promise.reject(new LegUnavailable('not installed'));

    it('skips a leg whose prerequisites are missing outside CI, and says why', async () => {
      delete process.env.CI;
      const { started, outcome } = await startOptionalLeg('demo', missing);
      expect(started).toBeUndefined();
      expect(outcome).toEqual({ name: 'demo', skippedBecause: 'not installed' });
      expect(skippedLegsBanner([outcome])).toContain('DEMO: not installed');
    });

    it.each(['true', '1', 'yes'])('fails a leg whose prerequisites are missing when CI=%s', async (value) => {
      process.env.CI = value;
      await expect(startOptionalLeg('demo', missing)).rejects.toThrow('the demo leg cannot run in CI');
    });

    it('fails on a leg that is installed but does not start, in CI or not', async () => {
      delete process.env.CI;
      await expect(startOptionalLeg('demo', () => Promise.reject(new Error('port taken')))).rejects.toThrow(
        'port taken',
      );
    });

    it('skips a leg named in TEST_SKIP_LEGS, except in CI', async () => {
      delete process.env.CI;
      process.env.TEST_SKIP_LEGS = 'other, Demo';
      let ran = false;
      const start = async () => (ran = true);
      expect((await startOptionalLeg('demo', start)).outcome.skippedBecause).toMatch(/TEST_SKIP_LEGS/);
      expect(ran).toBe(false);
      process.env.CI = 'true';
      await expect(startOptionalLeg('demo', start)).rejects.toThrow('TEST_SKIP_LEGS');
      process.env.CI = 'false';
      expect((await startOptionalLeg('demo', start)).outcome.skippedBecause).toBeDefined();
    });

    it('has nothing to say when every leg ran', () => {
      expect(skippedLegsBanner([{ name: 'demo' }])).toBeUndefined();
    });
  });

  describe('createTestDatabase', () => {
    it('creates a postgres database that accepts queries, and drops it even while connected', async () => {
      const database = await createTestDatabase('postgres');
      const name = new URL(database.url).pathname.slice(1);
      expect(database.url).toMatch(/^postgres:\/\//);

      const client = new Client({ connectionString: database.url });
      client.on('error', () => {}); // drop() terminates this connection on purpose
      await client.connect();
      try {
        const { rows } = await client.query<{ one: number; db: string }>('SELECT 1 AS one, current_database() AS db');
        expect(rows).toEqual([{ one: 1, db: name }]);
        await database.drop();
      } finally {
        await client.end().catch(() => {});
      }

      const admin = new Client({ connectionString: process.env.TEST_PG_URL });
      await admin.connect();
      try {
        const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        expect(rowCount).toBe(0);
      } finally {
        await admin.end();
      }
      await expect(database.drop()).resolves.toBeUndefined();
    });

    it("gives each postgres database its own name, tagged with the run's prefix", async () => {
      const [a, b] = await Promise.all([createTestDatabase('postgres'), createTestDatabase('postgres')]);
      try {
        expect(a.url).not.toBe(b.url);
        for (const { url } of [a, b]) expect(new URL(url).pathname.slice(1)).toMatch(/^test_[0-9a-f]{8}_[0-9a-f]{16}$/);
      } finally {
        await Promise.all([a.drop(), b.drop()]);
      }
    });

    it('returns a writable sqlite file path and removes the file and its journals on drop', async () => {
      const database = await createTestDatabase('sqlite');
      expect(database.url).toMatch(/^sqlite:\//);
      const path = database.url.slice('sqlite:'.length);
      expect(isAbsolute(path)).toBe(true);
      expect(existsSync(path)).toBe(false);

      await writeFile(path, 'not really sqlite');
      await writeFile(`${path}-wal`, '');
      await database.drop();
      expect(existsSync(path)).toBe(false);
      expect(existsSync(`${path}-wal`)).toBe(false);
    });
  });

  describe('freePort', () => {
    it('returns a port that can be listened on', async () => {
      const port = await freePort();
      expect(port).toBeGreaterThan(0);
      const server = createServer();
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
  });
});
