import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AudioClipsRepository } from '../src/audio-clips/audio-clips.repository';
import { UPLOAD_GRACE_MS } from '../src/audio-clips/deletions/deletion-rules';
import { NotesService } from '../src/notes/notes.service';
import { describeEachWithLegs } from './harness/legs';
import { RGW_LEG } from './harness/rgw';
import { wav } from './support/audio';
import { download, Phone, putBytes } from './support/phone';
import { startTestApp, type DatabaseKind, type StorageKind, type TestApp } from './support/test-app';

interface Fixture {
  file: string;
  mime_type: string;
  true_duration_ms: number | null;
  container: string;
  expected_kind: 'audio' | 'not-audio';
}

const FIXTURE_DIR = join(__dirname, 'fixtures', 'audio');
const FIXTURES: Fixture[] = JSON.parse(readFileSync(join(FIXTURE_DIR, 'manifest.json'), 'utf8'));
const AUDIO_FIXTURES = FIXTURES.filter((fixture) => fixture.expected_kind === 'audio');
const NOT_AUDIO_FIXTURES = FIXTURES.filter((fixture) => fixture.expected_kind === 'not-audio');
/** A MediaRecorder-style WebM states no duration: the declared one is kept. */
const statesNoDuration = (fixture: Fixture) => fixture.file.includes('no-duration');
const fixtureBytes = (file: string) => readFileSync(join(FIXTURE_DIR, file));
const md5 = (bytes: Buffer) => createHash('md5').update(bytes).digest('base64');
const DECLARED_DURATION_MS = 99_999;

async function upload(phone: Phone, audio: Buffer, mimeType: string, extra: Record<string, unknown> = {}) {
  const created = await phone.post('/api/audio-clips', {
    mime_type: mimeType,
    bytes: audio.length,
    duration_ms: DECLARED_DURATION_MS,
    ...extra,
  });
  expect(created.status).toBe(201);
  expect(
    (
      await putBytes(
        created.body.upload.url,
        audio,
        created.body.upload.headers['Content-MD5']
          ? { 'Content-Type': mimeType, 'Content-MD5': created.body.upload.headers['Content-MD5'] }
          : { 'Content-Type': mimeType },
      )
    ).status,
  ).toBe(200);
  return created.body;
}

describeEachWithLegs<[DatabaseKind, StorageKind]>(
  [
    ['sqlite', 'local'],
    ['postgres', 's3'],
    ['postgres', 'rgw'],
  ],
  [RGW_LEG],
)('verified completion on %s + %s storage', (database, storage) => {
  let testApp: TestApp;
  let phone: Phone;

  beforeAll(async () => {
    testApp = await startTestApp({ database, storage });
    phone = await testApp.phone('alice');
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it.each(AUDIO_FIXTURES)('completes $file ($container) and measures its duration', async (fixture) => {
    const audio = fixtureBytes(fixture.file);
    const created = await upload(phone, audio, fixture.mime_type);
    const completed = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(completed.status).toBe(200);
    expect(completed.body).toMatchObject({ status: 'ready', declared_duration_ms: DECLARED_DURATION_MS });
    if (statesNoDuration(fixture)) {
      expect(completed.body).toMatchObject({ duration_source: 'declared', duration_ms: DECLARED_DURATION_MS });
    } else {
      expect(completed.body.duration_source).toBe('measured');
      expect(Math.abs(completed.body.duration_ms - fixture.true_duration_ms!)).toBeLessThanOrEqual(50);
    }
    if (process.env.PRINT_FIXTURE_DURATIONS === '1')
      console.log(
        `${fixture.file}: true ${fixture.true_duration_ms} ms, measured ${completed.body.duration_ms} ms (${completed.body.duration_source})`,
      );
    const played = await download((await phone.get(`/api/audio-clips/${created.clip.id}/playback`)).body.url);
    expect(played.bytes.equals(audio)).toBe(true);
  });

  it('completes a WAV written by the test, measuring 3 s', async () => {
    const created = await upload(phone, wav(3), 'audio/wav');
    const completed = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(completed.body).toMatchObject({ status: 'ready', duration_ms: 3000, duration_source: 'measured' });
  });

  it.each<[string, Buffer, string]>([
    ['text', Buffer.from('this is a shopping list, not a voice memo\n'.repeat(40)), 'audio/m4a'],
    ['zeros', Buffer.alloc(4096), 'audio/mpeg'],
    ['a WAV declared as MP3', wav(1), 'audio/mpeg'],
    ...NOT_AUDIO_FIXTURES.map((fixture): [string, Buffer, string] => [
      `${fixture.file} (${fixture.container})`,
      fixtureBytes(fixture.file),
      fixture.mime_type,
    ]),
  ])('fails %s declared as audio with 422, and deletes the bytes', async (_name, bytes, mimeType) => {
    const created = await upload(phone, bytes, mimeType);
    const answer = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(answer.status).toBe(422);
    expect(answer.body.error.code).toBe('UPLOAD_NOT_AUDIO');
    const clip = (await phone.get(`/api/audio-clips/${created.clip.id}`)).body;
    expect(clip).toMatchObject({ status: 'failed', failure_reason: expect.stringContaining('not') });
    expect(await testApp.storage.inspect(created.upload.storage_key)).toBeNull();
    expect(await testApp.storage.inspect(created.clip.storage_key)).toBeNull();
    expect((await phone.post(`/api/audio-clips/${created.clip.id}/complete`)).body.error.code).toBe(
      'AUDIO_CLIP_NOT_PENDING',
    );
    expect((await phone.get(`/api/audio-clips/${created.clip.id}/playback`)).status).toBe(409);
  });

  it('signs Content-MD5 into the upload when the phone declares one', async () => {
    const audio = wav(1);
    const created = await phone.post('/api/audio-clips', {
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 1000,
      content_md5: md5(audio),
    });
    expect(created.body.upload.headers).toEqual({
      'Content-Type': 'audio/wav',
      'Content-Length': String(audio.length),
      'Content-MD5': md5(audio),
    });
    // Without the header, or with another digest in it, the signature does not hold.
    expect((await putBytes(created.body.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(403);
    expect(
      (
        await putBytes(created.body.upload.url, audio, {
          'Content-Type': 'audio/wav',
          'Content-MD5': md5(Buffer.from('x')),
        })
      ).status,
    ).toBe(403);
    if (storage !== 's3') {
      // The right header on other bytes of the same size: refused by the store itself, as AWS S3 does
      // (s3rver does not check). Flipped bits, another recording, the bytes shifted by one.
      const flipped = Buffer.from(audio);
      flipped[100] ^= 0xff;
      const shifted = Buffer.concat([audio.subarray(1), audio.subarray(0, 1)]);
      for (const other of [flipped, wav(1, { noise: true }), shifted]) {
        const refused = await putBytes(created.body.upload.url, other, {
          'Content-Type': 'audio/wav',
          'Content-MD5': md5(audio),
        });
        expect(refused.status).toBe(400);
        if (storage === 'local') expect(JSON.parse(refused.text).error.code).toBe('CHECKSUM_MISMATCH');
        else expect(refused.text).toContain('<Code>BadDigest</Code>');
        expect(await testApp.storage.inspect(created.body.upload.storage_key)).toBeNull();
      }
    }
    expect(
      (await putBytes(created.body.upload.url, audio, { 'Content-Type': 'audio/wav', 'Content-MD5': md5(audio) }))
        .status,
    ).toBe(200);
    expect((await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`)).body.status).toBe('ready');
  });

  it('cannot have a ready clip’s bytes swapped through its old upload URL', async () => {
    const original = wav(1);
    const created = await upload(phone, original, 'audio/wav');
    expect((await phone.post(`/api/audio-clips/${created.clip.id}/complete`)).body.status).toBe('ready');

    const swap = wav(1);
    swap.fill(0x55, 44);
    // S3 takes the bytes (under the upload key, not the recording's); the local store refuses them.
    const put = await putBytes(created.upload.url, swap, { 'Content-Type': 'audio/wav' });
    expect(put.status).toBe(storage === 'local' ? 403 : 200);
    const played = await download((await phone.get(`/api/audio-clips/${created.clip.id}/playback`)).body.url);
    expect(played.bytes.equals(original)).toBe(true);

    // What the old URL wrote is deleted once the URL has run out.
    if (storage !== 'local') expect(await testApp.storage.inspect(created.upload.storage_key)).not.toBeNull();
    await testApp.janitor.runOnce(new Date(Date.parse(created.upload.expires_at) + UPLOAD_GRACE_MS + 1000));
    expect(await testApp.storage.inspect(created.upload.storage_key)).toBeNull();
    expect(await testApp.storage.inspect(created.clip.storage_key)).not.toBeNull();
  });

  it.each(['other audio', 'not audio'])(
    'makes ready only the bytes it verified when the phone re-uploads %s of the same size during the completion',
    async (replacedBy) => {
      const verified = wav(1, { noise: true });
      const created = await upload(phone, verified, 'audio/wav');
      const replacement = replacedBy === 'other audio' ? wav(1, { noise: true }) : randomBytes(verified.length);
      // The completion has checked `verified` (size, type, first bytes) and is about to move it: the
      // phone's second PUT lands exactly then. A store that ignores the copy's precondition (RGW)
      // copies the replacement, so the move must check what arrived at the destination.
      const move = testApp.storage.move.bind(testApp.storage);
      const spy = jest.spyOn(testApp.storage, 'move').mockImplementationOnce(async (...args) => {
        expect((await putBytes(created.upload.url, replacement, { 'Content-Type': 'audio/wav' })).status).toBe(200);
        return move(...args);
      });
      let first;
      try {
        first = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
      } finally {
        spy.mockRestore();
      }
      expect(first.status).toBe(409);
      expect(first.body.error.code).toBe('UPLOAD_CHANGED');
      expect((await phone.get(`/api/audio-clips/${created.clip.id}`)).body).toMatchObject({
        status: 'pending',
        completed_at: null,
      });
      expect((await phone.get(`/api/audio-clips/${created.clip.id}/playback`)).status).toBe(409);
      // Nothing lost: the phone's latest upload is still where it put it.
      expect((await testApp.storage.inspect(created.upload.storage_key))?.size).toBe(replacement.length);

      // Completing again checks the replacement on its own merits.
      const second = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
      if (replacedBy === 'other audio') {
        expect(second.status).toBe(200);
        expect(second.body.status).toBe('ready');
        const played = await download((await phone.get(`/api/audio-clips/${created.clip.id}/playback`)).body.url);
        expect(played.bytes.equals(replacement)).toBe(true);
      } else {
        expect(second.status).toBe(422);
        expect(second.body.error.code).toBe('UPLOAD_NOT_AUDIO');
        expect(await testApp.storage.inspect(created.clip.storage_key)).toBeNull();
        expect(await testApp.storage.inspect(created.upload.storage_key)).toBeNull();
      }
    },
  );

  it('deletes the bytes a completion was still moving when the clip was deleted', async () => {
    const audio = wav(0.3, { noise: true });
    const created = await upload(phone, audio, 'audio/wav');
    // The move as a slow S3 copy behaves: the source is read, and the copy appears at the destination
    // only later. Meanwhile the phone deletes the clip, and the delete's cleanup finds nothing to remove.
    const inFlightKey = `${testApp.keyPrefix}/in-flight/${created.clip.id}.wav`;
    const move = testApp.storage.move.bind(testApp.storage);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let reachedMove!: () => void;
    const moving = new Promise<void>((resolve) => (reachedMove = resolve));
    const spy = jest.spyOn(testApp.storage, 'move').mockImplementation(async (from, to, etag) => {
      await move(from, inFlightKey, etag);
      reachedMove();
      await released;
      await move(inFlightKey, to, etag);
    });
    try {
      const completing = phone.post(`/api/audio-clips/${created.clip.id}/complete`);
      await moving;
      expect((await phone.delete(`/api/audio-clips/${created.clip.id}`)).status).toBe(204);
      release();
      expect((await completing).status).toBe(404);
    } finally {
      spy.mockRestore();
    }
    expect(await testApp.storage.inspect(created.clip.storage_key)).toBeNull();
    expect(await testApp.storage.inspect(created.upload.storage_key)).toBeNull();
  });

  it.each(['the clip', 'its note'])(
    'leaves nothing behind when bytes arrive through the URL of a clip after %s was deleted',
    async (what) => {
      const note = await phone.post('/api/notes', { title: 'gone soon' });
      const audio = wav(0.2, { noise: true });
      const created = (
        await phone.post('/api/audio-clips', {
          note_id: note.body.id,
          mime_type: 'audio/wav',
          bytes: audio.length,
          duration_ms: 200,
        })
      ).body;
      const path = what === 'the clip' ? `/api/audio-clips/${created.clip.id}` : `/api/notes/${note.body.id}`;
      expect((await phone.delete(path)).status).toBe(204);

      // S3 still honours the URL it signed: the bytes land, with no clip to own them. The local store
      // takes its URL back (test/dead-urls.e2e-spec.ts).
      const put = await putBytes(created.upload.url, audio, { 'Content-Type': 'audio/wav' });
      expect(put.status).toBe(storage === 'local' ? 403 : 200);
      if (storage !== 'local') expect(await testApp.storage.inspect(created.upload.storage_key)).not.toBeNull();

      await testApp.janitor.runOnce(new Date(Date.parse(created.upload.expires_at) + UPLOAD_GRACE_MS + 1000));
      expect(await testApp.storage.inspect(created.upload.storage_key)).toBeNull();
    },
  );

  it.each(['uploaded', 'uploaded and completed'])(
    'leaves nothing behind when a clip is created and %s on a note while the note is being deleted',
    async (how) => {
      const note = await phone.post('/api/notes', { title: 'deleted while recording' });
      const audio = wav(0.2, { noise: true });
      let created:
        | {
            clip: { id: string; storage_key: string };
            upload: { url: string; storage_key: string; expires_at: string };
          }
        | undefined;
      // Runs inside the note's delete, after NoteDeletionService has recorded the clips it found and before
      // the note's row (and by cascade its clips' rows) goes: the phone records a clip in that moment.
      const notes = testApp.app.get(NotesService);
      const deleteRow = notes.deleteAt.bind(notes);
      const spy = jest.spyOn(notes, 'deleteAt').mockImplementation(async (ownerId, noteId, version) => {
        if (noteId === note.body.id && !created) {
          created = (
            await phone.post('/api/audio-clips', {
              note_id: noteId,
              mime_type: 'audio/wav',
              bytes: audio.length,
              duration_ms: 200,
            })
          ).body;
          expect((await putBytes(created!.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
          if (how === 'uploaded and completed')
            expect((await phone.post(`/api/audio-clips/${created!.clip.id}/complete`)).body.status).toBe('ready');
        }
        return deleteRow(ownerId, noteId, version);
      });
      try {
        expect((await phone.delete(`/api/notes/${note.body.id}`)).status).toBe(204);
      } finally {
        spy.mockRestore();
      }
      expect(created).toBeDefined();
      expect((await phone.get(`/api/audio-clips/${created!.clip.id}`)).status).toBe(404);
      const stored = how === 'uploaded' ? created!.upload.storage_key : created!.clip.storage_key;
      expect(await testApp.storage.inspect(stored)).not.toBeNull();

      await testApp.janitor.runOnce(new Date(Date.parse(created!.upload.expires_at) + UPLOAD_GRACE_MS + 1000));
      expect(await testApp.storage.inspect(created!.upload.storage_key)).toBeNull();
      expect(await testApp.storage.inspect(created!.clip.storage_key)).toBeNull();
    },
  );

  it('returns the same clip with a fresh URL for a retried create with the same Idempotency-Key', async () => {
    const key = `rec-${randomBytes(8).toString('hex')}`;
    const body = { mime_type: 'audio/wav', bytes: 8044, duration_ms: 500 };
    const before = await testApp.rowCounts();
    const answers = await Promise.all(
      [1, 2, 3, 4, 5].map(() => phone.post('/api/audio-clips', body, { 'Idempotency-Key': key })),
    );
    expect(answers.map((answer) => answer.status)).toEqual([201, 201, 201, 201, 201]);
    expect(new Set(answers.map((answer) => answer.body.clip.id)).size).toBe(1);
    expect((await testApp.rowCounts()).audioClips).toBe(before.audioClips + 1);

    const retry = await phone.post('/api/audio-clips', body, { 'Idempotency-Key': key });
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body.clip.id).toBe(answers[0].body.clip.id);
    expect((await putBytes(retry.body.upload.url, wav(0.5), { 'Content-Type': 'audio/wav' })).status).toBe(200);

    const other = await phone.post('/api/audio-clips', { ...body, bytes: 10 }, { 'Idempotency-Key': key });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    // Keys are per user: another user's same key is another request.
    const bob = await testApp.phone('bob');
    const bobs = await bob.post('/api/audio-clips', body, { 'Idempotency-Key': key });
    expect(bobs.status).toBe(201);
    expect(bobs.body.clip.id).not.toBe(answers[0].body.clip.id);
  });

  it('gives a pending clip a fresh upload URL, and refuses one for a ready clip', async () => {
    const audio = wav(1);
    const created = await phone.post('/api/audio-clips', {
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 1000,
    });
    const renewed = await phone.post(`/api/audio-clips/${created.body.clip.id}/upload-url`);
    expect(renewed.status).toBe(200);
    expect(renewed.body.upload.storage_key).toBe(created.body.upload.storage_key);
    expect((await putBytes(renewed.body.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`)).body.status).toBe('ready');
    const again = await phone.post(`/api/audio-clips/${created.body.clip.id}/upload-url`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('AUDIO_CLIP_NOT_PENDING');
  });

  it('makes exactly one transition for 20 concurrent completes: every answer 200 with the same ready clip', async () => {
    const created = await upload(phone, wav(2), 'audio/wav');
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => phone.post(`/api/audio-clips/${created.clip.id}/complete`)),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200));
    for (const answer of answers) expect(answer.body).toEqual(answers[0].body);
    expect(answers[0].body).toMatchObject({ status: 'ready', duration_ms: 2000 });
    expect(
      (await download((await phone.get(`/api/audio-clips/${created.clip.id}/playback`)).body.url)).bytes.equals(wav(2)),
    ).toBe(true);
  });
});

describeEachWithLegs<[StorageKind]>([['s3'], ['rgw']], [RGW_LEG])(
  'completion across two instances of one deployment on Postgres + %s storage',
  (storage) => {
    let first: TestApp;
    let second: TestApp;

    beforeAll(async () => {
      first = await startTestApp({ database: 'postgres', storage });
      second = await startTestApp({ database: 'postgres', storage, sameDeploymentAs: first });
    });

    afterAll(async () => {
      await second?.close();
      await first?.close();
    });

    it('makes one transition for 20 completes split over both: every answer 200 with the same ready clip', async () => {
      const phones = [await first.phone('alice'), await second.phone('alice')];
      const audio = wav(2, { noise: true });
      const created = await upload(phones[0], audio, 'audio/wav');
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => phones[i % 2].post(`/api/audio-clips/${created.clip.id}/complete`)),
      );
      expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200));
      for (const answer of answers) expect(answer.body).toEqual(answers[0].body);
      expect(
        (await download((await phones[1].get(`/api/audio-clips/${created.clip.id}/playback`)).body.url)).bytes.equals(
          audio,
        ),
      ).toBe(true);
      expect(await first.storage.inspect(created.upload.storage_key)).toBeNull();
    });
  },
);

/**
 * An S3 endpoint in front of the test store that passes everything through, except that it answers
 * copies with a store's own "InternalError" after a pause, the way s3rver answers a copy whose source
 * another completion deleted meanwhile. Resolves `copySeen` when the first copy arrives.
 */
async function storeWhoseCopiesFail(
  target: string,
): Promise<{ endpoint: string; copySeen: Promise<void>; close(): Promise<void> }> {
  let seen!: () => void;
  const copySeen = new Promise<void>((resolve) => (seen = resolve));
  const internalError =
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>';
  const server = createServer((incoming, outgoing) => {
    if (incoming.method === 'PUT' && incoming.headers['x-amz-copy-source'] !== undefined) {
      seen();
      incoming.resume();
      setTimeout(() => {
        outgoing.writeHead(500, {
          'content-type': 'application/xml',
          'content-length': Buffer.byteLength(internalError),
        });
        outgoing.end(internalError);
      }, 500);
      return;
    }
    const forwarded = httpRequest(
      target + incoming.url,
      { method: incoming.method, headers: incoming.headers },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forwarded.on('error', () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    copySeen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('completion across two instances when the slower one’s store call fails after the other finished', () => {
  let first: TestApp;
  let second: TestApp;
  let store: Awaited<ReturnType<typeof storeWhoseCopiesFail>>;

  beforeAll(async () => {
    first = await startTestApp({ database: 'postgres', storage: 's3' });
    store = await storeWhoseCopiesFail(first.env.S3_ENDPOINT_URL);
    second = await startTestApp({
      database: 'postgres',
      storage: 's3',
      sameDeploymentAs: first,
      env: { S3_ENDPOINT_URL: store.endpoint },
    });
  });

  afterAll(async () => {
    await second?.close();
    await first?.close();
    await store?.close();
  });

  it('answers 200 with the ready clip, not 503: the clip is ready whatever the store said to this instance', async () => {
    const phones = [await first.phone('alice'), await second.phone('alice')];
    const audio = wav(1, { noise: true });
    const created = await upload(phones[0], audio, 'audio/wav');
    // The second instance gets as far as the copy, which its store holds and then refuses…
    const slow = phones[1].post(`/api/audio-clips/${created.clip.id}/complete`);
    await store.copySeen;
    // …while the first completes the clip.
    const fast = await phones[0].post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(fast.status).toBe(200);
    const answer = await slow;
    expect({ status: answer.status, body: answer.body }).toEqual({ status: 200, body: fast.body });
  });
});

describe.each(['sqlite', 'postgres'] as DatabaseKind[])('the sweep on %s', (database) => {
  let testApp: TestApp;
  /** A second instance of the same deployment, whose janitor shares nothing in memory with the first. */
  let other: TestApp;
  let phone: Phone;

  beforeAll(async () => {
    testApp = await startTestApp({ database, storage: 'local', env: { UPLOAD_TTL_SECONDS: '3600' } });
    other = await startTestApp({ database, storage: 'local', sameDeploymentAs: testApp });
    phone = await testApp.phone('alice');
  });

  afterAll(async () => {
    await other?.close();
    await testApp?.close();
  });

  it('expires stalled clips with nothing uploaded, completes the uploaded ones, leaves ready clips alone', async () => {
    const uploadedNotCompleted = await upload(phone, wav(1), 'audio/wav');
    const neverUploaded = (await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: 100, duration_ms: 1 }))
      .body;
    const ready = await upload(phone, wav(1), 'audio/wav');
    await phone.post(`/api/audio-clips/${ready.clip.id}/complete`);

    // Not yet: within the TTL nothing changes.
    expect((await testApp.janitor.runOnce(new Date(Date.now() + 60_000))).expiredClips).toBe(0);

    // Past the TTL, and past the time an upload begun with the URL could still land.
    const report = await testApp.janitor.runOnce(
      new Date(Date.parse(neverUploaded.upload.expires_at) + UPLOAD_GRACE_MS + 60_000),
    );
    expect(report).toMatchObject({ expiredClips: 1, completedClips: 1 });
    expect(report.deletedObjects).toBeGreaterThanOrEqual(1);
    const swept = (await phone.get(`/api/audio-clips/${neverUploaded.clip.id}`)).body;
    expect(swept).toMatchObject({ status: 'expired', failure_reason: expect.any(String) });
    expect((await phone.post(`/api/audio-clips/${neverUploaded.clip.id}/complete`)).body.error.code).toBe(
      'AUDIO_CLIP_NOT_PENDING',
    );
    expect((await phone.get(`/api/audio-clips/${uploadedNotCompleted.clip.id}`)).body).toMatchObject({
      status: 'ready',
      completed_by: 'server',
    });
    expect(await testApp.storage.inspect(uploadedNotCompleted.upload.storage_key)).toBeNull();
    expect((await phone.get(`/api/audio-clips/${ready.clip.id}`)).body.status).toBe('ready');
    expect(await testApp.storage.inspect(ready.clip.storage_key)).not.toBeNull();
    // The upload keys get a last delete once no upload can still be landing; then nothing is left to do.
    const later = await testApp.janitor.runOnce(new Date(Date.now() + 3 * 3600_000));
    expect(later.remainingDeletions).toBe(0);
    expect(await testApp.storage.inspect(ready.clip.storage_key)).not.toBeNull();
  });

  /** Holds the next call of `object[method]` until released, then lets it run as it would have. */
  function holdNextCall<T extends object, K extends keyof T>(object: T, method: K) {
    const original = (object[method] as (...args: unknown[]) => Promise<unknown>).bind(object);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let reached!: (args: unknown[]) => void;
    const held = new Promise<unknown[]>((resolve) => (reached = resolve));
    const spy = jest.spyOn(object, method as never).mockImplementationOnce((async (...args: unknown[]) => {
      reached(args);
      await released;
      return original(...args);
    }) as never);
    return { held, release, restore: () => spy.mockRestore() };
  }

  it.each([
    ['before it moves the upload', () => holdNextCall(testApp.storage, 'move')],
    ['after it moved the upload', () => holdNextCall(testApp.app.get(AudioClipsRepository), 'markReady')],
  ])(
    'ends a completion that another instance’s janitor overtakes %s with the clip ready once, playable',
    async (_when, hold) => {
      const audio = wav(0.5, { noise: true });
      const created = await upload(phone, audio, 'audio/wav');
      const held = hold();
      try {
        const completing = phone.post(`/api/audio-clips/${created.clip.id}/complete`);
        await held.held;
        const sweep = await other.janitor.runOnce(new Date(Date.now() + 2 * 3600_000));
        // The race happened: the other janitor completed the clip while the phone's completion was held.
        expect(sweep.completedClips).toBe(1);
        held.release();
        const completed = await completing;
        expect(completed.status).toBe(200);
        expect(completed.body).toMatchObject({ status: 'ready', completed_by: 'server' });
      } finally {
        held.restore();
      }
      await testApp.janitor.runOnce(new Date(Date.now() + 2 * 3600_000));
      const clip = (await phone.get(`/api/audio-clips/${created.clip.id}`)).body;
      expect(clip).toMatchObject({ status: 'ready', completed_by: 'server' });
      const played = await download((await phone.get(`/api/audio-clips/${created.clip.id}/playback`)).body.url);
      expect(played.bytes.equals(audio)).toBe(true);
      expect(await testApp.storage.inspect(created.upload.storage_key)).toBeNull();
    },
  );

  it('ends a sweep that a late upload and completion overtake with the clip ready and playable', async () => {
    const audio = wav(0.5, { noise: true });
    const created = (
      await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 500 })
    ).body;
    // The sweeper found nothing uploaded at the clip's last look and is about to expire it when the
    // bytes land (a PUT the store took in time) and the phone completes.
    const markExpired = holdNextCall(testApp.app.get(AudioClipsRepository), 'markExpired');
    try {
      const sweeping = testApp.janitor.runOnce(
        new Date(Date.parse(created.upload.expires_at) + UPLOAD_GRACE_MS + 3600_000),
      );
      expect((await markExpired.held)[0]).toBe(created.clip.id); // the race happened: this clip was picked
      expect((await putBytes(created.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
      expect((await phone.post(`/api/audio-clips/${created.clip.id}/complete`)).body.status).toBe('ready');
      markExpired.release();
      expect((await sweeping).expiredClips).toBe(0);
    } finally {
      markExpired.restore();
    }
    await testApp.janitor.runOnce(new Date(Date.now() + 2 * 3600_000));
    expect((await phone.get(`/api/audio-clips/${created.clip.id}`)).body).toMatchObject({
      status: 'ready',
      completed_by: 'client',
    });
    const played = await download((await phone.get(`/api/audio-clips/${created.clip.id}/playback`)).body.url);
    expect(played.bytes.equals(audio)).toBe(true);
  });

  it('does not expire a clip whose fresh upload URL is still valid', async () => {
    const clip = (await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: 100, duration_ms: 1 })).body;
    const inAnHour = new Date(Date.now() + 3600_000 + 1000);
    // The phone asks for a new URL just before the TTL would run out.
    await testApp.dataSource.query(
      `UPDATE audio_clips SET upload_expires_at = ${database === 'postgres' ? '$1' : '?'} WHERE id = ${database === 'postgres' ? '$2' : '?'}`,
      [
        database === 'postgres'
          ? new Date(inAnHour.getTime() + 600_000)
          : new Date(inAnHour.getTime() + 600_000).toISOString().replace('T', ' ').replace('Z', ''),
        clip.clip.id,
      ],
    );
    await testApp.janitor.runOnce(inAnHour);
    expect((await phone.get(`/api/audio-clips/${clip.clip.id}`)).body.status).toBe('pending');
  });
});

describe('two sweepers at once on one Postgres', () => {
  let first: TestApp;
  let second: TestApp;

  beforeAll(async () => {
    first = await startTestApp({ database: 'postgres', storage: 'local', env: { UPLOAD_TTL_SECONDS: '60' } });
    second = await startTestApp({ database: 'postgres', storage: 'local', sameDeploymentAs: first });
  });

  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  it('expire every stalled empty clip and complete every uploaded one exactly once, leaving no stray object', async () => {
    const phone = await first.phone('alice');
    const uploaded = [];
    const empty = [];
    for (let i = 0; i < 15; i += 1) {
      uploaded.push(await upload(phone, wav(0.25), 'audio/wav'));
      empty.push((await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: 100, duration_ms: 1 })).body);
    }
    const later = new Date(Date.parse(empty[empty.length - 1].upload.expires_at) + UPLOAD_GRACE_MS + 60_000);
    const [a, b] = await Promise.all([first.janitor.runOnce(later), second.janitor.runOnce(later)]);
    expect(a.expiredClips + b.expiredClips).toBe(15);
    expect(a.completedClips + b.completedClips).toBe(15);
    const counts = await first.dataSource.query(
      'SELECT status, completed_by, COUNT(*) AS count FROM audio_clips GROUP BY status, completed_by ORDER BY status',
    );
    expect(counts.map((row: { count: string }) => ({ ...row, count: Number(row.count) }))).toEqual([
      { status: 'expired', completed_by: null, count: 15 },
      { status: 'ready', completed_by: 'server', count: 15 },
    ]);
    await first.janitor.runOnce(later);
    for (const clip of [...uploaded, ...empty]) expect(await first.storage.inspect(clip.upload.storage_key)).toBeNull();
    // What is left is exactly the audio of the ready clips (each object with its metadata file).
    const files = await first.localFiles();
    for (const clip of uploaded) expect(files.some((file) => file.includes(clip.clip.id))).toBe(true);
    for (const clip of empty) expect(files.some((file) => file.includes(clip.clip.id))).toBe(false);
  });
});
