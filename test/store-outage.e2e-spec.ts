import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from '@20minutes/s3rver';
import { testS3Env } from './harness/databases';
import { freePort } from './harness/free-port';
import { describeEachWithLegs } from './harness/legs';
import { ownGateway, RGW_LEG } from './harness/rgw';
import { wav } from './support/audio';
import { CapturedLogs } from './support/captured-logs';
import { download, Phone, putBytes } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

/** A store this suite owns, so it can stop it in the middle of the flow and start it again on the same port. */
interface OwnStore {
  /** The S3 settings for the app. */
  env: Record<string, string>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Removes what the store kept, once stopped. */
  dispose(): Promise<void>;
}

const BUCKET = 'outage-test';

/** An s3rver on its own port and folder. */
async function ownS3rver(): Promise<OwnStore> {
  const directory = await mkdtemp(join(tmpdir(), 'an-outage-s3-'));
  const port = await freePort();
  let server: S3rver | undefined;
  return {
    env: {
      S3_ENDPOINT_URL: `http://127.0.0.1:${port}`,
      S3_BUCKET: BUCKET,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
    },
    start: async () => {
      server = new S3rver({
        address: '127.0.0.1',
        port,
        silent: true,
        directory,
        configureBuckets: [{ name: BUCKET }],
      });
      await server.run();
    },
    stop: async () => {
      await server?.close();
      server = undefined;
    },
    dispose: () => rm(directory, { recursive: true, force: true }),
  };
}

/** A radosgw of its own on the harness's Ceph cluster: the objects outlive it, as they would in production. */
async function ownRgw(): Promise<OwnStore> {
  const gateway = await ownGateway('outage');
  return {
    env: { ...testS3Env('rgw'), S3_ENDPOINT_URL: gateway.endpoint },
    start: gateway.start,
    stop: gateway.stop,
    dispose: async () => {},
  };
}

describeEachWithLegs<['s3rver' | 'rgw']>([['s3rver'], ['rgw']], [RGW_LEG])(
  'a store outage in the middle of the flow (%s)',
  (kind) => {
    let store: OwnStore;
    let testApp: TestApp;
    let phone: Phone;
    let logs: CapturedLogs;

    const startStore = () => store.start();
    const stopStore = () => store.stop();

    beforeAll(async () => {
      store = kind === 'rgw' ? await ownRgw() : await ownS3rver();
      await startStore();
      testApp = await startTestApp({ database: 'sqlite', storage: 's3', env: store.env });
      phone = await testApp.phone('alice');
      // The outage makes the driver log errors on purpose: they are asserted on below, not printed.
      logs = CapturedLogs.of(testApp.app);
    });

    afterAll(async () => {
      await testApp?.close();
      await store?.stop();
      await store?.dispose();
    });

    it('answers 503 with Retry-After while the store is down, loses nothing, and finishes once it is back', async () => {
      const audio = wav(1);
      const toDelete = (
        await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 1000 })
      ).body;
      expect((await putBytes(toDelete.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
      expect((await phone.post(`/api/audio-clips/${toDelete.clip.id}/complete`)).status).toBe(200);
      const toComplete = (
        await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 1000 })
      ).body;
      expect((await putBytes(toComplete.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);

      await stopStore();
      expect(logs.lines('error')).toEqual([]);

      const stalled = await phone.post(`/api/audio-clips/${toComplete.clip.id}/complete`);
      expect(stalled.status).toBe(503);
      expect(stalled.headers.get('retry-after')).toBe('5');
      expect(stalled.body.error.code).toBe('STORAGE_UNAVAILABLE');
      expect((await phone.get(`/api/audio-clips/${toComplete.clip.id}`)).body.status).toBe('pending');

      // Deleting still answers at once: the object's deletion is recorded and retried.
      const started = Date.now();
      expect((await phone.delete(`/api/audio-clips/${toDelete.clip.id}`)).status).toBe(204);
      // A bound for a hang, not a speed target: the delete waits on the store for a second at most.
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await phone.get(`/api/audio-clips/${toDelete.clip.id}`)).status).toBe(404);
      const [{ count }] = await testApp.dataSource.query('SELECT COUNT(*) AS count FROM storage_deletions');
      expect(Number(count)).toBeGreaterThanOrEqual(1);
      const whileDown = await testApp.janitor.runOnce(new Date(Date.now() + 10_000));
      expect(whileDown.failedDeletions).toBeGreaterThanOrEqual(1);
      // Each failure is logged once, by the driver, naming the operation and the cause; nothing else failed.
      const errors = logs.lines('error');
      expect(errors).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^S3StorageDriver: S3 inspect failed: .*ECONNREFUSED/),
          expect.stringMatching(/^S3StorageDriver: S3 delete failed: .*ECONNREFUSED/),
        ]),
      );
      expect(errors.filter((line) => !/^S3StorageDriver: S3 \w+ failed: .*ECONNREFUSED/.test(line))).toEqual([]);
      const loggedWhileDown = errors.length;

      await startStore();

      // The retry is scheduled with back-off; run the janitor as it will be by then.
      const report = await testApp.janitor.runOnce(new Date(Date.now() + 60 * 60_000));
      expect(report.deletedObjects).toBeGreaterThanOrEqual(1);
      expect(await testApp.storage.inspect(toDelete.clip.storage_key)).toBeNull();
      expect(await testApp.storage.inspect(toDelete.upload.storage_key)).toBeNull();

      const resumed = await phone.post(`/api/audio-clips/${toComplete.clip.id}/complete`);
      expect(resumed.status).toBe(200);
      expect(resumed.body.status).toBe('ready');
      const played = await download((await phone.get(`/api/audio-clips/${toComplete.clip.id}/playback`)).body.url);
      expect(played.bytes.equals(audio)).toBe(true);
      // Once the store is back, nothing more goes wrong.
      expect(logs.lines('error')).toHaveLength(loggedWhileDown);
    });
  },
);
