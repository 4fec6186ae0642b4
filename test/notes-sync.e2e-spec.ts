import { randomUUID } from 'node:crypto';
import { SQLITE_SYNC_TRIGGERS } from '../src/sync/sync-triggers';
import { wav } from './support/audio';
import { Phone, putBytes, type ApiResponse } from './support/phone';
import { startTestApp, type DatabaseKind, type TestApp } from './support/test-app';

const HOUR = 60 * 60_000;

/** Every change of the feed from a cursor on, page by page. */
async function pullAll(
  phone: Phone,
  cursor?: string,
  limit = 100,
): Promise<{ changes: any[]; cursor: string; pages: number }> {
  const changes: any[] = [];
  let pages = 0;
  for (;;) {
    const query = new URLSearchParams({ limit: String(limit), ...(cursor === undefined ? {} : { cursor }) });
    const page = await phone.get(`/api/sync/changes?${query.toString()}`);
    expect(page.status).toBe(200);
    pages += 1;
    changes.push(...page.body.changes);
    expect(typeof page.body.next_cursor).toBe('string');
    cursor = page.body.next_cursor;
    if (!page.body.has_more) return { changes, cursor: cursor!, pages };
  }
}

function send(
  phone: Phone,
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<ApiResponse> {
  return phone.raw(
    method,
    path,
    body === undefined ? undefined : JSON.stringify(body),
    body === undefined ? headers : { 'content-type': 'application/json', ...headers },
  );
}

describe.each<DatabaseKind>(['sqlite', 'postgres'])('notes a phone can sync, on %s', (database) => {
  let testApp: TestApp;
  let alice: Phone;
  let bob: Phone;

  beforeAll(async () => {
    testApp = await startTestApp({
      database,
      storage: 'local',
      env: { NOTE_REVISIONS_KEPT: '4', SYNC_TOMBSTONE_TTL_SECONDS: String(4 * 24 * 3600) },
    });
    alice = await testApp.phone('alice');
    bob = await testApp.phone('bob');
  }, 60_000);

  afterAll(async () => {
    await testApp?.close();
  });

  async function rows(): Promise<string> {
    const tables = ['notes', 'audio_clips', 'note_revisions', 'sync_tombstones', 'sync_owners', 'idempotency_keys'];
    const all = await Promise.all(tables.map((table) => testApp.dataSource.query(`SELECT * FROM ${table}`)));
    return JSON.stringify(all.map((list: Record<string, unknown>[]) => list.map((row) => JSON.stringify(row)).sort()));
  }

  it('keeps its triggers after every migration', async () => {
    const names =
      database === 'postgres'
        ? (
            (await testApp.dataSource.query(
              "SELECT tgname AS name FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE '%sync%'",
            )) as { name: string }[]
          ).map((row) => row.name)
        : (
            (await testApp.dataSource.query("SELECT name FROM sqlite_master WHERE type = 'trigger'")) as {
              name: string;
            }[]
          ).map((row) => row.name);
    const expected =
      database === 'postgres'
        ? ['audio_clips_sync_stamp', 'audio_clips_sync_tombstone', 'notes_sync_stamp', 'notes_sync_tombstone']
        : SQLITE_SYNC_TRIGGERS;
    expect([...names].sort()).toEqual(expect.arrayContaining([...expected].sort()));
  });

  describe('versions and ETags', () => {
    it('numbers versions from 1, answers them as strong ETags, and honours If-None-Match', async () => {
      const created = await alice.post('/api/notes', { title: 'v', body: 'one\n' });
      expect(created.status).toBe(201);
      expect(created.body.version).toBe(1);
      expect(created.headers.get('etag')).toBe('"1"');
      const path = `/api/notes/${created.body.id}`;
      const got = await alice.get(path);
      expect(got.headers.get('etag')).toBe('"1"');
      for (const tag of ['"1"', '"0", "1"', '*']) {
        const fresh = await alice.get(path, { 'if-none-match': tag });
        expect(fresh.status).toBe(304);
        expect(fresh.body).toBeUndefined();
        expect(fresh.headers.get('etag')).toBe('"1"');
      }
      for (const tag of ['W/"1"', '"2"']) expect((await alice.get(path, { 'if-none-match': tag })).status).toBe(200);
      const malformed = await alice.get(path, { 'if-none-match': '1' });
      expect(malformed.status).toBe(400);
      expect(malformed.body.error.details[0].field).toBe('If-None-Match');
    });

    it('honours If-Match on PATCH: a stale or weak tag is a 412 with the current note, and nothing changes', async () => {
      const { body: note } = await alice.post('/api/notes', { title: 'match', body: 'a\n' });
      const path = `/api/notes/${note.id}`;
      const first = await send(alice, 'PATCH', path, { body: 'b\n' }, { 'if-match': '"1"' });
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ version: 2, body: 'b\n', merged: false });
      expect(first.headers.get('etag')).toBe('"2"');
      const before = await rows();
      for (const tag of ['"1"', 'W/"2"', '"3", "1"']) {
        const stale = await send(alice, 'PATCH', path, { body: 'c\n' }, { 'if-match': tag });
        expect(stale.status).toBe(412);
        expect(stale.body.error.code).toBe('NOTE_VERSION_MISMATCH');
        expect(stale.body.error.current).toMatchObject({ id: note.id, version: 2, body: 'b\n' });
      }
      for (const tag of ['2', '"2', 'W/2', '"2" "3"', '']) {
        const bad = await send(alice, 'PATCH', path, { body: 'c\n' }, { 'if-match': tag });
        expect(bad.status).toBe(400);
        expect(bad.body.error.details[0].field).toBe('If-Match');
      }
      expect(await rows()).toBe(before);
      expect((await send(alice, 'PATCH', path, { body: 'c\n' }, { 'if-match': '*' })).body.version).toBe(3);
      // Without If-Match, as before; a change that changes nothing keeps the version.
      expect((await alice.patch(path, { title: 'match' })).body.version).toBe(3);
      expect((await alice.patch(path, {})).body.version).toBe(3);
      expect((await alice.patch(path, { title: 'match 2' })).body.version).toBe(4);
    });

    it('honours If-Match on DELETE', async () => {
      const { body: note } = await alice.post('/api/notes', { title: 'doomed' });
      await alice.patch(`/api/notes/${note.id}`, { body: 'x' });
      const stale = await send(alice, 'DELETE', `/api/notes/${note.id}`, undefined, { 'if-match': '"1"' });
      expect(stale.status).toBe(412);
      expect(stale.body.error.current.version).toBe(2);
      expect((await alice.get(`/api/notes/${note.id}`)).status).toBe(200);
      expect((await send(alice, 'DELETE', `/api/notes/${note.id}`, undefined, { 'if-match': '"2"' })).status).toBe(204);
    });
  });

  describe('client ids and Idempotency-Key', () => {
    it('creates under the client’s id; the same create again is a replay, judged against the original create', async () => {
      const id = randomUUID();
      const first = await alice.post('/api/notes', { id, title: 'offline', body: 'made on the train' });
      expect(first.status).toBe(201);
      expect(first.body.id).toBe(id);
      await alice.patch(`/api/notes/${id}`, { body: 'edited since' });
      const again = await alice.post('/api/notes', { id, title: 'offline', body: 'made on the train' });
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body).toMatchObject({ id, version: 2, body: 'edited since' });
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      // Upper case is the same UUID.
      expect(
        (await alice.post('/api/notes', { id: id.toUpperCase(), title: 'offline', body: 'made on the train' })).status,
      ).toBe(201);
    });

    it('refuses an id any other note has or had, with the same answer whoever owns it', async () => {
      const id = randomUUID();
      await alice.post('/api/notes', { id, title: 'mine' });
      const before = await rows();
      const otherContent = await alice.post('/api/notes', { id, title: 'not the same' });
      const bobs = await bob.post('/api/notes', { id, title: 'mine' });
      expect(otherContent.status).toBe(409);
      expect(bobs.status).toBe(409);
      expect(otherContent.body.error.code).toBe('NOTE_ID_CONFLICT');
      expect(bobs.body.error.message).toBe(otherContent.body.error.message);
      // A note created without an id cannot be "replayed" under it either.
      const serverMade = await alice.post('/api/notes', { title: 'server id' });
      expect((await alice.post('/api/notes', { id: serverMade.body.id, title: 'server id' })).status).toBe(409);
      expect(await rows()).not.toBe(before); // the server-made note
      // Deleted: refused, never resurrected, whoever asks.
      expect((await alice.delete(`/api/notes/${id}`)).status).toBe(204);
      const afterDelete = await rows();
      for (const phone of [alice, bob]) {
        const revived = await phone.post('/api/notes', { id, title: 'mine' });
        expect(revived.status).toBe(409);
        expect(revived.body.error.message).toBe(otherContent.body.error.message);
      }
      expect(await rows()).toBe(afterDelete);
    });

    it.each([['not-a-uuid'], ['6f1c2b8e-8d1a-1c3e-9a57-2f1d6e4b7c90'], [42], [null], ['']])(
      'refuses id %j, naming it, and writes nothing',
      async (id) => {
        const before = await rows();
        const response = await alice.post('/api/notes', { id, title: 'x' });
        expect(response.status).toBe(400);
        expect(response.body.error.details.map((detail: { field: string }) => detail.field)).toContain('id');
        expect(await rows()).toBe(before);
      },
    );

    it('replays a create with the same Idempotency-Key, per owner and per endpoint', async () => {
      const key = `note-${randomUUID()}`;
      const first = await alice.post('/api/notes', { title: 'once' }, { 'idempotency-key': key });
      const again = await alice.post('/api/notes', { title: 'once' }, { 'idempotency-key': key });
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body.id).toBe(first.body.id);
      const before = await rows();
      const reused = await alice.post('/api/notes', { title: 'twice' }, { 'idempotency-key': key });
      expect(reused.status).toBe(422);
      expect(reused.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
      expect(await rows()).toBe(before);
      // Bob's key is his; the audio-clips endpoint's keys are its own.
      const bobs = await bob.post('/api/notes', { title: 'once' }, { 'idempotency-key': key });
      expect(bobs.status).toBe(201);
      expect(bobs.body.id).not.toBe(first.body.id);
      const clip = await alice.post(
        '/api/audio-clips',
        { mime_type: 'audio/wav', bytes: 100, duration_ms: 1 },
        { 'idempotency-key': key },
      );
      expect(clip.status).toBe(201);
      expect(clip.headers.get('idempotent-replayed')).toBeNull();
      const bad = await alice.post('/api/notes', { title: 'x' }, { 'idempotency-key': 'ü' });
      expect(bad.status).toBe(400);
      expect(bad.body.error.details[0].field).toBe('Idempotency-Key');
    });

    it('creates one note when retries with one key or one id race', async () => {
      const key = `race-${randomUUID()}`;
      const id = randomUUID();
      const byKey = await Promise.all(
        Array.from({ length: 6 }, () => alice.post('/api/notes', { title: 'race' }, { 'idempotency-key': key })),
      );
      const byId = await Promise.all(Array.from({ length: 6 }, () => alice.post('/api/notes', { id, title: 'race' })));
      for (const group of [byKey, byId]) {
        expect(group.map((response) => response.status)).toEqual(Array(6).fill(201));
        expect(new Set(group.map((response) => response.body.id)).size).toBe(1);
        expect(group.filter((response) => response.headers.get('idempotent-replayed') !== 'true')).toHaveLength(1);
      }
    });
  });

  describe('three-way merge', () => {
    async function noteAt2(): Promise<string> {
      const { body: note } = await alice.post('/api/notes', { title: 'Standup', body: 'one\ntwo\nthree\nfour\n' });
      await alice.patch(`/api/notes/${note.id}`, { body: 'ONE\ntwo\nthree\nfour\n' });
      return note.id;
    }

    it('merges an edit from an older version with the changes since', async () => {
      const id = await noteAt2();
      const merged = await alice.patch(`/api/notes/${id}`, {
        base_version: 1,
        body: 'one\ntwo\nthree\nFOUR\n',
        title: 'Daily',
      });
      expect(merged.status).toBe(200);
      expect(merged.body).toMatchObject({ version: 3, merged: true, title: 'Daily', body: 'ONE\ntwo\nthree\nFOUR\n' });
      expect(merged.headers.get('etag')).toBe('"3"');
      // From the current version: no merge.
      expect((await alice.patch(`/api/notes/${id}`, { base_version: 3, body: 'x\n' })).body.merged).toBe(false);
    });

    it('refuses overlapping edits with base, current, yours and the regions, and writes nothing', async () => {
      const id = await noteAt2();
      const before = await rows();
      const conflict = await alice.patch(`/api/notes/${id}`, { base_version: 1, body: 'uno\ntwo\nthree\nfour\n' });
      expect(conflict.status).toBe(409);
      expect(conflict.body.error).toMatchObject({
        code: 'NOTE_EDIT_CONFLICT',
        base: { version: 1, title: 'Standup', body: 'one\ntwo\nthree\nfour\n' },
        current: { id, version: 2, body: 'ONE\ntwo\nthree\nfour\n' },
        yours: { title: 'Standup', body: 'uno\ntwo\nthree\nfour\n' },
        conflicts: [{ field: 'body', base_line: 1, base: 'one\n', current: 'ONE\n', yours: 'uno\n' }],
      });
      expect(await rows()).toBe(before);
    });

    it('refuses a merge whose body would be longer than a note may be, and writes nothing', async () => {
      const start = 'x'.repeat(60_000) + '\n';
      const { body: note } = await alice.post('/api/notes', { title: 'long', body: start });
      await alice.patch(`/api/notes/${note.id}`, { body: 'a'.repeat(30_000) + '\n' + start });
      const before = await rows();
      const merged = await alice.patch(`/api/notes/${note.id}`, {
        base_version: 1,
        body: start + 'b'.repeat(30_000) + '\n',
      });
      expect(merged.status).toBe(400);
      expect(merged.body.error).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'body' }] });
      expect(await rows()).toBe(before);
    });

    it('checks If-Match before base_version', async () => {
      const id = await noteAt2();
      const response = await send(
        alice,
        'PATCH',
        `/api/notes/${id}`,
        { base_version: 1, body: 'uno\n' },
        { 'if-match': '"1"' },
      );
      expect(response.status).toBe(412);
    });

    it.each([[0], [-1], [1.5], ['2'], [null], [true], [99], [2 ** 31]])(
      'refuses base_version %j, naming it, and writes nothing',
      async (baseVersion) => {
        const id = await noteAt2();
        const before = await rows();
        const response = await alice.patch(`/api/notes/${id}`, { base_version: baseVersion, body: 'z\n' });
        expect(response.status).toBe(400);
        expect(response.body.error.details.map((detail: { field: string }) => detail.field)).toContain('base_version');
        expect(await rows()).toBe(before);
      },
    );

    it('answers 412 with the current note when the base revision is no longer kept', async () => {
      const id = await noteAt2();
      for (let n = 0; n < 5; n += 1) await alice.patch(`/api/notes/${id}`, { title: `t${n}` });
      const response = await alice.patch(`/api/notes/${id}`, { base_version: 1, body: 'z\n' });
      expect(response.status).toBe(412);
      expect(response.body.error.current.version).toBe(7);
    });
  });

  describe('revisions', () => {
    it('keeps the newest NOTE_REVISIONS_KEPT versions, newest first, paged; restores one as a new version', async () => {
      const { body: note } = await alice.post('/api/notes', { title: 'r', body: 'v1' });
      for (const body of ['v2', 'v3', 'v4', 'v5']) await alice.patch(`/api/notes/${note.id}`, { body });
      const first = await alice.get(`/api/notes/${note.id}/revisions?limit=3`);
      expect(first.status).toBe(200);
      expect(first.body.items.map((item: { version: number }) => item.version)).toEqual([5, 4, 3]);
      const second = await alice.get(`/api/notes/${note.id}/revisions?limit=3&cursor=${first.body.next_cursor}`);
      expect(second.body).toMatchObject({ items: [{ version: 2, body: 'v2' }], next_cursor: null });
      expect((await alice.get(`/api/notes/${note.id}/revisions/3`)).body).toMatchObject({ version: 3, body: 'v3' });
      // A cursor past the versions a note can have is not one this API gave: 400 naming it, not a database error.
      const forged = Buffer.from(JSON.stringify(['revisions-before', 2_147_483_648])).toString('base64url');
      const past = await alice.get(`/api/notes/${note.id}/revisions?cursor=${forged}`);
      expect(past.status).toBe(400);
      expect(past.body.error.details).toEqual([expect.objectContaining({ field: 'cursor' })]);
      const gone = await alice.get(`/api/notes/${note.id}/revisions/1`);
      expect(gone.status).toBe(404);
      expect(gone.body.error.code).toBe('NOTE_REVISION_NOT_FOUND');
      const restored = await alice.post(`/api/notes/${note.id}/revisions/3/restore`);
      expect(restored.status).toBe(200);
      expect(restored.body).toMatchObject({ version: 6, body: 'v3' });
      expect(restored.headers.get('etag')).toBe('"6"');
      const stale = await send(alice, 'POST', `/api/notes/${note.id}/revisions/4/restore`, undefined, {
        'if-match': '"5"',
      });
      expect(stale.status).toBe(412);
      for (const version of ['0', '-1', 'x', '1.5', '99999999999', '1e3', '%20']) {
        const bad = await alice.get(`/api/notes/${note.id}/revisions/${version}`);
        expect(bad.status).toBe(400);
        expect(bad.body.error.details[0].field).toBe('version');
      }
      const badCursor = await alice.get(`/api/notes/${note.id}/revisions?cursor=nope`);
      expect(badCursor.status).toBe(400);
      expect(badCursor.body.error.details[0].field).toBe('cursor');
      expect((await alice.delete(`/api/notes/${note.id}`)).status).toBe(204);
      const left = await testApp.dataSource.query(
        database === 'postgres'
          ? 'SELECT * FROM note_revisions WHERE note_id = $1'
          : 'SELECT * FROM note_revisions WHERE note_id = ?',
        [note.id],
      );
      expect(left).toEqual([]);
    });
  });

  describe('deleted stays deleted', () => {
    it('answers 410 NOTE_DELETED to its owner, 204 to a second delete, and 404 to anyone else', async () => {
      const { body: note } = await alice.post('/api/notes', { title: 'gone', body: 'bye' });
      expect((await alice.delete(`/api/notes/${note.id}`)).status).toBe(204);
      const before = await rows();
      const path = `/api/notes/${note.id}`;
      const attempts: [string, string, unknown][] = [
        ['GET', path, undefined],
        ['PATCH', path, { title: 'back from the dead' }],
        ['PATCH', path, { title: 'back', base_version: 1 }],
        ['GET', `${path}/revisions`, undefined],
        ['GET', `${path}/revisions/1`, undefined],
        ['POST', `${path}/revisions/1/restore`, undefined],
        ['GET', `${path}/audio`, undefined],
        ['GET', `${path}/audio-clips`, undefined],
        ['POST', '/api/audio-clips', { note_id: note.id, mime_type: 'audio/wav', bytes: 10, duration_ms: 1 }],
      ];
      for (const [method, target, body] of attempts) {
        const mine = await send(alice, method, target, body);
        expect({ method, target, status: mine.status, code: mine.body?.error?.code }).toEqual({
          method,
          target,
          status: 410,
          code: 'NOTE_DELETED',
        });
        const theirs = await send(bob, method, target, body);
        expect({ method, target, status: theirs.status }).toEqual({ method, target, status: 404 });
      }
      expect((await alice.delete(path)).status).toBe(204);
      expect((await send(alice, 'DELETE', path, undefined, { 'if-match': '"7"' })).status).toBe(204);
      expect((await bob.delete(path)).status).toBe(404);
      expect(await rows()).toBe(before);
    });
  });

  describe('the change feed', () => {
    it('gives a full first sync, then exactly what changed: edits, clips that became ready or expired, and every kind of deletion', async () => {
      const carol = await testApp.phone(`carol-${randomUUID()}`);
      const initial = await pullAll(carol);
      expect(initial.changes).toEqual([]);
      const { body: kept } = await carol.post('/api/notes', { title: 'kept' });
      const { body: doomed } = await carol.post('/api/notes', { title: 'doomed' });
      const audio = wav(0.2);
      const ready = await carol.post('/api/audio-clips', {
        note_id: kept.id,
        mime_type: 'audio/wav',
        bytes: audio.length,
        duration_ms: 200,
      });
      const onDoomed = await carol.post('/api/audio-clips', {
        note_id: doomed.id,
        mime_type: 'audio/wav',
        bytes: 10,
        duration_ms: 1,
      });
      const single = await carol.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: 10, duration_ms: 1 });
      const expiring = await carol.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: 10, duration_ms: 1 });

      const full = await pullAll(carol);
      expect(full.changes.map((change) => change.id)).toEqual([
        kept.id,
        doomed.id,
        ready.body.clip.id,
        onDoomed.body.clip.id,
        single.body.clip.id,
        expiring.body.clip.id,
      ]);
      expect(full.changes[0]).toEqual({
        type: 'note',
        id: kept.id,
        deleted: false,
        deleted_at: null,
        version: 1,
        note: expect.objectContaining({ id: kept.id, version: 1 }),
      });
      expect(full.changes[2]).toMatchObject({ type: 'audio_clip', version: null, audio_clip: { status: 'pending' } });
      // Nothing new: the same cursor comes back empty.
      const quiet = await carol.get(`/api/sync/changes?cursor=${full.cursor}`);
      expect(quiet.body).toMatchObject({ changes: [], has_more: false });

      expect((await putBytes(ready.body.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
      expect((await carol.post(`/api/audio-clips/${ready.body.clip.id}/complete`)).status).toBe(200);
      await carol.patch(`/api/notes/${kept.id}`, { body: 'edited' });
      await carol.patch(`/api/notes/${kept.id}`, { body: 'edited twice' });
      expect((await carol.delete(`/api/notes/${doomed.id}`)).status).toBe(204);
      expect((await carol.delete(`/api/audio-clips/${single.body.clip.id}`)).status).toBe(204);
      // The janitor's expiry of a clip nobody uploaded (and its look at a clip, which changes nothing visible).
      await testApp.janitor.runOnce(new Date(Date.now() + 3 * 24 * HOUR));

      const delta = await pullAll(carol, full.cursor, 2);
      const byId = new Map(delta.changes.map((change) => [change.id, change]));
      expect(delta.changes).toHaveLength(byId.size); // each once
      expect(byId.get(ready.body.clip.id)).toMatchObject({ deleted: false, audio_clip: { status: 'ready' } });
      // A clip in the feed is the clip as GET answers it, renditions included.
      expect(byId.get(ready.body.clip.id).audio_clip).toEqual(
        (await carol.get(`/api/audio-clips/${ready.body.clip.id}`)).body,
      );
      expect(byId.get(kept.id)).toMatchObject({ version: 3, note: { body: 'edited twice' } });
      expect(byId.get(doomed.id)).toEqual({
        type: 'note',
        id: doomed.id,
        deleted: true,
        deleted_at: expect.any(String),
        version: 1,
      });
      // The note's cascade took its clip: it has a tombstone too.
      expect(byId.get(onDoomed.body.clip.id)).toMatchObject({ type: 'audio_clip', deleted: true, version: null });
      expect(byId.get(single.body.clip.id)).toMatchObject({ type: 'audio_clip', deleted: true });
      expect(byId.get(expiring.body.clip.id)).toMatchObject({ deleted: false, audio_clip: { status: 'expired' } });
      expect(byId.size).toBe(6);
      expect((await carol.get(`/api/sync/changes?cursor=${delta.cursor}`)).body.changes).toEqual([]);
    });

    it('pages 250 changes made in one millisecond, 100 at a time, each exactly once', async () => {
      const owner = `dave-${randomUUID()}`;
      const dave = await testApp.phone(owner);
      const at = new Date();
      const ids = Array.from({ length: 250 }, () => randomUUID());
      const sql =
        database === 'postgres'
          ? "INSERT INTO notes (id, owner_id, title, body, version, created_at, updated_at) VALUES ($1, $2, 'same ms', '', 1, $3, $3)"
          : "INSERT INTO notes (id, owner_id, title, body, version, created_at, updated_at) VALUES (?, ?, 'same ms', '', 1, ?, ?)";
      const stamp = database === 'postgres' ? at : at.toISOString().replace('T', ' ').replace('Z', '');
      await testApp.dataSource.transaction(async (manager) => {
        for (const id of ids)
          await manager.query(sql, database === 'postgres' ? [id, owner, stamp] : [id, owner, stamp, stamp]);
      });
      const first = await dave.get('/api/sync/changes');
      expect(first.body.changes).toHaveLength(100);
      expect(first.body.has_more).toBe(true);
      const all = await pullAll(dave, undefined, 100);
      expect(all.pages).toBe(3);
      expect(all.changes.map((change) => change.id)).toEqual(ids);
    });

    it.each([
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=1.5', 'limit'],
      ['cursor=never-issued', 'cursor'],
      ['cursor=', 'cursor'],
      [`cursor=${Buffer.from(JSON.stringify(['0'.repeat(32), 1, Date.now(), 'x'])).toString('base64url')}`, 'cursor'],
    ])('refuses %s, naming %s', async (query, field) => {
      const response = await alice.get(`/api/sync/changes?${query}`);
      expect(response.status).toBe(400);
      expect(response.body.error.details.map((detail: { field: string }) => detail.field)).toContain(field);
    });

    it('refuses a cursor that was edited, or issued to someone else', async () => {
      const { cursor } = await pullAll(alice);
      const [epoch, seq, issuedAt, check] = JSON.parse(Buffer.from(cursor, 'base64url').toString());
      const edited = Buffer.from(JSON.stringify([epoch, seq - 1, issuedAt, check])).toString('base64url');
      expect((await alice.get(`/api/sync/changes?cursor=${edited}`)).status).toBe(400);
      const theirs = await bob.get(`/api/sync/changes?cursor=${cursor}`);
      expect(theirs.status).toBe(400);
      expect(JSON.stringify(theirs.body)).not.toContain('alice');
    });

    it('answers 410 SYNC_CURSOR_EXPIRED once a deletion after the cursor is forgotten, or the owner’s sync state was reset', async () => {
      const owner = `erin-${randomUUID()}`;
      const erin = await testApp.phone(owner);
      const { body: note } = await erin.post('/api/notes', { title: 'brief' });
      const old = (await pullAll(erin)).cursor;
      await erin.delete(`/api/notes/${note.id}`);
      const fresh = (await pullAll(erin, old)).cursor;
      const report = await testApp.janitor.runOnce(new Date(Date.now() + 5 * 24 * HOUR));
      expect(report.purgedTombstones).toBeGreaterThanOrEqual(1);
      const expired = await erin.get(`/api/sync/changes?cursor=${old}`);
      expect(expired.status).toBe(410);
      expect(expired.body.error.code).toBe('SYNC_CURSOR_EXPIRED');
      expect((await erin.get(`/api/sync/changes?cursor=${fresh}`)).status).toBe(200);
      // Its id stays refused while the tombstone was kept; now it is forgotten, a full sync starts again.
      expect((await erin.get('/api/sync/changes')).status).toBe(200);
      // Reset (what an account deletion does): every cursor of the old epoch is expired.
      await testApp.dataSource.query(
        database === 'postgres'
          ? 'DELETE FROM sync_owners WHERE owner_id = $1'
          : 'DELETE FROM sync_owners WHERE owner_id = ?',
        [owner],
      );
      expect((await erin.get(`/api/sync/changes?cursor=${fresh}`)).status).toBe(410);
    });

    it('finishes a full sync in pages though deletions made before it were forgotten, and expires a cursor past a later one', async () => {
      const fay = await testApp.phone(`fay-${randomUUID()}`);
      const ids: string[] = [];
      for (let i = 0; i < 5; i += 1) ids.push((await fay.post('/api/notes', { title: `n${i}` })).body.id);
      await fay.delete(`/api/notes/${ids[0]}`);
      expect((await testApp.janitor.runOnce(new Date(Date.now() + 5 * 24 * HOUR))).purgedTombstones).toBeGreaterThan(0);
      // Two a page: every cursor after the first page lies below the forgotten deletion, and none of it is lost.
      const full = await pullAll(fay, undefined, 2);
      expect(full.pages).toBeGreaterThan(1);
      expect(full.changes.map((change) => change.id).sort()).toEqual(ids.slice(1).sort());
      expect((await fay.get(`/api/sync/changes?cursor=${full.cursor}`)).body.changes).toEqual([]);
      // A deletion after that sync, once forgotten, is one the device never saw: its cursor expires.
      await fay.delete(`/api/notes/${ids[1]}`);
      expect((await testApp.janitor.runOnce(new Date(Date.now() + 10 * 24 * HOUR))).purgedTombstones).toBeGreaterThan(
        0,
      );
      const expired = await fay.get(`/api/sync/changes?cursor=${full.cursor}`);
      expect(expired.status).toBe(410);
      expect(expired.body.error.code).toBe('SYNC_CURSOR_EXPIRED');
    });

    it('does not list another owner’s changes', async () => {
      const { body: note } = await alice.post('/api/notes', { title: 'alice secret' });
      await alice.delete(`/api/notes/${note.id}`);
      const theirs = await pullAll(bob);
      expect(JSON.stringify(theirs.changes)).not.toContain(note.id);
    });
  });

  it('brings two offline devices to the server’s state: nothing duplicated, lost, or back from the dead', async () => {
    const owner = `frank-${randomUUID()}`;
    const phones = [await testApp.phone(owner), await testApp.phone(owner)];
    type Replica = { cursor?: string; notes: Map<string, { version: number; title: string; body: string }> };
    const replicas: Replica[] = [{ notes: new Map() }, { notes: new Map() }];
    const pull = async (device: number) => {
      const replica = replicas[device];
      const { changes, cursor } = await pullAll(phones[device], replica.cursor, 7);
      for (const change of changes) {
        if (change.type !== 'note') continue;
        if (change.deleted) replica.notes.delete(change.id);
        else
          replica.notes.set(change.id, { version: change.version, title: change.note.title, body: change.note.body });
      }
      replica.cursor = cursor;
    };
    // Both start from the same notes.
    const shared = [];
    for (let n = 0; n < 6; n += 1)
      shared.push((await phones[0].post('/api/notes', { title: `shared ${n}`, body: 'a\nb\nc\nd\n' })).body.id);
    await pull(0);
    await pull(1);

    // Offline: each device edits, creates under its own ids and deletes; then pushes with retries.
    type Op =
      | { kind: 'create'; id: string; title: string }
      | { kind: 'edit'; id: string; base: number; body: string }
      | { kind: 'delete'; id: string };
    const plans: Op[][] = [
      [
        { kind: 'create', id: randomUUID(), title: 'from phone 0' },
        { kind: 'edit', id: shared[0], base: 1, body: 'A\nb\nc\nd\n' },
        { kind: 'edit', id: shared[1], base: 1, body: 'a\nb\nc\nD0\n' },
        { kind: 'delete', id: shared[2] },
        { kind: 'edit', id: shared[3], base: 1, body: 'a\nB0\nc\nd\n' },
      ],
      [
        { kind: 'create', id: randomUUID(), title: 'from phone 1' },
        { kind: 'edit', id: shared[0], base: 1, body: 'a\nb\nc\nD\n' },
        { kind: 'edit', id: shared[1], base: 1, body: 'a\nb\nc\nD1\n' },
        { kind: 'edit', id: shared[2], base: 1, body: 'edited after the other deleted it\n' },
        { kind: 'delete', id: shared[4] },
        { kind: 'delete', id: shared[3] },
      ],
    ];
    for (const [device, plan] of plans.entries()) {
      for (const op of plan) {
        // Every push is sent twice: a retry after a lost answer.
        for (let attempt = 0; attempt < 2; attempt += 1) {
          if (op.kind === 'create') {
            const created = await phones[device].post('/api/notes', { id: op.id, title: op.title });
            expect(created.status).toBe(201);
          } else if (op.kind === 'delete') {
            expect((await phones[device].delete(`/api/notes/${op.id}`)).status).toBe(204);
          } else {
            const edited = await phones[device].patch(`/api/notes/${op.id}`, { base_version: op.base, body: op.body });
            if (edited.status === 409) {
              // The user resolves the conflict on the phone: keeps both lines, from the current version.
              const { current, conflicts } = edited.body.error;
              expect(conflicts.length).toBeGreaterThan(0);
              const resolved = await phones[device].patch(`/api/notes/${op.id}`, {
                base_version: current.version,
                body: `${current.body}${op.body}`,
              });
              expect(resolved.status).toBe(200);
              break;
            }
            // Deleted on the other device meanwhile: it stays deleted.
            if (edited.status === 410) break;
            expect(edited.status).toBe(200);
          }
        }
      }
    }
    await pull(0);
    await pull(1);
    const server = new Map<string, { version: number; title: string; body: string }>();
    for (const page of [await pullAll(phones[0])])
      for (const change of page.changes)
        if (change.type === 'note' && !change.deleted)
          server.set(change.id, { version: change.version, title: change.note.title, body: change.note.body });
    const listed = await phones[0].get('/api/notes?limit=100');
    expect(listed.body.items).toHaveLength(server.size);
    expect(replicas[0].notes).toEqual(server);
    expect(replicas[1].notes).toEqual(server);
    for (const id of [shared[2], shared[3], shared[4]]) expect(server.has(id)).toBe(false);
    expect(server.get(shared[0])?.body).toBe('A\nb\nc\nD\n');
    expect(server.get(shared[1])?.body).toContain('D1');
    expect([...server.values()].filter((note) => note.title.startsWith('from phone'))).toHaveLength(2);
  });
});
