import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AudioClipsRepository } from '../src/audio-clips/audio-clips.repository';
import { UPLOAD_GRACE_MS } from '../src/audio-clips/deletions/deletion-rules';
import { UPLOAD_CLOCK_SKEW_MS } from '../src/audio-clips/upload-checks';
import type { StorageDriver } from '../src/storage/storage-driver';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { testS3Env } from './harness/databases';
import { wav } from './support/audio';
import { download, Phone, putBytes } from './support/phone';
import { startTestApp, type DatabaseKind, type StorageKind, type TestApp } from './support/test-app';

/**
 * A phone uploads and is killed before `POST …/complete`. The tests play the janitor's clock: every
 * pass is run at a moment they choose (`runOnce(now)`), relative to the upload URL's own expiry, so
 * nothing depends on how fast this machine is. Upload URLs live 60 s of real time, plenty for a PUT.
 */
const URL_SECONDS = 60;
// A guard against a hang on a loaded machine, not a speed target.
jest.setTimeout(60_000);
const TTL_SECONDS = 3600;
const DECLARED_DURATION_MS = 99_999;
const M4A = readFileSync(join(__dirname, 'fixtures', 'audio', 'tone-2s-faststart.m4a'));

interface Created {
  clip: { id: string; storage_key: string; created_at: string };
  upload: { url: string; storage_key: string; expires_at: string; headers: Record<string, string> };
}

async function create(phone: Phone, audio: Buffer, mimeType: string): Promise<Created> {
  const created = await phone.post('/api/audio-clips', {
    mime_type: mimeType,
    bytes: audio.length,
    duration_ms: DECLARED_DURATION_MS,
  });
  expect(created.status).toBe(201);
  return created.body;
}

async function put(created: Created, audio: Buffer): Promise<void> {
  expect((await putBytes(created.upload.url, audio, created.upload.headers)).status).toBe(200);
}

/** A moment relative to when the upload URL runs out. */
const afterExpiry = (created: Created, ms: number) => new Date(Date.parse(created.upload.expires_at) + ms);

/** Lets `parties` callers through only together (or after a timeout, so a missed race fails instead of hanging). */
function barrier(parties: number, timeoutMs = 15_000) {
  let arrived = 0;
  let release!: () => void;
  const together = new Promise<void>((resolve) => (release = resolve));
  const state = { met: false };
  return {
    state,
    async arrive(): Promise<void> {
      arrived += 1;
      if (arrived === parties) {
        state.met = true;
        release();
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([together, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
    },
  };
}

const SETUPS: [DatabaseKind, StorageKind][] = [
  ['sqlite', 'local'],
  ['postgres', 's3'],
];

describe.each(SETUPS)('uploads never completed, on %s + %s storage', (database, storage) => {
  let testApp: TestApp;
  let phone: Phone;

  beforeAll(async () => {
    testApp = await startTestApp({
      database,
      storage,
      env: { S3_PRESIGN_PUT_EXPIRES_SECONDS: String(URL_SECONDS), UPLOAD_TTL_SECONDS: String(TTL_SECONDS) },
    });
    phone = await testApp.phone('alice');
  });

  afterAll(async () => {
    await testApp?.close();
  });

  const clip = async (id: string) => (await phone.get(`/api/audio-clips/${id}`)).body;

  it('completes an upload the phone never completed in the first pass after its URL runs out: measured, byte-identical, completed_by server', async () => {
    const created = await create(phone, M4A, 'audio/m4a');
    await put(created, M4A);
    const before = await clip(created.clip.id);
    expect(before).toMatchObject({ status: 'pending', completed_by: null, completed_at: null });

    // While the URL is valid the phone may still complete (or upload again): the janitor waits.
    const early = await testApp.janitor.runOnce(afterExpiry(created, -1000));
    expect(early.completedClips).toBe(0);
    expect(await clip(created.clip.id)).toEqual(before);
    // …and a little longer, for the store's clock.
    await testApp.janitor.runOnce(afterExpiry(created, UPLOAD_CLOCK_SKEW_MS - 1));
    expect((await clip(created.clip.id)).status).toBe('pending');

    const report = await testApp.janitor.runOnce(afterExpiry(created, UPLOAD_CLOCK_SKEW_MS));
    expect(report).toMatchObject({ completedClips: 1, failedClips: 0, expiredClips: 0 });
    const after = await clip(created.clip.id);
    if (process.env.PRINT_CLIP_JSON === '1')
      console.log(`${database} + ${storage}\nbefore: ${JSON.stringify(before)}\nafter: ${JSON.stringify(after)}`);
    expect(after).toMatchObject({
      status: 'ready',
      completed_by: 'server',
      duration_source: 'measured',
      declared_duration_ms: DECLARED_DURATION_MS,
      completed_at: expect.any(String),
      failure_reason: null,
    });
    expect(Math.abs(after.duration_ms - 2000)).toBeLessThanOrEqual(50);
    // Moved into place, as `complete` does.
    expect(await testApp.storage.inspect(created.upload.storage_key)).toBeNull();
    const played = await download((await phone.get(`/api/audio-clips/${created.clip.id}/playback`)).body.url);
    expect(played.status).toBe(200);
    expect(played.bytes.equals(M4A)).toBe(true);

    // The app, back: it finds the recording among what changed since it last looked…
    const changed = await phone.get(
      `/api/audio-clips?status=ready&updated_since=${encodeURIComponent(before.updated_at)}`,
    );
    expect(changed.body.items).toContainEqual(after);
    // …and completing it now answers the same ready clip.
    const completed = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(completed.status).toBe(200);
    expect(completed.body).toEqual(after);
    // Later passes leave it as it is.
    await testApp.janitor.runOnce(afterExpiry(created, UPLOAD_GRACE_MS + TTL_SECONDS * 1000));
    expect(await clip(created.clip.id)).toEqual(after);
  });

  it('fails a text upload never completed, and deletes its bytes', async () => {
    const text = Buffer.from('Buy milk, call the plumber, book the flights for March.\n');
    const created = await create(phone, text, 'audio/mpeg');
    await put(created, text);
    const report = await testApp.janitor.runOnce(afterExpiry(created, UPLOAD_CLOCK_SKEW_MS));
    expect(report).toMatchObject({ completedClips: 0, failedClips: 1 });
    expect(await clip(created.clip.id)).toMatchObject({
      status: 'failed',
      completed_by: null,
      failure_reason: expect.stringMatching(/not audio\/mpeg audio/),
    });
    expect(await testApp.storage.inspect(created.upload.storage_key)).toBeNull();
    expect(await testApp.storage.inspect(created.clip.storage_key)).toBeNull();
  });

  it('expires a clip with nothing uploaded only once no upload can still land, past the TTL', async () => {
    const created = await create(phone, wav(0.5), 'audio/wav');
    const createdAt = Date.parse(created.clip.created_at);
    // Nothing there after the URL: it stays pending (the phone may ask for a new URL until the TTL).
    await testApp.janitor.runOnce(afterExpiry(created, UPLOAD_CLOCK_SKEW_MS));
    expect((await clip(created.clip.id)).status).toBe('pending');
    // Past the TTL, but an upload begun just before the URL ran out could still be arriving.
    const pastTtl = new Date(createdAt + TTL_SECONDS * 1000 + 1000);
    expect(pastTtl < afterExpiry(created, UPLOAD_GRACE_MS)).toBe(true);
    expect((await testApp.janitor.runOnce(pastTtl)).expiredClips).toBe(0);
    expect((await clip(created.clip.id)).status).toBe('pending');

    const report = await testApp.janitor.runOnce(afterExpiry(created, UPLOAD_GRACE_MS));
    expect(report.expiredClips).toBe(1);
    expect(await clip(created.clip.id)).toMatchObject({
      status: 'expired',
      completed_by: null,
      failure_reason: 'Nothing was uploaded in time.',
    });
  });

  it('completes an upload that lands after the first look at the next one, an hour after the URL ran out', async () => {
    const audio = wav(1, { noise: true });
    const created = await create(phone, audio, 'audio/wav');
    await testApp.janitor.runOnce(afterExpiry(created, UPLOAD_CLOCK_SKEW_MS));
    expect((await clip(created.clip.id)).status).toBe('pending');
    // A slow upload begun while the URL was valid arrives only now (the test's clock is past the URL;
    // the store's real one is not, so it takes the PUT as a store takes one begun in time).
    await put(created, audio);
    expect((await testApp.janitor.runOnce(afterExpiry(created, UPLOAD_GRACE_MS - 1))).completedClips).toBe(0);
    expect((await testApp.janitor.runOnce(afterExpiry(created, UPLOAD_GRACE_MS))).completedClips).toBe(1);
    expect(await clip(created.clip.id)).toMatchObject({ status: 'ready', completed_by: 'server' });
    const played = await download((await phone.get(`/api/audio-clips/${created.clip.id}/playback`)).body.url);
    expect(played.bytes.equals(audio)).toBe(true);
  });

  it('waits for the latest upload URL when the phone asked for a new one', async () => {
    const audio = wav(1, { noise: true });
    const first = await create(phone, audio, 'audio/wav');
    // URLs expire on whole seconds: the next second gives the new one a later expiry.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const renewed = await phone.post(`/api/audio-clips/${first.clip.id}/upload-url`);
    expect(renewed.status).toBe(200);
    expect(Date.parse(renewed.body.upload.expires_at)).toBeGreaterThan(Date.parse(first.upload.expires_at));
    await put(renewed.body, audio);

    await testApp.janitor.runOnce(afterExpiry(first, UPLOAD_CLOCK_SKEW_MS));
    expect((await clip(first.clip.id)).status).toBe('pending');
    await testApp.janitor.runOnce(afterExpiry(renewed.body, UPLOAD_CLOCK_SKEW_MS));
    expect(await clip(first.clip.id)).toMatchObject({ status: 'ready', completed_by: 'server' });
    expect((await phone.post(`/api/audio-clips/${first.clip.id}/upload-url`)).body.error.code).toBe(
      'AUDIO_CLIP_NOT_PENDING',
    );
  });

  it('ends the phone completing while the janitor does in one ready clip, every answer the same', async () => {
    for (let round = 0; round < 4; round += 1) {
      const audio = wav(0.5, { noise: true });
      const created = await create(phone, audio, 'audio/wav');
      await put(created, audio);
      const [completed] = await Promise.all([
        phone.post(`/api/audio-clips/${created.clip.id}/complete`),
        testApp.janitor.runOnce(afterExpiry(created, UPLOAD_CLOCK_SKEW_MS)),
      ]);
      const settled = await clip(created.clip.id);
      expect(settled.status).toBe('ready');
      expect(['client', 'server']).toContain(settled.completed_by);
      expect(completed.status).toBe(200);
      expect(completed.body).toEqual(settled);
      const played = await download((await phone.get(`/api/audio-clips/${created.clip.id}/playback`)).body.url);
      expect(played.bytes.equals(audio)).toBe(true);
    }
  });
});

describe.each(SETUPS)('a TTL shorter than the upload URL, on %s + %s storage', (database, storage) => {
  let testApp: TestApp;
  let phone: Phone;

  beforeAll(async () => {
    testApp = await startTestApp({
      database,
      storage,
      // The shortest TTL there is, under the URL's lifetime: the TTL has passed by the first look.
      env: { S3_PRESIGN_PUT_EXPIRES_SECONDS: '120', UPLOAD_TTL_SECONDS: '60' },
    });
    phone = await testApp.phone('alice');
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('never expires a clip while an upload begun with its URL may still land', async () => {
    const audio = wav(0.5, { noise: true });
    const empty = await create(phone, audio, 'audio/wav');
    const late = await create(phone, audio, 'audio/wav');
    // Past the TTL at the first look, but an upload begun in time could still be arriving.
    const firstLook = await testApp.janitor.runOnce(afterExpiry(late, UPLOAD_CLOCK_SKEW_MS));
    expect(firstLook.expiredClips).toBe(0);
    for (const created of [empty, late])
      expect((await phone.get(`/api/audio-clips/${created.clip.id}`)).body.status).toBe('pending');

    await put(late, audio); // it does arrive
    const lastLook = await testApp.janitor.runOnce(afterExpiry(late, UPLOAD_GRACE_MS));
    expect(lastLook).toMatchObject({ expiredClips: 1, completedClips: 1 });
    expect((await phone.get(`/api/audio-clips/${empty.clip.id}`)).body.status).toBe('expired');
    expect((await phone.get(`/api/audio-clips/${late.clip.id}`)).body).toMatchObject({
      status: 'ready',
      completed_by: 'server',
    });
  });
});

describe('an upload of another type than declared, never completed, on postgres + s3', () => {
  let testApp: TestApp;
  let phone: Phone;

  beforeAll(async () => {
    testApp = await startTestApp({
      database: 'postgres',
      storage: 's3',
      env: { S3_PRESIGN_PUT_EXPIRES_SECONDS: String(URL_SECONDS), UPLOAD_TTL_SECONDS: String(TTL_SECONDS) },
    });
    phone = await testApp.phone('alice');
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('stays pending while the phone could still upload again, and fails at the last look', async () => {
    const audio = wav(0.5, { noise: true });
    const created = await create(phone, audio, 'audio/wav');
    // Not through the URL (which binds the type): a writer with the bucket's credentials, or a store
    // that does not enforce signed headers.
    const env = testS3Env();
    const s3 = new S3Client({
      endpoint: env.S3_ENDPOINT_URL,
      region: env.AWS_REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
    });
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: env.S3_BUCKET,
          Key: created.upload.storage_key,
          Body: audio,
          ContentType: 'audio/mpeg',
        }),
      );
    } finally {
      s3.destroy();
    }

    const firstLook = await testApp.janitor.runOnce(afterExpiry(created, UPLOAD_CLOCK_SKEW_MS));
    expect(firstLook).toMatchObject({ completedClips: 0, failedClips: 0, expiredClips: 0 });
    expect((await phone.get(`/api/audio-clips/${created.clip.id}`)).body.status).toBe('pending');
    expect((await phone.post(`/api/audio-clips/${created.clip.id}/complete`)).body.error.code).toBe('UPLOAD_MISMATCH');

    // Past the TTL and past any upload that could still land: nothing else will come.
    const lastLook = await testApp.janitor.runOnce(afterExpiry(created, UPLOAD_GRACE_MS));
    expect(lastLook).toMatchObject({ completedClips: 0, failedClips: 1, expiredClips: 0 });
    expect((await phone.get(`/api/audio-clips/${created.clip.id}`)).body).toMatchObject({
      status: 'failed',
      completed_by: null,
      failure_reason: expect.stringContaining('stored as audio/mpeg but audio/wav was declared'),
    });
    expect(await testApp.storage.inspect(created.upload.storage_key)).toBeNull();
  });
});

describe.each(SETUPS)('two janitors at once on one %s + %s deployment', (database, storage) => {
  let first: TestApp;
  let second: TestApp;
  let phone: Phone;

  beforeAll(async () => {
    first = await startTestApp({
      database,
      storage,
      env: { S3_PRESIGN_PUT_EXPIRES_SECONDS: String(URL_SECONDS), UPLOAD_TTL_SECONDS: String(TTL_SECONDS) },
    });
    second = await startTestApp({ database, storage, sameDeploymentAs: first });
    phone = await first.phone('alice');
  });

  afterAll(async () => {
    jest.restoreAllMocks();
    await second?.close();
    await first?.close();
  });

  const repositoryOf = (app: TestApp) => app.app.get(AudioClipsRepository);

  /** Records, per instance, how many pending → ready changes its repository made. */
  function countPromotions(): number[] {
    const promotions = [0, 0];
    [first, second].forEach((app, index) => {
      const repository = repositoryOf(app);
      const markReady = repository.markReady.bind(repository);
      jest.spyOn(repository, 'markReady').mockImplementation(async (...args) => {
        const changed = await markReady(...args);
        if (changed) promotions[index] += 1;
        return changed;
      });
    });
    return promotions;
  }

  async function uploadedNeverCompleted(audio: Buffer): Promise<Created> {
    const created = await create(phone, audio, 'audio/wav');
    await put(created, audio);
    return created;
  }

  async function expectCompletedOnceByServer(created: Created, audio: Buffer): Promise<void> {
    const settled = (await phone.get(`/api/audio-clips/${created.clip.id}`)).body;
    expect(settled).toMatchObject({ status: 'ready', completed_by: 'server' });
    const played = await download((await phone.get(`/api/audio-clips/${created.clip.id}/playback`)).body.url);
    expect(played.bytes.equals(audio)).toBe(true);
    expect(await first.storage.inspect(created.upload.storage_key)).toBeNull();
  }

  /** Both janitors hold the clip as pending before either claims it. */
  function bothFind(clipId: string): ReturnType<typeof barrier> {
    const together = barrier(2);
    for (const app of [first, second]) {
      const repository = repositoryOf(app);
      const find = repository.findUploadsToLookFor.bind(repository);
      let waited = false;
      jest.spyOn(repository, 'findUploadsToLookFor').mockImplementation(async (...args) => {
        const found = await find(...args);
        if (!waited && found.some((clip) => clip.id === clipId)) {
          waited = true;
          await together.arrive();
        }
        return found;
      });
    }
    return together;
  }

  it('both find the clip, one claims the look and completes it, once', async () => {
    const audio = wav(1, { noise: true });
    const created = await uploadedNeverCompleted(audio);
    const together = bothFind(created.clip.id);
    const claims: boolean[] = [];
    for (const app of [first, second]) {
      const repository = repositoryOf(app);
      const claim = repository.claimUploadLook.bind(repository);
      jest.spyOn(repository, 'claimUploadLook').mockImplementation(async (...args) => {
        const won = await claim(...args);
        if (args[0] === created.clip.id) claims.push(won);
        return won;
      });
    }
    const promotions = countPromotions();
    try {
      const now = afterExpiry(created, UPLOAD_CLOCK_SKEW_MS);
      const reports = await Promise.all([first.janitor.runOnce(now), second.janitor.runOnce(now)]);
      expect(together.state.met).toBe(true);
      expect(claims.sort()).toEqual([false, true]);
      expect(reports.map((report) => report.completedClips).sort()).toEqual([0, 1]);
      expect(promotions[0] + promotions[1]).toBe(1);
    } finally {
      jest.restoreAllMocks();
    }
    await expectCompletedOnceByServer(created, audio);
  });

  it('completes it once even when both get past the claim (one lapsed) and verify the same upload together', async () => {
    const audio = wav(1, { noise: true });
    const created = await uploadedNeverCompleted(audio);
    const found = bothFind(created.clip.id);
    const together = barrier(2);
    for (const app of [first, second]) {
      const repository = repositoryOf(app);
      const claim = repository.claimUploadLook.bind(repository);
      // As if the first claim had lapsed (a janitor stalled past it): both go on to complete.
      jest.spyOn(repository, 'claimUploadLook').mockImplementation(async (...args) => {
        await claim(...args);
        return true;
      });
      const storageOf: StorageDriver = app.storage;
      const inspect = storageOf.inspect.bind(storageOf);
      let waited = false;
      jest.spyOn(storageOf, 'inspect').mockImplementation(async (key) => {
        const found = await inspect(key);
        // Both have seen the upload before either reads, moves or changes the row.
        if (!waited && key === created.upload.storage_key && found) {
          waited = true;
          await together.arrive();
        }
        return found;
      });
    }
    const promotions = countPromotions();
    try {
      const now = afterExpiry(created, UPLOAD_CLOCK_SKEW_MS);
      const reports = await Promise.all([first.janitor.runOnce(now), second.janitor.runOnce(now)]);
      expect(found.state.met).toBe(true);
      expect(together.state.met).toBe(true);
      expect(promotions[0] + promotions[1]).toBe(1);
      expect(reports.map((report) => report.completedClips).sort()).toEqual([0, 1]);
    } finally {
      jest.restoreAllMocks();
    }
    await expectCompletedOnceByServer(created, audio);
  });

  it('completes each of many clips exactly once', async () => {
    const clips: [Created, Buffer][] = [];
    for (let i = 0; i < 12; i += 1) {
      const audio = wav(0.25, { noise: true });
      clips.push([await uploadedNeverCompleted(audio), audio]);
    }
    const promotions = countPromotions();
    try {
      const now = afterExpiry(clips[clips.length - 1][0], UPLOAD_CLOCK_SKEW_MS);
      const [a, b] = await Promise.all([first.janitor.runOnce(now), second.janitor.runOnce(now)]);
      expect(a.completedClips + b.completedClips).toBe(12);
      expect(promotions[0] + promotions[1]).toBe(12);
    } finally {
      jest.restoreAllMocks();
    }
    for (const [created, audio] of clips) await expectCompletedOnceByServer(created, audio);
  });
});
