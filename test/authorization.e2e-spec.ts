import { createHash, randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { describeEachWithLegs } from './harness/legs';
import { RGW_LEG } from './harness/rgw';
import { ExportWorker } from '../src/exports/export-worker.service';
import { wav } from './support/audio';
import { download, Phone, putBytes } from './support/phone';
import { startTestApp, type DatabaseKind, type StorageKind, type TestApp } from './support/test-app';

type TokenKind = 'none' | 'malformed' | 'expired' | 'alg none' | 'another key' | 'not yet valid';

interface Operation {
  method: string;
  path: string;
  operationId: string;
}

const MATRIX: [DatabaseKind, StorageKind][] = [
  ['sqlite', 's3'],
  ['postgres', 'local'],
  ['postgres', 'rgw'],
];

describeEachWithLegs(MATRIX, [RGW_LEG])('who may do what, on %s + %s storage', (database, storage) => {
  let testApp: TestApp;
  let alice: Phone;
  let bob: Phone;
  let operations: Operation[];
  const ids = { noteId: '', readyClipId: '', pendingClipId: '', multipartClipId: '', exportId: '' };
  const storageKeys: string[] = [];
  const seen: string[] = [];

  beforeAll(async () => {
    testApp = await startTestApp({ database, storage, env: { MULTIPART_THRESHOLD_BYTES: String(5 * 1024 * 1024) } });
    alice = await testApp.phone('alice');
    bob = await testApp.phone('bob');

    ids.noteId = (await alice.post('/api/notes', { title: 'alice private' })).body.id;
    const audio = wav(0.2);
    const ready = await alice.post('/api/audio-clips', {
      note_id: ids.noteId,
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 10,
    });
    expect((await putBytes(ready.body.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await alice.post(`/api/audio-clips/${ready.body.clip.id}/complete`)).status).toBe(200);
    const pending = await alice.post('/api/audio-clips', {
      note_id: ids.noteId,
      mime_type: 'audio/ogg',
      bytes: 99,
      duration_ms: 1,
    });
    const multipart = await alice.post('/api/audio-clips', {
      note_id: ids.noteId,
      mime_type: 'audio/wav',
      bytes: 6 * 1024 * 1024,
      duration_ms: 1,
    });
    expect(multipart.body.upload.mode).toBe('multipart');
    ids.readyClipId = ready.body.clip.id;
    ids.pendingClipId = pending.body.clip.id;
    ids.multipartClipId = multipart.body.clip.id;
    storageKeys.push(ready.body.clip.storage_key, ready.body.upload.storage_key, pending.body.upload.storage_key);
    // An export of alice's, built before the snapshots are taken.
    ids.exportId = (await alice.post('/api/me/exports')).body.id;
    await testApp.app.get(ExportWorker).runOnce();

    const spec = (await new Phone(testApp.baseUrl).get('/api/docs-json')).body;
    operations = Object.entries<Record<string, { operationId: string }>>(spec.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({
        method: method.toUpperCase(),
        path,
        operationId: operation.operationId,
      })),
    );
  }, 60_000); // a whole app and a ready clip: generous on a loaded machine

  afterAll(async () => {
    if (process.env.PRINT_AUTH_MATRIX === '1') console.log(`${database} + ${storage}\n${seen.join('\n')}`);
    await testApp?.close();
  });

  /** Everything that could change: every row of both tables and the bytes of every stored object. */
  async function snapshot(): Promise<string> {
    const notes = await testApp.dataSource.query('SELECT * FROM notes ORDER BY id');
    const clips = await testApp.dataSource.query('SELECT * FROM audio_clips ORDER BY id');
    const deletions = await testApp.dataSource.query('SELECT * FROM storage_deletions ORDER BY storage_key');
    const idempotencyKeys = await testApp.dataSource.query(
      'SELECT * FROM idempotency_keys ORDER BY owner_id, endpoint, idempotency_key',
    );
    const sync = await Promise.all(
      [
        'note_revisions ORDER BY note_id, version',
        'sync_tombstones ORDER BY item_type, id',
        'sync_owners ORDER BY owner_id',
      ].map((table) => testApp.dataSource.query(`SELECT * FROM ${table}`)),
    );
    const exportRows = await testApp.dataSource.query('SELECT * FROM exports ORDER BY id');
    const objects = await Promise.all(
      storageKeys.map(async (key) => JSON.stringify(await testApp.storage.inspect(key))),
    );
    // Every key stored (s3rver cannot list; there the known keys above have to do).
    const files = storage === 's3' ? [] : await testApp.storedKeys();
    return createHash('sha256')
      .update(JSON.stringify({ notes, clips, deletions, idempotencyKeys, sync, objects, files, exportRows }))
      .digest('hex');
  }

  function concretePath(path: string, clipId = ids.readyClipId): string {
    return path
      .replace('{note_id}', ids.noteId)
      .replace('{clip_id}', clipId)
      .replace('{version}', '1')
      .replace('{export_id}', ids.exportId);
  }

  function bodyFor(operation: Operation): unknown {
    if (operation.operationId === 'createAudioClip')
      return { note_id: ids.noteId, mime_type: 'audio/m4a', bytes: 10, duration_ms: 1 };
    if (operation.operationId === 'createNote') return { title: 'intruder' };
    if (operation.operationId === 'createAudioClipPartUrls') return { part_numbers: [1] };
    if (operation.operationId === 'updateNote') return { title: 'taken over' };
    return undefined;
  }

  async function tokenOf(kind: TokenKind): Promise<string | undefined> {
    const secret = new TextEncoder().encode('a-completely-different-secret-of-32+chars');
    const now = Math.floor(Date.now() / 1000);
    switch (kind) {
      case 'none':
        return undefined;
      case 'malformed':
        return 'not-a-jwt';
      case 'expired':
        return testApp.tokenFor('alice', { exp: now - 60, iat: now - 3600 });
      case 'not yet valid':
        return testApp.tokenFor('alice', { nbf: now + 3600 });
      case 'alg none': {
        const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
        return `${part({ alg: 'none', typ: 'JWT' })}.${part({ sub: 'alice', exp: now + 600 })}.`;
      }
      case 'another key':
        return new SignJWT({})
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('alice')
          .setExpirationTime('10m')
          .sign(secret);
    }
  }

  it('reads the operations from the OpenAPI spec', () => {
    expect(operations.length).toBeGreaterThanOrEqual(13);
  });

  it.each<TokenKind>(['none', 'malformed', 'expired', 'not yet valid', 'alg none', 'another key'])(
    'answers 401 to every operation with %s token, and changes nothing',
    async (kind) => {
      const token = await tokenOf(kind);
      const phone = new Phone(testApp.baseUrl, token);
      const before = await snapshot();
      for (const operation of operations) {
        const response = await phone.raw(
          operation.method,
          concretePath(operation.path),
          bodyFor(operation) === undefined ? undefined : JSON.stringify(bodyFor(operation)),
          bodyFor(operation) === undefined ? {} : { 'content-type': 'application/json' },
        );
        seen.push(`${operation.method} ${operation.path} [${kind}] → ${response.status}`);
        // The probes are public: no token needed, and a bad one does not matter.
        if (operation.operationId === 'getLiveness' || operation.operationId === 'getReadiness') {
          expect(response.status).toBe(200);
          continue;
        }
        expect({ operation: operation.operationId, status: response.status, code: response.body?.error?.code }).toEqual(
          {
            operation: operation.operationId,
            status: 401,
            code: 'UNAUTHENTICATED',
          },
        );
        expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
      expect(await snapshot()).toBe(before);
    },
  );

  it("answers 404 to every operation on another user's note or clip, exactly as for a missing one, and changes nothing", async () => {
    const before = await snapshot();
    for (const operation of operations.filter((op) => op.path.includes('{'))) {
      for (const clipId of [ids.readyClipId, ids.pendingClipId, ids.multipartClipId]) {
        const body = bodyFor(operation);
        const path = concretePath(operation.path, clipId);
        const theirs = await bob.raw(
          operation.method,
          path,
          body === undefined ? undefined : JSON.stringify(body),
          body === undefined ? {} : { 'content-type': 'application/json' },
        );
        seen.push(`${operation.method} ${operation.path} [bob on alice's] → ${theirs.status}`);
        expect({ operation: operation.operationId, status: theirs.status }).toEqual({
          operation: operation.operationId,
          status: 404,
        });

        const missingPath = path
          .replace(ids.exportId, '00000000-0000-4000-8000-000000000002')
          .replace(ids.noteId, '00000000-0000-4000-8000-000000000000')
          .replace(clipId, '00000000-0000-4000-8000-000000000001');
        const missing = await bob.raw(
          operation.method,
          missingPath,
          body === undefined ? undefined : JSON.stringify(body),
          body === undefined ? {} : { 'content-type': 'application/json' },
        );
        expect(theirs.body.error.code).toBe(missing.body.error.code);
        expect(theirs.body.error.message.replace(/[0-9a-f-]{36}/g, 'ID')).toBe(
          missing.body.error.message.replace(/[0-9a-f-]{36}/g, 'ID'),
        );
      }
    }
    expect(await snapshot()).toBe(before);
  });

  it("does not let anyone attach a clip to another user's note", async () => {
    const before = await snapshot();
    const response = await bob.post('/api/audio-clips', {
      note_id: ids.noteId,
      mime_type: 'audio/m4a',
      bytes: 10,
      duration_ms: 1,
    });
    seen.push(`POST /api/audio-clips [bob, alice's note_id] → ${response.status}`);
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('NOTE_NOT_FOUND');
    expect(await snapshot()).toBe(before);
  });

  it('shows each user only their own notes in lists', async () => {
    const bobsNote = await bob.post('/api/notes', { title: 'bob only' });
    expect(bobsNote.status).toBe(201);
    const bobsList = await bob.get('/api/notes');
    expect(bobsList.body.items.map((note: { id: string }) => note.id)).toEqual([bobsNote.body.id]);
    const alicesList = await alice.get('/api/notes?limit=100');
    expect(alicesList.body.items.map((note: { id: string }) => note.id)).not.toContain(bobsNote.body.id);
    expect(alicesList.body.items.map((note: { id: string }) => note.id)).toContain(ids.noteId);
    expect((await alice.get(`/api/notes/${bobsNote.body.id}`)).status).toBe(404);
  });

  it('shows each user only their own items in every list of the spec, whatever the filters', async () => {
    const lists = operations.filter(
      (operation) =>
        operation.method === 'GET' && !operation.path.includes('{') && !operation.path.startsWith('/api/health'),
    );
    expect(lists.map((operation) => operation.operationId)).toEqual(
      expect.arrayContaining(['listNotes', 'listAudioClips']),
    );
    const alicesIds = [ids.noteId, ids.readyClipId, ids.pendingClipId];
    const before = await snapshot();
    for (const operation of lists) {
      // GET /api/me shows an owner's figures, not a list of items: hers count her things, bob's only his.
      if (operation.operationId === 'getMe') {
        const mine = await alice.get(operation.path);
        expect(mine.body).toMatchObject({ user_id: 'alice', notes: 1, audio_clips: 3 });
        expect(mine.body.used_bytes).toBeGreaterThan(0);
        const theirs = await bob.get(operation.path);
        seen.push(`GET ${operation.path} [bob] → ${theirs.status}`);
        const bobsNotes = (await bob.get('/api/notes?limit=100')).body.items.length;
        expect(theirs.body).toMatchObject({ user_id: 'bob', notes: bobsNotes, audio_clips: 0, used_bytes: 0 });
        continue;
      }
      for (const query of ['', '?limit=100', '?status=ready,pending', '?updated_since=2000-01-01T00:00:00Z']) {
        const mine = await alice.get(`${operation.path}${query}`);
        // A list that does not take this filter refuses it; one that does must not show alice's items to bob.
        if (mine.status === 400) continue;
        expect({ operation: operation.operationId, query, status: mine.status }).toEqual({
          operation: operation.operationId,
          query,
          status: 200,
        });
        // Not vacuous: unfiltered, the owner sees her own items in it.
        if (query === '') expect(alicesIds.some((id) => JSON.stringify(mine.body).includes(id))).toBe(true);
        const theirs = await bob.get(`${operation.path}${query}`);
        seen.push(`GET ${operation.path}${query} [bob] → ${theirs.status}`);
        expect(theirs.status).toBe(200);
        for (const id of alicesIds) expect(JSON.stringify(theirs.body)).not.toContain(id);
      }
    }
    expect(await snapshot()).toBe(before);
  });

  it("answers 404 to playback in every format of another user's clip or note, as for a missing one, and changes nothing", async () => {
    const before = await snapshot();
    const missing = '00000000-0000-4000-8000-000000000001';
    for (const clipId of [ids.readyClipId, ids.pendingClipId, ids.multipartClipId]) {
      for (const query of ['?format=m4a', '']) {
        const theirs = await bob.get(`/api/audio-clips/${clipId}/playback${query}`);
        const none = await bob.get(`/api/audio-clips/${missing}/playback${query}`);
        seen.push(`GET /api/audio-clips/{clip_id}/playback${query} [bob on alice's] → ${theirs.status}`);
        expect(theirs.status).toBe(404);
        expect(theirs.body.error.code).toBe(none.body.error.code);
        expect(theirs.body.error.message.replace(clipId, 'ID')).toBe(none.body.error.message.replace(missing, 'ID'));
      }
    }
    const noteAudio = await bob.get(`/api/notes/${ids.noteId}/audio?format=m4a`);
    expect(noteAudio.status).toBe(404);
    expect(noteAudio.body.error.code).toBe('NOTE_NOT_FOUND');
    // The owner reaches it: ready, so m4a answers a URL or one of the rendition's 409s (never another owner's 404).
    const mine = await alice.get(`/api/audio-clips/${ids.readyClipId}/playback?format=m4a`);
    expect([200, 409]).toContain(mine.status);
    if (mine.status === 409) expect(mine.body.error.code).toMatch(/^RENDITION_/);
    expect(await snapshot()).toBe(before);
  });

  it("leaks nothing of another user's note through ETags, revisions, deletions or the change feed", async () => {
    const before = await snapshot();
    const path = `/api/notes/${ids.noteId}`;
    for (const tag of ['"1"', '*', 'W/"1"']) {
      const conditional = await bob.get(path, { 'if-none-match': tag });
      expect(conditional.status).toBe(404);
      expect(conditional.headers.get('etag')).toBeNull();
    }
    for (const tag of ['"1"', '"2"', '*']) {
      const guarded = await bob.raw('PATCH', path, JSON.stringify({ title: 'x' }), {
        'content-type': 'application/json',
        'if-match': tag,
      });
      expect(guarded.status).toBe(404);
      expect(JSON.stringify(guarded.body)).not.toContain('alice private');
      expect((await bob.raw('DELETE', path, undefined, { 'if-match': tag })).status).toBe(404);
    }
    const merge = await bob.patch(path, { title: 'x', base_version: 1 });
    expect(merge.status).toBe(404);
    expect(JSON.stringify(merge.body)).not.toContain('alice private');
    expect((await bob.get(`${path}/revisions`)).status).toBe(404);
    expect((await bob.get(`${path}/revisions/1`)).status).toBe(404);
    expect((await bob.post(`${path}/revisions/1/restore`)).status).toBe(404);
    // Alice's id is taken for everyone, with the same answer as an id nobody has any more.
    const taken = await bob.post('/api/notes', { id: ids.noteId, title: 'alice private' });
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe('NOTE_ID_CONFLICT');
    expect(await snapshot()).toBe(before);

    // A note alice deletes is gone for her (410) and for bob as any missing note (404), and never in his feed.
    const gone = (await alice.post('/api/notes', { title: 'alice deleted' })).body.id;
    expect((await alice.delete(`/api/notes/${gone}`)).status).toBe(204);
    expect((await alice.get(`/api/notes/${gone}`)).status).toBe(410);
    for (const method of ['GET', 'DELETE'])
      expect((await bob.raw(method, `/api/notes/${gone}`, undefined, {})).status).toBe(404);
    let cursor: string | undefined;
    for (;;) {
      const page = await bob.get(`/api/sync/changes${cursor === undefined ? '' : `?cursor=${cursor}`}`);
      expect(page.status).toBe(200);
      for (const id of [gone, ids.noteId, ids.readyClipId, ids.pendingClipId])
        expect(JSON.stringify(page.body)).not.toContain(id);
      cursor = page.body.next_cursor;
      if (!page.body.has_more) break;
    }
    // And alice's cursor means nothing to bob.
    const alicesCursor = (await alice.get('/api/sync/changes')).body.next_cursor;
    expect((await bob.get(`/api/sync/changes?cursor=${alicesCursor}`)).status).toBe(400);
  });

  it('keeps serving the owner everything', async () => {
    expect((await alice.get(`/api/notes/${ids.noteId}`)).status).toBe(200);
    const playback = await alice.get(`/api/audio-clips/${ids.readyClipId}/playback`);
    expect(playback.status).toBe(200);
    expect((await download(playback.body.url)).status).toBe(200);
    expect((await alice.get(`/api/notes/${ids.noteId}/audio`)).body.clip.id).toBe(ids.readyClipId);
    const exported = await alice.get(`/api/me/exports/${ids.exportId}`);
    expect(exported.body.status).toBe('ready');
    expect((await download(exported.body.url)).status).toBe(200);
  });
});

describe('signed storage URLs cannot be replayed elsewhere', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it("refuses one user's URL signature on another key, for another method, type or length", async () => {
    const alice = await testApp.phone('alice');
    const bob = await testApp.phone('bob');
    const audio = randomBytes(64);
    const mine = await alice.post('/api/audio-clips', { mime_type: 'audio/m4a', bytes: audio.length, duration_ms: 1 });
    const theirs = await bob.post('/api/audio-clips', { mime_type: 'audio/m4a', bytes: audio.length, duration_ms: 1 });
    const url = new URL(mine.body.upload.url);

    const onOtherKey = new URL(url);
    onOtherKey.pathname = new URL(theirs.body.upload.url).pathname;
    expect((await putBytes(onOtherKey.toString(), audio, { 'Content-Type': 'audio/m4a' })).status).toBe(403);

    const otherType = new URL(url);
    otherType.searchParams.set('type', 'audio/mpeg');
    expect((await putBytes(otherType.toString(), audio, { 'Content-Type': 'audio/mpeg' })).status).toBe(403);

    const otherLength = new URL(url);
    otherLength.searchParams.set('length', '128');
    expect(
      (await putBytes(otherLength.toString(), Buffer.concat([audio, audio]), { 'Content-Type': 'audio/m4a' })).status,
    ).toBe(403);

    expect((await download(url.toString())).status).toBe(403); // a PUT grant is not a GET grant
    expect(await testApp.storage.inspect(theirs.body.clip.storage_key)).toBeNull();
    expect(await testApp.localFiles()).toEqual([]);
  });

  it('gives storage keys no guessable sequence', async () => {
    const alice = await testApp.phone('alice');
    const keys = [];
    for (let i = 0; i < 3; i += 1)
      keys.push(
        (await alice.post('/api/audio-clips', { mime_type: 'audio/aac', bytes: 5, duration_ms: 1 })).body.clip
          .storage_key,
      );
    for (const key of keys)
      expect(key).toMatch(
        new RegExp(
          `^${testApp.keyPrefix}/audio-clips/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\\.aac$`,
        ),
      );
    expect(new Set(keys).size).toBe(3);
  });
});
