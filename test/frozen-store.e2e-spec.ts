import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wav } from './support/audio';
import { download, Phone, putBytes, type ApiResponse } from './support/phone';
import { storeThatGoesDown, type StoreThatGoesDown } from './support/store-that-goes-down';
import { startTestApp, type TestApp } from './support/test-app';
import { report } from './support/report';

/** Straight to the server: these answers are about time, and the check against openapi.json adds its own. */
const DIRECT = { validateResponses: false } as const;
const BUCKET = 'frozen-test';
/** The promise to clients: an answer within 10 s by default, whatever the store does. */
const ANSWER_WITHIN_MS = 10_000;
const timings: string[] = [];
jest.setTimeout(60_000);

afterAll(() => {
  if (timings.length > 0) report(`frozen-store timings (ms):\n${timings.join('\n')}`);
});

function s3Env(port: number): Record<string, string> {
  return {
    S3_ENDPOINT_URL: `http://127.0.0.1:${port}`,
    S3_BUCKET: BUCKET,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
  };
}

async function timed<T>(label: string, run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  const ms = performance.now() - started;
  timings.push(`${label}: ${ms.toFixed(0)}`);
  return { value, ms };
}

/** s3rver in a process of its own, so that it can be frozen with SIGSTOP like a hung store. */
async function startS3rverProcess(directory: string): Promise<{ child: ChildProcess; port: number }> {
  const script = `
    const S3rver = require('@20minutes/s3rver');
    new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: process.argv[1], configureBuckets: [{ name: '${BUCKET}' }] })
      .run().then(({ port }) => process.stdout.write(port + '\\n'));`;
  const child = spawn(process.execPath, ['-e', script, directory], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
  });
  return { child, port };
}

describe('a store that is frozen (SIGSTOP: it accepts connections and never answers)', () => {
  let directory: string;
  let store: { child: ChildProcess; port: number };
  let testApp: TestApp;
  let phone: Phone;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'an-frozen-s3-'));
    store = await startS3rverProcess(directory);
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 's3',
      env: { ...s3Env(store.port), MULTIPART_THRESHOLD_BYTES: String(5 * 1024 * 1024) },
    });
    phone = await testApp.phone('alice', DIRECT);
  });

  afterAll(async () => {
    store?.child.kill('SIGCONT');
    await testApp?.close();
    store?.child.kill('SIGKILL');
    await rm(directory, { recursive: true, force: true });
  });

  it('complete answers 503 with Retry-After within 10 s, changes nothing, and works once the store thaws', async () => {
    const audio = wav(0.5);
    const created = await phone.post('/api/audio-clips', {
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 500,
    });
    expect(created.status).toBe(201);
    expect((await putBytes(created.body.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    const clipBefore = await testApp.dataSource.query('SELECT * FROM audio_clips');

    store.child.kill('SIGSTOP');
    try {
      const frozen = await timed('complete against a frozen s3rver (default deadline)', () =>
        phone.post(`/api/audio-clips/${created.body.clip.id}/complete`),
      );
      expect(frozen.value.status).toBe(503);
      expect(frozen.value.body.error.code).toBe('STORAGE_UNAVAILABLE');
      expect(Number(frozen.value.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(frozen.ms).toBeLessThan(ANSWER_WITHIN_MS);
      expect(await testApp.dataSource.query('SELECT * FROM audio_clips')).toEqual(clipBefore);

      // Meanwhile the API serves everything that needs no store.
      const health = await timed('health while the store is frozen', () => phone.get('/api/health'));
      expect(health.value.status).toBe(200);
      expect(health.ms).toBeLessThan(ANSWER_WITHIN_MS);
      expect((await phone.get(`/api/audio-clips/${created.body.clip.id}`)).body.status).toBe('pending');
      const deleted = await timed('delete of another clip while frozen', async () => {
        const other = await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: 10, duration_ms: 1 });
        return phone.delete(`/api/audio-clips/${other.body.clip.id}`);
      });
      expect(deleted.value.status).toBe(204);
      expect(deleted.ms).toBeLessThan(ANSWER_WITHIN_MS);
    } finally {
      store.child.kill('SIGCONT');
    }

    const thawed = await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`);
    expect(thawed.status).toBe(200);
    expect(thawed.body.status).toBe('ready');
    const played = await download((await phone.get(`/api/audio-clips/${created.body.clip.id}/playback`)).body.url);
    expect(played.bytes.equals(audio)).toBe(true);
  });

  it('every multipart call answers 503 with Retry-After within 10 s: start, list the parts, complete', async () => {
    const bytes = 6 * 1024 * 1024;
    const started = await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes, duration_ms: 1 });
    expect(started.body.upload).toMatchObject({ mode: 'multipart', part_count: 2 });
    const clipId = started.body.clip.id as string;
    const rowsBefore = await testApp.dataSource.query('SELECT * FROM audio_clips ORDER BY id');

    store.child.kill('SIGSTOP');
    try {
      const calls: [string, () => Promise<ApiResponse>][] = [
        [
          'start of a multipart upload',
          () => phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes, duration_ms: 1 }),
        ],
        ['the stored parts of a multipart upload', () => phone.get(`/api/audio-clips/${clipId}/parts`)],
        ['complete of a multipart upload', () => phone.post(`/api/audio-clips/${clipId}/complete`)],
      ];
      for (const [what, call] of calls) {
        const answer = await timed(`${what} against a frozen s3rver (default deadline)`, call);
        expect({ what, status: answer.value.status, code: answer.value.body.error?.code }).toEqual({
          what,
          status: 503,
          code: 'STORAGE_UNAVAILABLE',
        });
        expect(Number(answer.value.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(answer.ms).toBeLessThan(ANSWER_WITHIN_MS);
      }
      expect(await testApp.dataSource.query('SELECT * FROM audio_clips ORDER BY id')).toEqual(rowsBefore);
      // Part URLs are signed without asking the store.
      expect((await phone.post(`/api/audio-clips/${clipId}/parts`, { part_numbers: [1, 2] })).status).toBe(200);
    } finally {
      store.child.kill('SIGCONT');
    }
  });
});

describe('a store that accepts connections and never says a word', () => {
  let silent: StoreThatGoesDown;
  let testApp: TestApp;

  beforeAll(async () => {
    // The start-up check of the bucket gets the one answer it needs; from then on the store accepts
    // connections and never says a word.
    silent = await storeThatGoesDown();
    testApp = await startTestApp({
      database: 'postgres',
      storage: 's3',
      env: { ...s3Env(Number(new URL(silent.endpoint).port)), STORAGE_TIMEOUT_SECONDS: '2' },
    });
    silent.freeze();
  });

  afterAll(async () => {
    await testApp?.close();
    await silent?.stop();
  });

  it('answers complete with 503 once STORAGE_TIMEOUT_SECONDS has passed, every time', async () => {
    const phone = await testApp.phone('bob', DIRECT);
    const created = await phone.post('/api/audio-clips', { mime_type: 'audio/ogg', bytes: 100, duration_ms: 1 });
    expect(created.status).toBe(201);
    const before = await testApp.dataSource.query('SELECT * FROM audio_clips');
    const answers = await timed('three concurrent completes against a silent TCP store (2 s deadline)', () =>
      Promise.all([1, 2, 3].map(() => phone.post(`/api/audio-clips/${created.body.clip.id}/complete`))),
    );
    for (const answer of answers.value) {
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).not.toBeNull();
    }
    expect(answers.ms).toBeGreaterThanOrEqual(1_900);
    expect(answers.ms).toBeLessThan(ANSWER_WITHIN_MS);
    expect(await testApp.dataSource.query('SELECT * FROM audio_clips')).toEqual(before);
    const again = await timed('a second complete against the silent store', () =>
      phone.post(`/api/audio-clips/${created.body.clip.id}/complete`),
    );
    expect(again.value.status).toBe(503);
    expect(again.ms).toBeLessThan(ANSWER_WITHIN_MS);
  });
});
