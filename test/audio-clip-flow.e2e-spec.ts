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
  let phone: Phone;

  beforeAll(async () => {
    testApp = await startTestApp({ database, storage });
    phone = await testApp.phone('alice');
  });

  afterAll(async () => {
    await testApp?.close();
  });

  async function createNote(title = 'Standup'): Promise<string> {
    const response = await phone.post('/api/notes', { title, body: 'ideas' });
    expect(response.status).toBe(201);
    return response.body.id;
  }

  async function createClip(body: Record<string, unknown>) {
    const response = await phone.post('/api/audio-clips', body);
    expect(response.status).toBe(201);
    return response.body;
  }

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
      mode: 'single',
      server_time: expect.any(String),
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

    const completed = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(completed.status).toBe(200);
    expect(completed.body).toMatchObject({
      id: created.clip.id,
      status: 'ready',
      completed_at: expect.any(String),
      duration_ms: 4100,
      duration_source: 'measured',
    });

    const again = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(completed.body);

    const playback = await phone.get(`/api/audio-clips/${created.clip.id}/playback`);
    expect(playback.status).toBe(200);
    expect(Object.keys(playback.body).sort()).toEqual(['expires_at', 'server_time', 'url']);
    expect(new Date(playback.body.expires_at).toISOString()).toBe(playback.body.expires_at);

    const whole = await download(playback.body.url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('audio/wav');
    expect(whole.bytes.equals(audio)).toBe(true);

    const ranged = await download(playback.body.url, { Range: 'bytes=100-199' });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 100-199/${audio.length}`);
    expect(ranged.bytes.equals(audio.subarray(100, 200))).toBe(true);

    if (storage === 'local') await expectRangeEdgeCases(playback.body.url, audio);

    const fetched = await phone.get(`/api/audio-clips/${created.clip.id}`);
    expect(fetched.body).toEqual(completed.body);
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
    expect((await phone.get(`/api/notes/${noteId}/audio`)).status).toBe(404);

    const first = await uploadReadyClip(noteId, wav(0.5, { noise: true }));
    const second = await uploadReadyClip(noteId, wav(1, { noise: true }));
    await createClip({ note_id: noteId, mime_type: 'audio/mpeg', bytes: 10, duration_ms: 1 }); // pending: never primary

    const primary = await phone.get(`/api/notes/${noteId}/audio`);
    expect(primary.status).toBe(200);
    expect(primary.body.clip.id).toBe(second.clipId);
    expect((await download(primary.body.playback.url)).bytes.equals(second.audio)).toBe(true);

    await phone.delete(`/api/audio-clips/${second.clipId}`);
    const fallback = await phone.get(`/api/notes/${noteId}/audio`);
    expect(fallback.body.clip.id).toBe(first.clipId);

    const missing = await phone.get('/api/notes/00000000-0000-4000-8000-000000000000/audio');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('NOTE_NOT_FOUND');
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
      const page: any = await phone.get(`/api/notes/${noteId}/audio-clips?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((clip: { id: string }) => clip.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
  });

  it('answers 409 for complete before upload and playback before ready, and the clip stays pending', async () => {
    const audio = wav(0.2);
    const created = await createClip({ mime_type: 'audio/wav', bytes: audio.length, duration_ms: 10 });

    const early = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('UPLOAD_NOT_FOUND');

    const notReady = await phone.get(`/api/audio-clips/${created.clip.id}/playback`);
    expect(notReady.status).toBe(409);
    expect(notReady.body.error.code).toBe('AUDIO_CLIP_NOT_READY');
    expect((await phone.get(`/api/audio-clips/${created.clip.id}`)).body.status).toBe('pending');

    // The upload can still be made and completed afterwards.
    expect((await putBytes(created.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.post(`/api/audio-clips/${created.clip.id}/complete`)).body.status).toBe('ready');
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
    const sizeMismatch = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(sizeMismatch.status).toBe(422);
    expect(sizeMismatch.body.error).toMatchObject({
      code: 'UPLOAD_MISMATCH',
      message: expect.stringContaining('10 bytes'),
    });

    const wrongType = await testApp.storage.presignUpload(key, {
      contentType: 'audio/mpeg',
      contentLength: audio.length,
      expiresInSeconds: 60,
    });
    expect((await putBytes(wrongType.url, audio, { 'Content-Type': 'audio/mpeg' })).status).toBe(200);
    const typeMismatch = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(typeMismatch.status).toBe(422);
    expect(typeMismatch.body.error.message).toContain('audio/mpeg');
    expect((await phone.get(`/api/audio-clips/${created.clip.id}`)).body.status).toBe('pending');

    expect((await putBytes(created.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.post(`/api/audio-clips/${created.clip.id}/complete`)).status).toBe(200);
  });

  it('deletes a clip with its stored object', async () => {
    const { clipId, storageKey, playbackUrl } = await uploadReadyClip(await createNote(), wav(0.1, { noise: true }));
    expect(await testApp.storage.inspect(storageKey)).not.toBeNull();

    expect((await phone.delete(`/api/audio-clips/${clipId}`)).status).toBe(204);
    expect((await phone.get(`/api/audio-clips/${clipId}`)).status).toBe(404);
    expect(await testApp.storage.inspect(storageKey)).toBeNull();
    expect((await download(playbackUrl)).status).toBe(404);
    expect((await phone.delete(`/api/audio-clips/${clipId}`)).status).toBe(404);
  });

  it('deletes a note with all its clips and their objects', async () => {
    const noteId = await createNote();
    const ready = await uploadReadyClip(noteId, wav(0.1, { noise: true }));
    const pending = await createClip({ note_id: noteId, mime_type: 'audio/webm', bytes: 5, duration_ms: 1 });
    const other = await uploadReadyClip(await createNote('other'), wav(0.05, { noise: true }));

    expect((await phone.delete(`/api/notes/${noteId}`)).status).toBe(204);
    expect((await phone.get(`/api/notes/${noteId}`)).status).toBe(404);
    expect((await phone.get(`/api/audio-clips/${ready.clipId}`)).status).toBe(404);
    expect((await phone.get(`/api/audio-clips/${pending.clip.id}`)).status).toBe(404);
    expect(await testApp.storage.inspect(ready.storageKey)).toBeNull();

    expect((await phone.get(`/api/audio-clips/${other.clipId}`)).body.status).toBe('ready');
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
    expect((await phone.post(`/api/audio-clips/${created.clip.id}/complete`)).status).toBe(200);
    const playback = await phone.get(`/api/audio-clips/${created.clip.id}/playback`);
    return {
      clipId: created.clip.id as string,
      storageKey: created.clip.storage_key as string,
      playbackUrl: playback.body.url as string,
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
    const playback = await phone.get(`/api/audio-clips/${longUpload}/playback`);
    expect((await download(playback.body.url)).status).toBe(200);

    const tampered = new URL(playback.body.url);
    const signatureParam = storage === 's3' ? 'X-Amz-Signature' : 'signature';
    const signature = tampered.searchParams.get(signatureParam)!;
    tampered.searchParams.set(signatureParam, (signature[0] === 'a' ? 'b' : 'a') + signature.slice(1));
    expect((await download(tampered.toString())).status).toBe(403);

    await new Promise((resolve) => setTimeout(resolve, 3100));
    expect((await download(playback.body.url)).status).toBe(403);
    // A 3 s wait inside Jest's default 5 s: on a loaded machine the upload and completion took the rest.
  }, 30_000);

  /** Uploads at once, well inside the two-second PUT expiry. */
  async function startUploadWithTime(phone: Phone, audio: Buffer): Promise<string> {
    const created = await phone.post('/api/audio-clips', {
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 100,
    });
    expect((await putBytes(created.body.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`)).status).toBe(200);
    return created.body.clip.id;
  }

  afterAll(async () => {
    await testApp?.close();
  });

  it('refuses a PUT after the URL has expired', async () => {
    const phone = await testApp.phone('alice');
    const audio = wav(0.1, { noise: true });
    const created = await phone.post('/api/audio-clips', {
      mime_type: 'audio/m4a',
      bytes: audio.length,
      duration_ms: 1,
    });
    expect(created.status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 3100));
    expect((await putBytes(created.body.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(403);
    expect(await testApp.storage.inspect(created.body.upload.storage_key)).toBeNull();
  });
});
