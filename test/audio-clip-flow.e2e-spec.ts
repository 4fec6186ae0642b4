import type { AdvancedNotesClient, components } from '../client';
import { wav } from './support/audio';
import { download, Phone, putBytes } from './support/phone';
import { startTestApp, type DatabaseKind, type StorageKind, type TestApp } from './support/test-app';

const MATRIX: [DatabaseKind, StorageKind][] = [
  ['sqlite', 'local'],
  ['sqlite', 's3'],
  ['postgres', 's3'],
  ['postgres', 'local'],
];

describe.each(MATRIX)('the seed flow on %s + %s storage', (database, storage) => {
  let testApp: TestApp;
  /** The typed client generated from the spec: this flow breaks the type check when the API drifts from it. */
  let api: AdvancedNotesClient;

  beforeAll(async () => {
    testApp = await startTestApp({ database, storage });
    api = (await testApp.phone('alice')).api;
  });

  afterAll(async () => {
    await testApp?.close();
  });

  async function createNote(title = 'Standup'): Promise<string> {
    const { data, response } = await api.POST('/api/notes', { body: { title, body: 'ideas' } });
    expect(response.status).toBe(201);
    return data!.id;
  }

  async function createClip(body: components['schemas']['CreateAudioClipDto']) {
    const { data, response } = await api.POST('/api/audio-clips', { body });
    expect(response.status).toBe(201);
    return data!;
  }

  const clipPath = (clipId: string) => ({ params: { path: { clip_id: clipId } } });
  const notePath = (noteId: string) => ({ params: { path: { note_id: noteId } } });

  it('creates, uploads, completes and plays back a clip, with the bytes intact', async () => {
    const noteId = await createNote();
    const audio = wav(4.1, { noise: true });

    const created = await createClip({
      note_id: noteId,
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 42000,
    });
    expect(created.clip).toEqual({
      id: expect.any(String),
      note_id: noteId,
      status: 'pending',
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 42000,
      declared_duration_ms: 42000,
      duration_source: 'declared',
      content_md5: null,
      failure_reason: null,
      storage_key: `${testApp.keyPrefix}/audio-clips/${created.clip.id}.wav`,
      created_at: expect.any(String),
      updated_at: expect.any(String),
      completed_at: null,
    });
    expect(created.upload).toEqual({
      url: expect.any(String),
      method: 'PUT',
      headers: { 'Content-Type': 'audio/wav', 'Content-Length': String(audio.length) },
      storage_key: `${testApp.keyPrefix}/uploads/${created.clip.id}.wav`,
      expires_at: expect.any(String),
    });
    const expiresIn = Date.parse(created.upload.expires_at) - Date.now();
    expect(expiresIn).toBeGreaterThan(880_000);
    expect(expiresIn).toBeLessThanOrEqual(900_000);

    // The phone sends only Content-Type; its HTTP stack adds Content-Length. No checksum header is needed.
    const put = await putBytes(created.upload.url, audio, { 'Content-Type': 'audio/wav' });
    expect(put.status).toBe(200);

    const completed = await api.POST('/api/audio-clips/{clip_id}/complete', clipPath(created.clip.id));
    expect(completed.response.status).toBe(200);
    expect(completed.data).toMatchObject({
      id: created.clip.id,
      status: 'ready',
      completed_at: expect.any(String),
      duration_ms: 4100,
      duration_source: 'measured',
    });

    const again = await api.POST('/api/audio-clips/{clip_id}/complete', clipPath(created.clip.id));
    expect(again.response.status).toBe(200);
    expect(again.data).toEqual(completed.data);

    const { data: playback, response: playbackResponse } = await api.GET(
      '/api/audio-clips/{clip_id}/playback',
      clipPath(created.clip.id),
    );
    expect(playbackResponse.status).toBe(200);
    expect(Object.keys(playback!).sort()).toEqual(['expires_at', 'url']);
    expect(new Date(playback!.expires_at).toISOString()).toBe(playback!.expires_at);

    const whole = await download(playback!.url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('audio/wav');
    expect(whole.bytes.equals(audio)).toBe(true);

    const ranged = await download(playback!.url, { Range: 'bytes=100-199' });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 100-199/${audio.length}`);
    expect(ranged.bytes.equals(audio.subarray(100, 200))).toBe(true);

    if (storage === 'local') await expectRangeEdgeCases(playback!.url, audio);

    const fetched = await api.GET('/api/audio-clips/{clip_id}', clipPath(created.clip.id));
    expect(fetched.data).toEqual(completed.data);
  });

  /** The local driver's own Range handling; with S3 these would test the store, not this app (s3rver mishandles suffix ranges). */
  async function expectRangeEdgeCases(url: string, audio: Buffer): Promise<void> {
    const suffix = await download(url, { Range: 'bytes=-10' });
    expect(suffix.status).toBe(206);
    expect(suffix.bytes.equals(audio.subarray(audio.length - 10))).toBe(true);
    // A range past the end cannot be served; one whose end precedes its start is ignored (RFC 9110).
    expect((await download(url, { Range: `bytes=${audio.length}-` })).status).toBe(416);
    const backwards = await download(url, { Range: 'bytes=5-2' });
    expect(backwards.status).toBe(200);
    expect(backwards.bytes.length).toBe(audio.length);
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(audio.length));
  }

  it("serves the note's primary clip: the most recently completed ready one", async () => {
    const noteId = await createNote();
    const none = await api.GET('/api/notes/{note_id}/audio', notePath(noteId));
    expect(none.response.status).toBe(404);
    expect(none.error?.error.code).toBe('NO_READY_AUDIO_CLIP');

    const first = await uploadReadyClip(noteId, wav(0.5, { noise: true }));
    const second = await uploadReadyClip(noteId, wav(1, { noise: true }));
    await createClip({ note_id: noteId, mime_type: 'audio/mpeg', bytes: 10, duration_ms: 1 }); // pending: never primary

    const primary = await api.GET('/api/notes/{note_id}/audio', notePath(noteId));
    expect(primary.response.status).toBe(200);
    expect(primary.data!.clip.id).toBe(second.clipId);
    expect((await download(primary.data!.playback.url)).bytes.equals(second.audio)).toBe(true);

    await api.DELETE('/api/audio-clips/{clip_id}', clipPath(second.clipId));
    const fallback = await api.GET('/api/notes/{note_id}/audio', notePath(noteId));
    expect(fallback.data!.clip.id).toBe(first.clipId);

    const missing = await api.GET('/api/notes/{note_id}/audio', notePath('00000000-0000-4000-8000-000000000000'));
    expect(missing.response.status).toBe(404);
    expect(missing.error?.error.code).toBe('NOTE_NOT_FOUND');
  });

  it("lists a note's clips newest first, page by page", async () => {
    const noteId = await createNote();
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      ids.push((await createClip({ note_id: noteId, mime_type: 'audio/aac', bytes: 10 + i, duration_ms: i })).clip.id);
      // Distinct creation times, so "newest first" has one right answer (ties are broken by id).
      await new Promise((resolve) => setTimeout(resolve, 3));
    }

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof listPage>> = await listPage(noteId, cursor);
      expect(page.response.status).toBe(200);
      expect(page.data!.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.data!.items.map((clip) => clip.id));
      cursor = page.data!.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
  });

  function listPage(noteId: string, cursor: string | null) {
    return api.GET('/api/notes/{note_id}/audio-clips', {
      params: { path: { note_id: noteId }, query: { limit: 2, ...(cursor ? { cursor } : {}) } },
    });
  }

  it('answers 409 for complete before upload and playback before ready, and the clip stays pending', async () => {
    const audio = wav(0.2);
    const created = await createClip({ mime_type: 'audio/wav', bytes: audio.length, duration_ms: 10 });

    const early = await api.POST('/api/audio-clips/{clip_id}/complete', clipPath(created.clip.id));
    expect(early.response.status).toBe(409);
    expect(early.error?.error.code).toBe('UPLOAD_NOT_FOUND');

    const notReady = await api.GET('/api/audio-clips/{clip_id}/playback', clipPath(created.clip.id));
    expect(notReady.response.status).toBe(409);
    expect(notReady.error?.error.code).toBe('AUDIO_CLIP_NOT_READY');
    expect((await api.GET('/api/audio-clips/{clip_id}', clipPath(created.clip.id))).data?.status).toBe('pending');

    // The upload can still be made and completed afterwards.
    expect((await putBytes(created.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await api.POST('/api/audio-clips/{clip_id}/complete', clipPath(created.clip.id))).data?.status).toBe(
      'ready',
    );
  });

  it('refuses a PUT with another Content-Type or another size, and stores nothing', async () => {
    const audio = wav(0.1);
    const created = await createClip({ mime_type: 'audio/wav', bytes: audio.length, duration_ms: 10 });

    expect((await putBytes(created.upload.url, audio, { 'Content-Type': 'audio/mpeg' })).status).toBe(403);
    expect((await putBytes(created.upload.url, audio.subarray(1), { 'Content-Type': 'audio/wav' })).status).toBe(403);
    expect(
      (await putBytes(created.upload.url, Buffer.concat([audio, audio]), { 'Content-Type': 'audio/wav' })).status,
    ).toBe(403);
    expect(await testApp.storage.inspect(created.upload.storage_key)).toBeNull();
  });

  it('answers 422 when the stored object differs from what was declared, and lets the phone upload again', async () => {
    const audio = wav(0.2);
    const created = await createClip({ mime_type: 'audio/wav', bytes: audio.length, duration_ms: 10 });
    const key = created.upload.storage_key;

    // Another writer put a different size under the key (only possible with credentials; the phone's URL refuses it).
    const wrongSize = await testApp.storage.presignUpload(key, {
      contentType: 'audio/wav',
      contentLength: 10,
      expiresInSeconds: 60,
    });
    expect((await putBytes(wrongSize.url, audio.subarray(0, 10), { 'Content-Type': 'audio/wav' })).status).toBe(200);
    const sizeMismatch = await api.POST('/api/audio-clips/{clip_id}/complete', clipPath(created.clip.id));
    expect(sizeMismatch.response.status).toBe(422);
    expect(sizeMismatch.error?.error).toMatchObject({
      code: 'UPLOAD_MISMATCH',
      message: expect.stringContaining('10 bytes'),
    });

    const wrongType = await testApp.storage.presignUpload(key, {
      contentType: 'audio/mpeg',
      contentLength: audio.length,
      expiresInSeconds: 60,
    });
    expect((await putBytes(wrongType.url, audio, { 'Content-Type': 'audio/mpeg' })).status).toBe(200);
    const typeMismatch = await api.POST('/api/audio-clips/{clip_id}/complete', clipPath(created.clip.id));
    expect(typeMismatch.response.status).toBe(422);
    expect(typeMismatch.error?.error.message).toContain('audio/mpeg');
    expect((await api.GET('/api/audio-clips/{clip_id}', clipPath(created.clip.id))).data?.status).toBe('pending');

    expect((await putBytes(created.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await api.POST('/api/audio-clips/{clip_id}/complete', clipPath(created.clip.id))).response.status).toBe(
      200,
    );
  });

  it('deletes a clip with its stored object', async () => {
    const { clipId, storageKey, playbackUrl } = await uploadReadyClip(await createNote(), wav(0.1, { noise: true }));
    expect(await testApp.storage.inspect(storageKey)).not.toBeNull();

    expect((await api.DELETE('/api/audio-clips/{clip_id}', clipPath(clipId))).response.status).toBe(204);
    expect((await api.GET('/api/audio-clips/{clip_id}', clipPath(clipId))).response.status).toBe(404);
    expect(await testApp.storage.inspect(storageKey)).toBeNull();
    expect((await download(playbackUrl)).status).toBe(404);
    const again = await api.DELETE('/api/audio-clips/{clip_id}', clipPath(clipId));
    expect(again.response.status).toBe(404);
    expect(again.error?.error.code).toBe('AUDIO_CLIP_NOT_FOUND');
  });

  it('deletes a note with all its clips and their objects', async () => {
    const noteId = await createNote();
    const ready = await uploadReadyClip(noteId, wav(0.1, { noise: true }));
    const pending = await createClip({ note_id: noteId, mime_type: 'audio/webm', bytes: 5, duration_ms: 1 });
    const other = await uploadReadyClip(await createNote('other'), wav(0.05, { noise: true }));

    expect((await api.DELETE('/api/notes/{note_id}', notePath(noteId))).response.status).toBe(204);
    expect((await api.GET('/api/notes/{note_id}', notePath(noteId))).response.status).toBe(404);
    expect((await api.GET('/api/audio-clips/{clip_id}', clipPath(ready.clipId))).response.status).toBe(404);
    expect((await api.GET('/api/audio-clips/{clip_id}', clipPath(pending.clip.id))).response.status).toBe(404);
    expect(await testApp.storage.inspect(ready.storageKey)).toBeNull();

    expect((await api.GET('/api/audio-clips/{clip_id}', clipPath(other.clipId))).data?.status).toBe('ready');
    expect(await testApp.storage.inspect(other.storageKey)).not.toBeNull();
  });

  async function uploadReadyClip(noteId: string, audio: Buffer) {
    const created = await createClip({
      note_id: noteId,
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 1000,
    });
    expect((await putBytes(created.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await api.POST('/api/audio-clips/{clip_id}/complete', clipPath(created.clip.id))).response.status).toBe(
      200,
    );
    const playback = await api.GET('/api/audio-clips/{clip_id}/playback', clipPath(created.clip.id));
    return {
      clipId: created.clip.id,
      storageKey: created.clip.storage_key,
      playbackUrl: playback.data!.url,
      audio,
    };
  }
});

describe.each(['local', 's3'] as StorageKind[])('expired and tampered URLs on %s storage', (storage) => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({
      database: 'sqlite',
      storage,
      env: { S3_PRESIGN_PUT_EXPIRES_SECONDS: '2', S3_PRESIGN_GET_EXPIRES_SECONDS: '2' },
    });
  });

  it('refuses a playback URL once expired or when tampered with', async () => {
    const phone = await testApp.phone('alice');
    const audio = wav(0.1);
    const longUpload = await startUploadWithTime(phone, audio);
    const playback = await phone.api.GET('/api/audio-clips/{clip_id}/playback', {
      params: { path: { clip_id: longUpload } },
    });
    expect((await download(playback.data!.url)).status).toBe(200);

    const tampered = new URL(playback.data!.url);
    const signatureParam = storage === 's3' ? 'X-Amz-Signature' : 'signature';
    const signature = tampered.searchParams.get(signatureParam)!;
    tampered.searchParams.set(signatureParam, (signature[0] === 'a' ? 'b' : 'a') + signature.slice(1));
    expect((await download(tampered.toString())).status).toBe(403);

    await new Promise((resolve) => setTimeout(resolve, 3100));
    expect((await download(playback.data!.url)).status).toBe(403);
  });

  /** Uploads at once, well inside the two-second PUT expiry. */
  async function startUploadWithTime(phone: Phone, audio: Buffer): Promise<string> {
    const created = await phone.api.POST('/api/audio-clips', {
      body: { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 100 },
    });
    const { clip, upload } = created.data!;
    expect((await putBytes(upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    const completed = await phone.api.POST('/api/audio-clips/{clip_id}/complete', {
      params: { path: { clip_id: clip.id } },
    });
    expect(completed.response.status).toBe(200);
    return clip.id;
  }

  afterAll(async () => {
    await testApp?.close();
  });

  it('refuses a PUT after the URL has expired', async () => {
    const phone = await testApp.phone('alice');
    const audio = wav(0.1, { noise: true });
    const created = await phone.api.POST('/api/audio-clips', {
      body: { mime_type: 'audio/m4a', bytes: audio.length, duration_ms: 1 },
    });
    expect(created.response.status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 3100));
    expect((await putBytes(created.data!.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(403);
    expect(await testApp.storage.inspect(created.data!.upload.storage_key)).toBeNull();
  });
});
