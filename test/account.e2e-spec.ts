import { describeEachWithLegs } from './harness/legs';
import { RGW_LEG } from './harness/rgw';
import { wav } from './support/audio';
import { ownerColumnTables, rowsOfOwner } from './support/owner-rows';
import { download, putBytes, type Phone } from './support/phone';
import { startTestApp, type DatabaseKind, type StorageKind, type TestApp } from './support/test-app';

const MIB = 1024 * 1024;
/** Two hours on: every upload URL handed out in the test (15 minutes) has run out, its grace (an hour) too. */
const afterEveryUrl = () => new Date(Date.now() + 2 * 60 * 60_000);
const wavHeaders = { 'Content-Type': 'audio/wav' };

function deleteAccount(phone: Phone, confirmation?: string) {
  return phone.raw(
    'DELETE',
    '/api/me',
    undefined,
    confirmation === undefined ? {} : { 'confirm-delete': confirmation },
  );
}

describeEachWithLegs<[DatabaseKind, StorageKind]>(
  [
    ['sqlite', 'local'],
    ['postgres', 's3'],
    ['postgres', 'rgw'],
  ],
  [RGW_LEG],
)('your account, on %s + %s storage', (database, storage) => {
  let testApp: TestApp;
  const audio = wav(0.2);
  const QUOTA = 20 * MIB;

  beforeAll(async () => {
    testApp = await startTestApp({
      database,
      storage,
      env: {
        USER_QUOTA_BYTES: String(QUOTA),
        MAX_PENDING_UPLOADS: '5',
        MULTIPART_THRESHOLD_BYTES: String(5 * MIB),
      },
    });
  }, 120_000);

  afterAll(async () => {
    await testApp?.close();
  });

  async function readyClip(phone: Phone, noteId?: string, bytes = audio) {
    const created = await phone.post(
      '/api/audio-clips',
      { mime_type: 'audio/wav', bytes: bytes.length, duration_ms: 200, ...(noteId ? { note_id: noteId } : {}) },
      { 'Idempotency-Key': `key-${Math.random()}` },
    );
    expect(created.status).toBe(201);
    expect((await putBytes(created.body.upload.url, bytes, wavHeaders)).status).toBe(200);
    expect((await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`)).status).toBe(200);
    return created.body.clip;
  }

  describe('GET /api/me', () => {
    it('answers a fresh account with zeros and the limits in force', async () => {
      const phone = await testApp.phone('fresh');
      const me = await phone.get('/api/me');
      expect(me.status).toBe(200);
      expect(me.body).toEqual({
        user_id: 'fresh',
        notes: 0,
        audio_clips: 0,
        used_bytes: 0,
        pending_uploads: 0,
        pending_bytes: 0,
        quota_bytes: QUOTA,
        max_pending_uploads: 5,
        max_pending_upload_bytes: 1024 * MIB,
        dead_uploads: 0,
        dead_upload_bytes: 0,
      });
    });

    it('gives a user_id of any Unicode back as it is', async () => {
      const sub = 'ünïcødé/user 🎙️';
      const me = await (await testApp.phone(sub)).get('/api/me');
      expect(me.body.user_id).toBe(sub);
    });

    it('shows the very figures a refused create answers with, and a create of exactly what is left fits', async () => {
      const phone = await testApp.phone('usage');
      const note = (await phone.post('/api/notes', { title: 'n' })).body;
      await phone.post('/api/notes', { title: 'm' });
      await readyClip(phone, note.id);
      const pending = await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: 1000, duration_ms: 1 });
      expect(pending.status).toBe(201);
      const deleted = await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: 500, duration_ms: 1 });
      expect((await phone.delete(`/api/audio-clips/${deleted.body.clip.id}`)).status).toBe(204);

      const me = (await phone.get('/api/me')).body;
      // On S3 the deleted clip's URL still writes 500 bytes, which count until it has run out.
      const dead = storage === 'local' ? 0 : 500;
      expect(me).toMatchObject({
        notes: 2,
        audio_clips: 2,
        used_bytes: audio.length + 1000 + dead,
        pending_uploads: 1 + (dead ? 1 : 0),
        pending_bytes: 1000 + dead,
        dead_uploads: dead ? 1 : 0,
        dead_upload_bytes: dead,
      });

      const remaining = me.quota_bytes - me.used_bytes;
      const refused = await phone.post('/api/audio-clips', {
        mime_type: 'audio/wav',
        bytes: remaining + 1,
        duration_ms: 1,
      });
      expect(refused.status).toBe(413);
      for (const field of ['quota_bytes', 'used_bytes', 'dead_uploads', 'dead_upload_bytes'])
        expect({ field, value: refused.body.error[field] }).toEqual({ field, value: me[field] });
      const fits = await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: remaining, duration_ms: 1 });
      expect(fits.status).toBe(201);
      const full = (await phone.get('/api/me')).body;
      expect(full.used_bytes).toBe(full.quota_bytes);
    });

    it('shows the figures a create refused by the pending cap answers with', async () => {
      const phone = await testApp.phone('pending-cap');
      for (;;) {
        const next = await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: 1, duration_ms: 1 });
        if (next.status === 201) continue;
        expect(next.status).toBe(409);
        const now = (await phone.get('/api/me')).body;
        expect(now.used_bytes).toBe(now.pending_bytes);
        for (const field of ['pending_uploads', 'pending_bytes', 'max_pending_uploads', 'max_pending_upload_bytes'])
          expect({ field, value: next.body.error[field] }).toEqual({ field, value: now[field] });
        expect(now.pending_uploads).toBe(now.max_pending_uploads);
        break;
      }
    });
  });

  describe('DELETE /api/me', () => {
    it('refuses a missing or wrong Confirm-Delete and deletes nothing', async () => {
      const phone = await testApp.phone('cautious é');
      await phone.post('/api/notes', { title: 'keep me' });
      await readyClip(phone);
      const before = await rowsOfOwner(testApp, 'cautious é');
      for (const confirmation of [
        undefined,
        '',
        'cautious é'.normalize('NFD'),
        'someone-else',
        'cautious%',
        '%E9',
        'cautious%20%C3',
      ]) {
        const answer = await deleteAccount(phone, confirmation === undefined ? undefined : encodeURI(confirmation));
        expect({ confirmation, status: answer.status, code: answer.body.error?.code }).toEqual({
          confirmation,
          status: 400,
          code: 'DELETE_NOT_CONFIRMED',
        });
      }
      // Another user's id, even correctly encoded, is not a confirmation of one's own.
      expect((await deleteAccount(await testApp.phone('other'), encodeURIComponent('cautious é'))).status).toBe(400);
      expect(await rowsOfOwner(testApp, 'cautious é')).toEqual(before);
      expect((await phone.get('/api/me')).body).toMatchObject({ notes: 1, audio_clips: 1 });
    });

    it('deletes every row and, after the janitor and the last URL, every object of the owner; nobody else’s', async () => {
      const ownerId = 'leaving 🚪/ä';
      const alice = await testApp.phone(ownerId);
      const bob = await testApp.phone('bob-stays');

      // Bob's things, which must stay.
      const bobsNote = (await bob.post('/api/notes', { title: 'bob' })).body;
      const bobsClip = await readyClip(bob, bobsNote.id);
      const bobsKeysBefore = storage === 's3' ? [] : await testApp.storedKeys();
      const bobsRowsBefore = await rowsOfOwner(testApp, 'bob-stays');

      // Everything Alice can have: notes, ready clips (in a note and not), a pending clip with its bytes
      // uploaded, a multipart upload with one part, a deleted clip whose URL still writes, an
      // idempotency key, and an upload URL she will use after the deletion.
      const note = (await alice.post('/api/notes', { title: 'mine' })).body;
      await alice.post('/api/notes', { title: 'empty' });
      await readyClip(alice, note.id);
      await readyClip(alice);
      const uploaded = (
        await alice.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 1 })
      ).body;
      expect((await putBytes(uploaded.upload.url, audio, wavHeaders)).status).toBe(200);
      // s3rver has no multipart uploads (it answers MethodNotAllowed); RGW and the local store do.
      const multipart =
        storage === 's3'
          ? null
          : (
              await alice.post('/api/audio-clips', {
                note_id: note.id,
                mime_type: 'audio/wav',
                bytes: 6 * MIB,
                duration_ms: 1,
              })
            ).body;
      if (multipart) {
        expect(multipart.upload.mode).toBe('multipart');
        const [part] = (await alice.post(`/api/audio-clips/${multipart.clip.id}/parts`, { part_numbers: [1] })).body
          .parts;
        expect((await putBytes(part.url, Buffer.alloc(5 * MIB, 1), part.headers)).status).toBe(200);
      }
      const gone = (
        await alice.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 1 })
      ).body;
      expect((await alice.delete(`/api/audio-clips/${gone.clip.id}`)).status).toBe(204);
      const inFlight = (
        await alice.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 1 })
      ).body;

      // Every key the database ever recorded for her.
      const clipKeys = (await testApp.dataSource.query(
        testApp.env.DATABASE_URL.startsWith('postgres')
          ? 'SELECT storage_key, upload_key, multipart_upload_id FROM audio_clips WHERE owner_id = $1'
          : 'SELECT storage_key, upload_key, multipart_upload_id FROM audio_clips WHERE owner_id = ?',
        [ownerId],
      )) as { storage_key: string; upload_key: string; multipart_upload_id: string | null }[];
      const uploadId = clipKeys.find((row) => row.multipart_upload_id !== null)?.multipart_upload_id;
      const keys = [
        ...new Set([
          ...clipKeys.flatMap((row) => [row.storage_key, row.upload_key]),
          gone.clip.storage_key,
          gone.upload.storage_key,
        ]),
      ];
      expect(keys.length).toBeGreaterThanOrEqual(multipart ? 12 : 10);
      const tables = await ownerColumnTables(testApp);
      expect(tables).toEqual(
        expect.arrayContaining([
          'notes',
          'audio_clips',
          'idempotency_keys',
          'storage_deletions',
          'note_revisions',
          'sync_owners',
          'sync_tombstones',
          'renditions',
          'exports',
        ]),
      );

      // A sync cursor of hers from before: it must not continue into the fresh account.
      const syncedBefore = (await alice.get('/api/sync/changes')).body.next_cursor;
      expect(typeof syncedBefore).toBe('string');

      const deleted = await deleteAccount(alice, encodeURIComponent(ownerId));
      expect(deleted.status).toBe(202);
      expect(deleted.body).toMatchObject({
        user_id: ownerId,
        deleted_rows: expect.objectContaining({ notes: 2, audio_clips: multipart ? 5 : 4, idempotency_keys: 2 }),
      });
      expect(deleted.body.scheduled_objects).toBeGreaterThanOrEqual(multipart ? 10 : 8);
      expect(Date.parse(deleted.body.uploads_deleted_after)).toBeGreaterThan(Date.now());

      // At once: no row of hers in any table with an owner column but the outbox's holds of dead URLs.
      const left = await rowsOfOwner(testApp, ownerId);
      expect(Object.keys(left).filter((table) => table !== 'storage_deletions')).toEqual([]);
      if (storage === 'local') expect(left).toEqual({});

      // Her upload URL handed out before: refused by the local store; on S3 it still writes.
      const late = await putBytes(inFlight.upload.url, audio, wavHeaders);
      expect(late.status).toBe(storage === 'local' ? 403 : 200);

      // A fresh, empty account for the same token; the URLs still open count against it until they run out.
      const fresh = (await alice.get('/api/me')).body;
      expect(fresh).toMatchObject({ user_id: ownerId, notes: 0, audio_clips: 0 });
      expect(fresh.used_bytes).toBe(fresh.dead_upload_bytes);
      expect((await alice.get('/api/notes')).body.items).toEqual([]);
      expect((await alice.get('/api/audio-clips')).body.items).toEqual([]);

      const oldCursor = await alice.get(`/api/sync/changes?cursor=${encodeURIComponent(syncedBefore)}`);
      expect(oldCursor.status).toBe(410);
      expect(oldCursor.body.error.code).toBe('SYNC_CURSOR_EXPIRED');

      // Repeated: 202 again, nothing more to delete.
      const again = await deleteAccount(alice, encodeURIComponent(ownerId));
      expect(again.status).toBe(202);
      expect(Object.values(again.body.deleted_rows).every((count) => count === 0)).toBe(true);

      await testApp.janitor.runOnce();
      await testApp.janitor.runOnce(afterEveryUrl());
      for (const key of keys)
        expect({ key, object: await testApp.storage.inspect(key) }).toEqual({ key, object: null });
      // The open multipart upload was aborted: its parts are gone.
      if (multipart)
        await expect(testApp.storage.listParts(multipart.upload.storage_key, uploadId!)).rejects.toMatchObject({
          code: 'MULTIPART_UPLOAD_GONE',
        });
      if (storage !== 's3') expect(await testApp.storedKeys()).toEqual(bobsKeysBefore);
      expect(await rowsOfOwner(testApp, ownerId)).toEqual({});
      expect((await alice.get('/api/me')).body).toMatchObject({ used_bytes: 0, dead_uploads: 0, pending_uploads: 0 });

      // Bob is untouched.
      expect(await rowsOfOwner(testApp, 'bob-stays')).toEqual(bobsRowsBefore);
      const playback = await bob.get(`/api/audio-clips/${bobsClip.id}/playback`);
      expect((await download(playback.body.url)).bytes.equals(audio)).toBe(true);

      // The token works for a fresh start, and the old cursor still does not continue into it.
      expect((await alice.post('/api/notes', { title: 'again' })).status).toBe(201);
      expect((await alice.get(`/api/sync/changes?cursor=${encodeURIComponent(syncedBefore)}`)).status).toBe(410);
    }, 120_000);
  });
});
