import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { describeEachWithLegs } from './harness/legs';
import { RGW_LEG } from './harness/rgw';
import { wav } from './support/audio';
import { download, Phone, putBytes } from './support/phone';
import { startTestApp, type DatabaseKind, type StorageKind, type TestApp } from './support/test-app';

const MIB = 1024 * 1024;

/** PUTs the first half of `bytes` with the full Content-Length, then drops the connection, as a phone losing its network. */
function putHalfThenDrop(url: string, bytes: Buffer, headers: Record<string, string>): Promise<void> {
  return new Promise((resolve) => {
    const outgoing = request(url, { method: 'PUT', headers: { ...headers, 'Content-Length': String(bytes.length) } });
    outgoing.on('error', () => resolve());
    outgoing.on('response', () => resolve()); // not expected: the server cannot answer before the body ends
    outgoing.write(bytes.subarray(0, bytes.length / 2), () => {
      setTimeout(() => {
        outgoing.destroy();
        resolve();
      }, 200);
    });
  });
}

function md5Hex(bytes: Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}

/** Both parts routes (sign and list) answer a clip the same way: the status and error code given. */
async function expectPartsRoutesAnswer(phone: Phone, clipId: string, status: number, code: string): Promise<void> {
  for (const response of [
    await phone.post(`/api/audio-clips/${clipId}/parts`, { part_numbers: [1] }),
    await phone.get(`/api/audio-clips/${clipId}/parts`),
  ]) {
    expect({ status: response.status, code: response.body.error?.code }).toEqual({ status, code });
  }
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return check();
}

/** A client of the app's bucket, as the app's own S3 settings name it (for checks behind the API's back). */
function bucketClient(testApp: TestApp): S3Client {
  const env = testApp.env;
  return new S3Client({
    endpoint: env.S3_ENDPOINT_URL,
    region: env.AWS_REGION,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
    forcePathStyle: true,
  });
}

/** The multipart uploads the store still holds under the app's prefix (`key` and `upload id`). */
async function openMultipartUploads(testApp: TestApp): Promise<{ key: string; uploadId: string }[]> {
  const s3 = bucketClient(testApp);
  try {
    const listed = await s3.send(
      new ListMultipartUploadsCommand({ Bucket: testApp.env.S3_BUCKET, Prefix: `${testApp.keyPrefix}/` }),
    );
    expect(listed.IsTruncated ?? false).toBe(false);
    return (listed.Uploads ?? []).map((upload) => ({ key: upload.Key!, uploadId: upload.UploadId! }));
  } finally {
    s3.destroy();
  }
}

const RESUMABLE_MATRIX: [DatabaseKind, StorageKind][] = [
  ['sqlite', 'local'],
  ['postgres', 'local'],
  // s3rver 4.0.4 has no ListParts (405), so the S3 leg of this test is Ceph's RADOS Gateway.
  ['postgres', 'rgw'],
];

describeEachWithLegs(RESUMABLE_MATRIX, [RGW_LEG])(
  'resumable multipart uploads on %s + %s storage',
  (database, storage) => {
    let testApp: TestApp;
    let phone: Phone;

    beforeAll(async () => {
      testApp = await startTestApp({ database, storage });
      phone = await testApp.phone('alice');
    }, 120_000);

    afterAll(async () => {
      await testApp?.close();
    });

    it('takes a 40 MiB recording in parts, survives a connection dropped halfway, resumes from the listed parts and plays back byte-identical', async () => {
      const audio = wav((40 * MIB - 44) / 16000, { noise: true });
      expect(audio.length).toBe(40 * MIB);
      const note = (await phone.post('/api/notes', { title: 'one-hour lecture' })).body.id;

      const created = await phone.post('/api/audio-clips', {
        note_id: note,
        mime_type: 'audio/wav',
        bytes: audio.length,
        duration_ms: 2_621_000,
      });
      expect(created.status).toBe(201);
      const clipId = created.body.clip.id;
      expect(created.body.upload).toEqual({
        mode: 'multipart',
        part_size: 5 * MIB,
        part_count: 8,
        storage_key: `${testApp.keyPrefix}/uploads/${clipId}.wav`,
        server_time: expect.any(String),
      });
      expect(Math.abs(Date.parse(created.body.upload.server_time) - Date.now())).toBeLessThan(60_000);
      const partOf = (n: number) => audio.subarray((n - 1) * 5 * MIB, Math.min(n * 5 * MIB, audio.length));

      const signed = await phone.post(`/api/audio-clips/${clipId}/parts`, { part_numbers: [1, 2, 3, 4, 5, 6, 7, 8] });
      expect(signed.status).toBe(200);
      expect(signed.body.parts).toHaveLength(8);
      expect(signed.body.server_time).toEqual(expect.any(String));
      expect(signed.body.parts[0]).toEqual({
        part_number: 1,
        url: expect.stringContaining('partNumber=1'),
        method: 'PUT',
        headers: { 'Content-Length': String(5 * MIB) },
        expires_at: expect.any(String),
      });
      const urls = new Map<number, { url: string; headers: Record<string, string> }>(
        signed.body.parts.map((part: { part_number: number; url: string; headers: Record<string, string> }) => [
          part.part_number,
          part,
        ]),
      );

      // Parts 1 to 4 arrive; the connection drops halfway through part 5.
      for (const n of [1, 2, 3, 4]) {
        const put = await putBytes(urls.get(n)!.url, partOf(n), urls.get(n)!.headers);
        expect(put.status).toBe(200);
      }
      await putHalfThenDrop(urls.get(5)!.url, partOf(5), urls.get(5)!.headers);

      // The phone comes back (its app restarted, so it remembers only the clip id) and asks what the store holds.
      const listed = await phone.get(`/api/audio-clips/${clipId}/parts`);
      expect(listed.status).toBe(200);
      expect(listed.body).toEqual({
        parts: [1, 2, 3, 4].map((n) => ({ part_number: n, size: 5 * MIB, etag: `"${md5Hex(partOf(n))}"` })),
      });
      const early = await phone.post(`/api/audio-clips/${clipId}/complete`);
      expect(early.status).toBe(409);
      expect(early.body.error).toMatchObject({ code: 'UPLOAD_PARTS_MISSING', missing_parts: [5, 6, 7, 8] });
      expect((await phone.get(`/api/audio-clips/${clipId}`)).body.status).toBe('pending');

      const held = new Set(listed.body.parts.map((part: { part_number: number }) => part.part_number));
      const missing = [1, 2, 3, 4, 5, 6, 7, 8].filter((n) => !held.has(n));
      const resumed = await phone.post(`/api/audio-clips/${clipId}/parts`, { part_numbers: missing });
      expect(resumed.status).toBe(200);
      expect(resumed.body.parts.map((part: { part_number: number }) => part.part_number)).toEqual([5, 6, 7, 8]);
      // The last part holds the rest; its URL takes exactly that many bytes.
      expect(resumed.body.parts[3].headers).toEqual({ 'Content-Length': String(partOf(8).length) });
      for (const part of resumed.body.parts) {
        expect((await putBytes(part.url, partOf(part.part_number), part.headers)).status).toBe(200);
      }

      const completed = await phone.post(`/api/audio-clips/${clipId}/complete`);
      expect(completed.status).toBe(200);
      expect(completed.body).toMatchObject({
        status: 'ready',
        bytes: 40 * MIB,
        duration_ms: 2_621_437,
        duration_source: 'measured',
      });
      const playback = await phone.get(`/api/audio-clips/${clipId}/playback`);
      const played = await download(playback.body.url);
      expect(played.status).toBe(200);
      expect(played.bytes.length).toBe(audio.length);
      expect(createHash('sha256').update(played.bytes).digest('hex')).toBe(
        createHash('sha256').update(audio).digest('hex'),
      );
      expect((await phone.get(`/api/notes/${note}/audio`)).body.clip.id).toBe(clipId);

      // Complete again: the same answer. The parts are gone with the upload.
      expect((await phone.post(`/api/audio-clips/${clipId}/complete`)).body).toEqual(completed.body);
      expect((await phone.get(`/api/audio-clips/${clipId}/parts`)).body.error.code).toBe('AUDIO_CLIP_NOT_PENDING');
      const clipKey = completed.body.storage_key as string;
      if (storage === 'local') {
        // No temporary file stays, and the old part URLs write nowhere now.
        expect(
          await eventually(async () =>
            (await testApp.localFiles()).every(
              (file) => !file.startsWith('.incoming') && !file.startsWith('.multipart'),
            ),
          ),
        ).toBe(true);
        expect((await putBytes(urls.get(1)!.url, partOf(1), urls.get(1)!.headers)).status).toBe(409);
      } else {
        // The store joined the parts and forgot the upload: an old part URL now finds no upload at all.
        expect(await openMultipartUploads(testApp)).toEqual([]);
        const late = await putBytes(urls.get(1)!.url, partOf(1), urls.get(1)!.headers);
        expect(late.status).toBe(404);
        expect(late.text).toContain('<Code>NoSuchUpload</Code>');
        // No bytes landed: the clip's recording is the only object, still the one played back.
        expect(await testApp.storedKeys()).toEqual([clipKey]);
        expect(await openMultipartUploads(testApp)).toEqual([]);
        const replayed = await download((await phone.get(`/api/audio-clips/${clipId}/playback`)).body.url);
        expect(replayed.bytes.equals(audio)).toBe(true);
      }
    }, 120_000);
  },
);

describe('multipart uploads: what the API refuses', () => {
  let testApp: TestApp;
  let alice: Phone;
  let bob: Phone;
  const PART = 5 * MIB;

  beforeAll(async () => {
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 'local',
      env: { MULTIPART_THRESHOLD_BYTES: String(PART) },
    });
    alice = await testApp.phone('alice');
    bob = await testApp.phone('bob');
  });

  afterAll(async () => {
    await testApp?.close();
  });

  async function multipartClip(bytes = PART + 10): Promise<string> {
    const created = await alice.post('/api/audio-clips', { mime_type: 'audio/wav', bytes, duration_ms: 1 });
    expect(created.status).toBe(201);
    expect(created.body.upload).toMatchObject({ mode: 'multipart', part_size: PART, part_count: 2 });
    expect(created.body.upload.url).toBeUndefined();
    return created.body.clip.id;
  }

  it('uses a single upload just below the threshold and parts from it up', async () => {
    const below = await alice.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: PART - 1, duration_ms: 1 });
    expect(below.body.upload).toMatchObject({
      mode: 'single',
      url: expect.any(String),
      server_time: expect.any(String),
    });
    expect(below.body.upload.part_size).toBeUndefined();
    const at = await alice.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: PART, duration_ms: 1 });
    expect(at.body.upload).toMatchObject({ mode: 'multipart', part_size: PART, part_count: 1 });
  });

  it.each<[string, unknown, string]>([
    ['no part numbers', {}, 'part_numbers'],
    ['an empty list', { part_numbers: [] }, 'part_numbers'],
    ['part 0', { part_numbers: [0] }, 'part_numbers'],
    ['a negative part', { part_numbers: [-1] }, 'part_numbers'],
    ['a fractional part', { part_numbers: [1.5] }, 'part_numbers'],
    ['a part as a string', { part_numbers: ['1'] }, 'part_numbers'],
    ['a part twice', { part_numbers: [1, 1] }, 'part_numbers'],
    ['a part beyond the plan', { part_numbers: [1, 3] }, 'part_numbers'],
    ['a part beyond S3’s 10 000', { part_numbers: [10001] }, 'part_numbers'],
    ['more than 100 parts', { part_numbers: Array.from({ length: 101 }, (_, i) => i + 1) }, 'part_numbers'],
    ['a number instead of a list', { part_numbers: 1 }, 'part_numbers'],
    ['an unknown field', { part_numbers: [1], upload_id: 'x' }, 'upload_id'],
  ])('answers 400 to %s, naming the field, and signs nothing', async (_name, body, field) => {
    const clipId = await multipartClip();
    const response = await alice.post(`/api/audio-clips/${clipId}/parts`, body);
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('VALIDATION_FAILED');
    expect(response.body.error.details.map((detail: { field: string }) => detail.field)).toContain(field);
  });

  it('answers 409 AUDIO_CLIP_NOT_MULTIPART for parts of a clip uploaded in one PUT', async () => {
    const single = await alice.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: 100, duration_ms: 1 });
    await expectPartsRoutesAnswer(alice, single.body.clip.id, 409, 'AUDIO_CLIP_NOT_MULTIPART');
  });

  it("answers 404 to another user's multipart clip, exactly as to a missing one", async () => {
    const clipId = await multipartClip();
    await expectPartsRoutesAnswer(bob, clipId, 404, 'AUDIO_CLIP_NOT_FOUND');
  });

  it('refuses content_md5 on a multipart upload, where the store cannot check it', async () => {
    const response = await alice.post('/api/audio-clips', {
      mime_type: 'audio/wav',
      bytes: PART,
      duration_ms: 1,
      content_md5: 'XUFAKrxLKna5cZ2REBfFkg==',
    });
    expect(response.status).toBe(400);
    expect(response.body.error.details[0].field).toBe('content_md5');
  });
});

const STORE_MATRIX: [DatabaseKind, StorageKind][] = [
  ['sqlite', 'local'],
  ['postgres', 'rgw'],
];

describeEachWithLegs(STORE_MATRIX, [RGW_LEG])(
  'multipart uploads on %s + %s storage: what the store holds to, and what the janitor cleans',
  (database, storage) => {
    let testApp: TestApp;
    let alice: Phone;
    const PART = 5 * MIB;

    beforeAll(async () => {
      testApp = await startTestApp({ database, storage, env: { MULTIPART_THRESHOLD_BYTES: String(PART) } });
      alice = await testApp.phone('alice');
    }, 120_000);

    afterAll(async () => {
      await testApp?.close();
    });

    async function multipartClip(bytes = PART + 10): Promise<string> {
      const created = await alice.post('/api/audio-clips', { mime_type: 'audio/wav', bytes, duration_ms: 1 });
      expect(created.status).toBe(201);
      expect(created.body.upload).toMatchObject({ mode: 'multipart', part_size: PART, part_count: 2 });
      return created.body.clip.id;
    }

    it('answers 409 AUDIO_CLIP_NOT_PENDING for parts of a ready or failed clip, and 404 for a deleted one', async () => {
      const audio = wav((PART + 100 - 44) / 16000);
      const created = await alice.post('/api/audio-clips', {
        mime_type: 'audio/wav',
        bytes: audio.length,
        duration_ms: 1,
      });
      const clipId = created.body.clip.id;
      const parts = (await alice.post(`/api/audio-clips/${clipId}/parts`, { part_numbers: [1, 2] })).body.parts;
      for (const part of parts) {
        const bytes = audio.subarray((part.part_number - 1) * PART, part.part_number * PART);
        expect((await putBytes(part.url, bytes, part.headers)).status).toBe(200);
      }
      expect((await alice.post(`/api/audio-clips/${clipId}/complete`)).body.status).toBe('ready');
      await expectPartsRoutesAnswer(alice, clipId, 409, 'AUDIO_CLIP_NOT_PENDING');

      // Not audio: the clip fails, and its parts can no longer be asked for.
      const junk = await multipartClip();
      const junkParts = (await alice.post(`/api/audio-clips/${junk}/parts`, { part_numbers: [1, 2] })).body.parts;
      expect((await putBytes(junkParts[0].url, Buffer.alloc(PART, 7), junkParts[0].headers)).status).toBe(200);
      expect((await putBytes(junkParts[1].url, Buffer.alloc(10, 7), junkParts[1].headers)).status).toBe(200);
      const failed = await alice.post(`/api/audio-clips/${junk}/complete`);
      expect(failed.body.error.code).toBe('UPLOAD_NOT_AUDIO');
      expect((await alice.post(`/api/audio-clips/${junk}/parts`, { part_numbers: [1] })).body.error.code).toBe(
        'AUDIO_CLIP_NOT_PENDING',
      );

      // Deleted: gone, exactly as a clip that never was.
      const gone = await multipartClip();
      expect((await alice.delete(`/api/audio-clips/${gone}`)).status).toBe(204);
      await expectPartsRoutesAnswer(alice, gone, 404, 'AUDIO_CLIP_NOT_FOUND');
    });

    it('binds each part URL to its upload, part number and exact size', async () => {
      const clipId = await multipartClip();
      const [first, second] = (await alice.post(`/api/audio-clips/${clipId}/parts`, { part_numbers: [1, 2] })).body
        .parts;
      const wrongSize = await putBytes(first.url, Buffer.alloc(PART - 1), { 'Content-Length': String(PART - 1) });
      expect(wrongSize.status).toBe(403);
      const asOtherPart = new URL(first.url);
      asOtherPart.searchParams.set('partNumber', '2');
      expect((await putBytes(asOtherPart.toString(), Buffer.alloc(PART), first.headers)).status).toBe(403);
      const otherClip = await multipartClip();
      const onOtherKey = new URL(first.url);
      onOtherKey.pathname = onOtherKey.pathname.replace(clipId, otherClip);
      expect((await putBytes(onOtherKey.toString(), Buffer.alloc(PART), first.headers)).status).toBe(403);
      expect((await alice.get(`/api/audio-clips/${clipId}/parts`)).body.parts).toEqual([]);
      // A part of the wrong size cannot land; one sent again replaces the earlier one.
      expect((await putBytes(second.url, Buffer.alloc(10, 1), second.headers)).status).toBe(200);
      expect((await putBytes(second.url, Buffer.alloc(10, 2), second.headers)).status).toBe(200);
      expect((await alice.get(`/api/audio-clips/${clipId}/parts`)).body.parts).toEqual([
        { part_number: 2, size: 10, etag: `"${md5Hex(Buffer.alloc(10, 2))}"` },
      ]);
    });

    it('aborts the multipart upload of a deleted clip and of an expired one, so no part stays behind', async () => {
      const uploadDirs = async () =>
        new Set((await testApp.localFiles()).filter((f) => f.startsWith('.multipart/')).map((f) => f.split('/')[1]));
      const uploadKey = (clipId: string) => `${testApp.keyPrefix}/uploads/${clipId}.wav`;
      /** The store's own listing of a clip's upload, through the app's driver (ListParts on S3). */
      const partsHeld = (clipId: string, part: { url: string }) =>
        testApp.storage.listParts(uploadKey(clipId), new URL(part.url).searchParams.get('uploadId')!);
      const before = await uploadDirs();

      const deleted = await multipartClip();
      const deletedPart = (await alice.post(`/api/audio-clips/${deleted}/parts`, { part_numbers: [2] })).body.parts[0];
      expect((await putBytes(deletedPart.url, Buffer.alloc(10), deletedPart.headers)).status).toBe(200);
      const expired = await multipartClip();
      const expiredPart = (await alice.post(`/api/audio-clips/${expired}/parts`, { part_numbers: [2] })).body.parts[0];
      expect((await putBytes(expiredPart.url, Buffer.alloc(10), expiredPart.headers)).status).toBe(200);
      for (const [clipId, part] of [
        [deleted, deletedPart],
        [expired, expiredPart],
      ]) {
        expect(await partsHeld(clipId, part)).toEqual([
          { partNumber: 2, size: 10, etag: `"${md5Hex(Buffer.alloc(10))}"` },
        ]);
      }
      const started = [...(await uploadDirs())].filter((id) => !before.has(id));
      if (storage === 'local') expect(started).toHaveLength(2);
      else {
        const open = (await openMultipartUploads(testApp)).map((upload) => upload.key);
        expect(open).toEqual(expect.arrayContaining([uploadKey(deleted), uploadKey(expired)]));
      }

      expect((await alice.delete(`/api/audio-clips/${deleted}`)).status).toBe(204);
      // Two days on: the other clip has expired, and every abandoned upload is aborted.
      const report = await testApp.janitor.runOnce(new Date(Date.now() + 2 * 24 * 3600_000));
      expect(report.expiredClips).toBeGreaterThanOrEqual(1);
      expect((await alice.get(`/api/audio-clips/${expired}`)).body.status).toBe('expired');
      for (const [clipId, part] of [
        [deleted, deletedPart],
        [expired, expiredPart],
      ]) {
        await expect(partsHeld(clipId, part)).rejects.toMatchObject({ code: 'MULTIPART_UPLOAD_GONE' });
      }
      if (storage === 'local') {
        const left = await uploadDirs();
        for (const id of started) expect(left.has(id)).toBe(false);
        expect((await putBytes(expiredPart.url, Buffer.alloc(10), expiredPart.headers)).status).toBe(409);
      } else {
        const open = (await openMultipartUploads(testApp)).map((upload) => upload.key);
        for (const id of [deleted, expired]) expect(open).not.toContain(uploadKey(id));
        // A part URL still within its time finds no upload to write to, and leaves no object behind.
        const late = await putBytes(expiredPart.url, Buffer.alloc(10), expiredPart.headers);
        expect(late.status).toBe(404);
        expect(late.text).toContain('<Code>NoSuchUpload</Code>');
        const keys = await testApp.storedKeys();
        for (const id of [deleted, expired]) expect(keys.filter((key) => key.includes(id))).toEqual([]);
      }
    });

    it('completes for the phone a multipart upload whose parts cover the recording but that it never completed', async () => {
      // 44 + 330 s × 16,000 bytes: just over one part, so two parts.
      const audio = wav(330, { noise: true });
      const created = await alice.post('/api/audio-clips', {
        mime_type: 'audio/wav',
        bytes: audio.length,
        duration_ms: 1,
      });
      expect(created.body.upload).toMatchObject({ mode: 'multipart', part_count: 2 });
      const id = created.body.clip.id as string;
      const { parts } = (await alice.post(`/api/audio-clips/${id}/parts`, { part_numbers: [1, 2] })).body;
      for (const part of parts) {
        const start = (part.part_number - 1) * PART;
        const bytes = audio.subarray(start, Math.min(start + PART, audio.length));
        expect((await putBytes(part.url, bytes, part.headers)).status).toBe(200);
      }
      expect((await alice.get(`/api/audio-clips/${id}`)).body).toMatchObject({ status: 'pending', completed_by: null });

      // The phone never calls complete: the first janitor pass after its part URLs ran out does.
      const lastExpiry = Math.max(...parts.map((part: { expires_at: string }) => Date.parse(part.expires_at)));
      const report = await testApp.janitor.runOnce(new Date(lastExpiry + 10_000));
      expect(report.completedClips).toBeGreaterThanOrEqual(1);
      expect((await alice.get(`/api/audio-clips/${id}`)).body).toMatchObject({
        status: 'ready',
        completed_by: 'server',
        duration_source: 'measured',
        duration_ms: 330_000,
      });
      const played = await download((await alice.get(`/api/audio-clips/${id}/playback`)).body.url);
      expect(played.bytes.equals(audio)).toBe(true);
    });
  },
);
