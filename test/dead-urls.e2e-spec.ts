import { UPLOAD_GRACE_MS } from '../src/audio-clips/deletions/deletion-rules';
import { describeEachWithLegs, describeIfLeg } from './harness/legs';
import { RGW_LEG } from './harness/rgw';
import { wav } from './support/audio';
import { putBytes, type Phone } from './support/phone';
import { startTestApp, type DatabaseKind, type StorageKind, type TestApp } from './support/test-app';

describe('upload URLs of clips that are gone take no bytes (local store)', () => {
  let testApp: TestApp;
  let phone: Phone;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
    phone = await testApp.phone('alice');
  });

  afterAll(async () => {
    await testApp?.close();
  });

  const audio = wav(0.2);
  async function created() {
    return (await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 200 }))
      .body;
  }

  async function expectRefused(url: string): Promise<void> {
    const files = await testApp.localFiles();
    const answer = await putBytes(url, audio, { 'Content-Type': 'audio/wav' });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.text).error.code).toBe('SIGNED_URL_INVALID');
    expect(await testApp.localFiles()).toEqual(files);
  }

  it('after the clip was deleted (before any upload)', async () => {
    const clip = await created();
    expect((await phone.delete(`/api/audio-clips/${clip.clip.id}`)).status).toBe(204);
    await expectRefused(clip.upload.url);
  });

  it('after the clip was deleted (after an upload)', async () => {
    const clip = await created();
    expect((await putBytes(clip.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.delete(`/api/audio-clips/${clip.clip.id}`)).status).toBe(204);
    await expectRefused(clip.upload.url);
  });

  it('after the clip failed (its bytes were not audio)', async () => {
    const clip = await created();
    const junk = Buffer.alloc(audio.length, 7);
    expect((await putBytes(clip.upload.url, junk, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.post(`/api/audio-clips/${clip.clip.id}/complete`)).status).toBe(422);
    await expectRefused(clip.upload.url);
  });

  it('after the clip became ready (no second copy beside the recording)', async () => {
    const clip = await created();
    expect((await putBytes(clip.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.post(`/api/audio-clips/${clip.clip.id}/complete`)).status).toBe(200);
    await expectRefused(clip.upload.url);
  });

  it('after the note holding the clip was deleted', async () => {
    const note = (await phone.post('/api/notes', { title: 'n' })).body;
    const clip = (
      await phone.post('/api/audio-clips', {
        note_id: note.id,
        mime_type: 'audio/wav',
        bytes: audio.length,
        duration_ms: 200,
      })
    ).body;
    expect((await phone.delete(`/api/notes/${note.id}`)).status).toBe(204);
    await expectRefused(clip.upload.url);
  });

  it('while a pending clip still takes its upload, again and again', async () => {
    const clip = await created();
    expect((await putBytes(clip.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await putBytes(clip.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.post(`/api/audio-clips/${clip.clip.id}/complete`)).body.status).toBe('ready');
  });
});

/** Two hours on: every upload URL handed out in the test (15 minutes) has run out, its grace (an hour) too. */
const afterEveryUrl = () => new Date(Date.now() + 2 * 60 * 60_000);

/** Postgres hands timestamps back as Dates, SQLite as `YYYY-MM-DD HH:MM:SS.SSS` text in UTC. */
const timeOf = (value: Date | string) =>
  value instanceof Date ? value.getTime() : Date.parse(`${value.replace(' ', 'T')}Z`);

/**
 * Waits until the deletion tried at once (in the background once the answer has gone) is done with the
 * key: its entry then waits for the last delete, after the URL has run out. Bytes sent before that
 * could be deleted by it, and a multipart upload is aborted by then.
 */
async function immediateDeletionDone(testApp: TestApp, storageKey: string): Promise<void> {
  const sql = testApp.env.DATABASE_URL.startsWith('postgres')
    ? 'SELECT next_attempt_at, delete_after, held_bytes FROM storage_deletions WHERE storage_key = $1'
    : 'SELECT next_attempt_at, delete_after, held_bytes FROM storage_deletions WHERE storage_key = ?';
  for (const deadline = Date.now() + 15_000; Date.now() < deadline;) {
    const [entry] = await testApp.dataSource.query(sql, [storageKey]);
    if (entry && timeOf(entry.next_attempt_at) === timeOf(entry.delete_after)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the deletion of ${storageKey} was not tried within 15 s`);
}

/** S3 (s3rver, Ceph's RGW) cannot revoke a presigned URL: what it still writes is counted against the owner. */
describeEachWithLegs<[DatabaseKind, StorageKind]>(
  [
    ['sqlite', 's3'],
    ['postgres', 's3'],
    ['postgres', 'rgw'],
  ],
  [RGW_LEG],
)(
  'upload URLs of clips that are gone, on %s + %s storage: their bytes count against the owner',
  (database, storage) => {
    const audio = wav(0.2);
    /** Room for exactly two recordings. */
    const QUOTA = 2 * audio.length;
    const junk = Buffer.alloc(audio.length, 7);
    const wavHeaders = { 'Content-Type': 'audio/wav' };

    describe('the storage quota', () => {
      let testApp: TestApp;

      beforeAll(async () => {
        testApp = await startTestApp({ database, storage, env: { USER_QUOTA_BYTES: String(QUOTA) } });
      }, 120_000);

      afterAll(async () => {
        await testApp?.close();
      });

      const create = (phone: Phone, bytes: number, extra: Record<string, unknown> = {}) =>
        phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes, duration_ms: 200, ...extra });

      /**
       * The dead URL writes (the store answers 200 and keeps the bytes); a create of the whole quota, which
       * fits without them, is refused until a janitor pass after the URL ran out has deleted them.
       */
      async function expectCountedUntilDeleted(
        phone: Phone,
        upload: { url: string; storage_key: string; expires_at: string },
        bytes: Buffer,
      ) {
        await immediateDeletionDone(testApp, upload.storage_key);
        expect((await putBytes(upload.url, bytes, wavHeaders)).status).toBe(200);
        expect(await testApp.storage.inspect(upload.storage_key)).toMatchObject({ size: bytes.length });

        const refused = await create(phone, QUOTA);
        expect(refused.status).toBe(413);
        const countedUntil = new Date(Date.parse(upload.expires_at) + UPLOAD_GRACE_MS).toISOString();
        expect(refused.body.error).toMatchObject({
          code: 'QUOTA_EXCEEDED',
          quota_bytes: QUOTA,
          used_bytes: audio.length,
          remaining_bytes: QUOTA - audio.length,
          dead_uploads: 1,
          dead_upload_bytes: audio.length,
          dead_uploads_counted_until: countedUntil,
        });
        expect(refused.body.error.message).toContain(`they stop counting after ${countedUntil}`);

        // A pass while the URL is still valid changes nothing.
        await testApp.janitor.runOnce();
        expect((await create(phone, QUOTA)).status).toBe(413);

        await testApp.janitor.runOnce(afterEveryUrl());
        expect(await testApp.storage.inspect(upload.storage_key)).toBeNull();
        if (storage === 'rgw') expect(await testApp.storedKeys()).not.toContain(upload.storage_key);
        expect((await create(phone, QUOTA)).status).toBe(201);
      }

      it('of a deleted clip', async () => {
        const phone = await testApp.phone('deleted');
        const created = (await create(phone, audio.length)).body;
        expect((await phone.delete(`/api/audio-clips/${created.clip.id}`)).status).toBe(204);
        await expectCountedUntilDeleted(phone, created.upload, audio);
      });

      it('of a clip deleted after its upload, its bytes already in place', async () => {
        const phone = await testApp.phone('uploaded-then-deleted');
        const created = (await create(phone, audio.length)).body;
        expect((await putBytes(created.upload.url, audio, wavHeaders)).status).toBe(200);
        expect((await phone.delete(`/api/audio-clips/${created.clip.id}`)).status).toBe(204);
        await expectCountedUntilDeleted(phone, created.upload, audio);
      });

      it('of a clip that failed (its bytes were not audio)', async () => {
        const phone = await testApp.phone('failed');
        const created = (await create(phone, audio.length)).body;
        expect((await putBytes(created.upload.url, junk, wavHeaders)).status).toBe(200);
        const completed = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
        expect(completed.status).toBe(422);
        expect(completed.body.error.code).toBe('UPLOAD_NOT_AUDIO');
        await expectCountedUntilDeleted(phone, created.upload, junk);
      });

      it('of a clip deleted with its note', async () => {
        const phone = await testApp.phone('note-deleted');
        const note = (await phone.post('/api/notes', { title: 'n' })).body;
        const created = (await create(phone, audio.length, { note_id: note.id })).body;
        expect((await phone.delete(`/api/notes/${note.id}`)).status).toBe(204);
        await expectCountedUntilDeleted(phone, created.upload, audio);
      });

      it('of a ready clip deleted while its URL is still valid', async () => {
        const phone = await testApp.phone('ready');
        const created = (await create(phone, audio.length)).body;
        expect((await putBytes(created.upload.url, audio, wavHeaders)).status).toBe(200);
        expect((await phone.post(`/api/audio-clips/${created.clip.id}/complete`)).status).toBe(200);
        expect((await phone.delete(`/api/audio-clips/${created.clip.id}`)).status).toBe(204);
        await expectCountedUntilDeleted(phone, created.upload, audio);
      });
    });

    describe('the caps on pending uploads, with no quota', () => {
      let testApp: TestApp;

      beforeAll(async () => {
        testApp = await startTestApp({
          database,
          storage,
          env: { MAX_PENDING_UPLOADS: '2', MAX_PENDING_UPLOAD_BYTES: String(3 * audio.length) },
        });
      }, 120_000);

      afterAll(async () => {
        await testApp?.close();
      });

      const create = (phone: Phone, bytes: number) =>
        phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes, duration_ms: 200 });

      async function createAndDelete(phone: Phone, bytes: number) {
        const created = await create(phone, bytes);
        expect(created.status).toBe(201);
        expect((await phone.delete(`/api/audio-clips/${created.body.clip.id}`)).status).toBe(204);
        await immediateDeletionDone(testApp, created.body.upload.storage_key);
        return created.body.upload;
      }

      it('MAX_PENDING_UPLOADS: create → delete → create → delete leaves two live URLs, and a third create waits for them', async () => {
        const phone = await testApp.phone('count');
        const uploads = [await createAndDelete(phone, audio.length), await createAndDelete(phone, audio.length)];
        for (const upload of uploads) expect((await putBytes(upload.url, audio, wavHeaders)).status).toBe(200);

        // Within MAX_PENDING_UPLOAD_BYTES (3 recordings), but the count is full.
        const refused = await create(phone, audio.length);
        expect(refused.status).toBe(409);
        expect(refused.body.error).toMatchObject({
          code: 'TOO_MANY_PENDING_UPLOADS',
          pending_uploads: 2,
          pending_bytes: 2 * audio.length,
          max_pending_uploads: 2,
          dead_uploads: 2,
          dead_upload_bytes: 2 * audio.length,
        });
        expect(refused.body.error.message).toContain('still-valid upload URLs of 2 deleted or failed recordings');

        await testApp.janitor.runOnce(afterEveryUrl());
        for (const upload of uploads) expect(await testApp.storage.inspect(upload.storage_key)).toBeNull();
        expect((await create(phone, audio.length)).status).toBe(201);
      });

      it('MAX_PENDING_UPLOAD_BYTES: a deleted clip’s URL keeps its bytes reserved', async () => {
        const phone = await testApp.phone('bytes');
        const upload = await createAndDelete(phone, 2 * audio.length);
        // One upload, within MAX_PENDING_UPLOADS, but 2 + 2 recordings' bytes exceed the 3 allowed.
        const refused = await create(phone, 2 * audio.length);
        expect(refused.status).toBe(409);
        expect(refused.body.error).toMatchObject({
          code: 'TOO_MANY_PENDING_UPLOADS',
          pending_uploads: 1,
          pending_bytes: 2 * audio.length,
          max_pending_upload_bytes: 3 * audio.length,
          dead_uploads: 1,
          dead_upload_bytes: 2 * audio.length,
        });
        await testApp.janitor.runOnce(afterEveryUrl());
        expect(await testApp.storage.inspect(upload.storage_key)).toBeNull();
        expect((await create(phone, 2 * audio.length)).status).toBe(201);
      });
    });
  },
);

describe('upload URLs of clips that are gone, on the local store: refused, so nothing is held', () => {
  const audio = wav(0.2);
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 'local',
      env: { USER_QUOTA_BYTES: String(2 * audio.length), MAX_PENDING_UPLOADS: '1' },
    });
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('a create right after a delete gets the whole quota and the only pending upload', async () => {
    const phone = await testApp.phone('local');
    const clip = { mime_type: 'audio/wav', duration_ms: 200 };
    const created = (await phone.post('/api/audio-clips', { ...clip, bytes: audio.length })).body;
    expect((await phone.delete(`/api/audio-clips/${created.clip.id}`)).status).toBe(204);
    expect((await putBytes(created.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(403);
    expect((await phone.post('/api/audio-clips', { ...clip, bytes: 2 * audio.length })).status).toBe(201);
  });
});

/**
 * A multipart upload's part URLs are refused once the upload is aborted, which deleting the clip does at
 * once: its bytes are held only until then. (s3rver cannot abort a multipart upload; RGW can.)
 */
describeIfLeg(RGW_LEG)('part URLs of a deleted multipart clip, on Postgres + RGW storage', () => {
  const PART = 5 * 1024 * 1024;
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({
      database: 'postgres',
      storage: 'rgw',
      env: { MULTIPART_THRESHOLD_BYTES: String(PART), USER_QUOTA_BYTES: String(2 * PART + 20) },
    });
  }, 120_000);

  afterAll(async () => {
    await testApp?.close();
  });

  it('are refused after the delete, and the whole quota is free at once', async () => {
    const phone = await testApp.phone('multipart');
    const created = await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: PART + 10, duration_ms: 1 });
    expect(created.body.upload).toMatchObject({ mode: 'multipart', part_count: 2 });
    const [part] = (await phone.post(`/api/audio-clips/${created.body.clip.id}/parts`, { part_numbers: [2] })).body
      .parts;
    expect((await putBytes(part.url, Buffer.alloc(10, 1), part.headers)).status).toBe(200);

    expect((await phone.delete(`/api/audio-clips/${created.body.clip.id}`)).status).toBe(204);
    await immediateDeletionDone(testApp, created.body.upload.storage_key);
    const [entry] = await testApp.dataSource.query('SELECT held_bytes FROM storage_deletions WHERE storage_key = $1', [
      created.body.upload.storage_key,
    ]);
    expect(entry.held_bytes).toBeNull();
    expect((await putBytes(part.url, Buffer.alloc(10, 2), part.headers)).status).toBe(404);
    const whole = { mime_type: 'audio/wav', bytes: 2 * PART + 20, duration_ms: 1 };
    expect((await phone.post('/api/audio-clips', whole)).status).toBe(201);
  });
});
