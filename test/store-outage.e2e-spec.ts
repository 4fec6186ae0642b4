import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from '@20minutes/s3rver';
import { freePort } from './harness/free-port';
import { wav } from './support/audio';
import { CapturedLogs } from './support/captured-logs';
import { download, Phone, putBytes } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

const BUCKET = 'outage-test';

/**
 * This suite owns its S3 server, so it can stop it in the middle of the flow and start it again on the
 * same port and folder, as a store outage looks to the app.
 */
describe('a store outage in the middle of the flow', () => {
  let directory: string;
  let port: number;
  let server: S3rver | undefined;
  let testApp: TestApp;
  let phone: Phone;
  let logs: CapturedLogs;

  async function startStore(): Promise<void> {
    server = new S3rver({ address: '127.0.0.1', port, silent: true, directory, configureBuckets: [{ name: BUCKET }] });
    await server.run();
  }

  async function stopStore(): Promise<void> {
    await server?.close();
    server = undefined;
  }

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'an-outage-s3-'));
    port = await freePort();
    await startStore();
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 's3',
      env: {
        S3_ENDPOINT_URL: `http://127.0.0.1:${port}`,
        S3_BUCKET: BUCKET,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
      },
    });
    phone = await testApp.phone('alice');
    // The outage makes the driver log errors on purpose: they are asserted on below, not printed.
    logs = CapturedLogs.of(testApp.app);
  });

  afterAll(async () => {
    await testApp?.close();
    await stopStore();
    await rm(directory, { recursive: true, force: true });
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
});
