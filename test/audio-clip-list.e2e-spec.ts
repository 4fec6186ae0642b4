import { wav } from './support/audio';
import { Phone, putBytes } from './support/phone';
import { startTestApp, type DatabaseKind, type TestApp } from './support/test-app';

/** GET /api/audio-clips: how an app back from a crash learns what became of its recordings. */
describe.each(['sqlite', 'postgres'] as DatabaseKind[])('listing your clips on %s', (database) => {
  let testApp: TestApp;
  let alice: Phone;
  let bob: Phone;
  const ids = { ready: '', pending: '', failed: '', bobs: '' };
  let before: { id: string; status: string; updated_at: string }[];

  async function create(phone: Phone, audio: Buffer, mimeType = 'audio/wav') {
    const created = await phone.post('/api/audio-clips', { mime_type: mimeType, bytes: audio.length, duration_ms: 1 });
    expect(created.status).toBe(201);
    return created.body;
  }

  async function upload(phone: Phone, audio: Buffer, mimeType = 'audio/wav') {
    const created = await create(phone, audio, mimeType);
    expect((await putBytes(created.upload.url, audio, { 'Content-Type': mimeType })).status).toBe(200);
    return created;
  }

  beforeAll(async () => {
    testApp = await startTestApp({ database, storage: 'local' });
    alice = await testApp.phone('alice');
    bob = await testApp.phone('bob');
    const ready = await upload(alice, wav(0.2));
    expect((await alice.post(`/api/audio-clips/${ready.clip.id}/complete`)).status).toBe(200);
    const failed = await upload(alice, Buffer.from('a shopping list, not a recording'), 'audio/mpeg');
    expect((await alice.post(`/api/audio-clips/${failed.clip.id}/complete`)).status).toBe(422);
    const pending = await create(alice, wav(0.1));
    ids.ready = ready.clip.id;
    ids.failed = failed.clip.id;
    ids.pending = pending.clip.id;
    ids.bobs = (await upload(bob, wav(0.1))).clip.id;
    before = (await alice.get('/api/audio-clips')).body.items;
  });

  afterAll(async () => {
    await testApp?.close();
  });

  const idsOf = (items: { id: string }[]) => items.map((item) => item.id);

  it('lists only the caller’s clips, newest first, in every state', async () => {
    const all = await alice.get('/api/audio-clips');
    expect(all.status).toBe(200);
    expect(idsOf(all.body.items)).toEqual([ids.pending, ids.failed, ids.ready]);
    expect(all.body.next_cursor).toBeNull();
    expect(all.body.items.find((clip: { id: string }) => clip.id === ids.ready)).toMatchObject({
      status: 'ready',
      completed_by: 'client',
    });
    expect(all.body.items.find((clip: { id: string }) => clip.id === ids.pending).completed_by).toBeNull();
    expect(idsOf((await bob.get('/api/audio-clips')).body.items)).toEqual([ids.bobs]);
    expect((await (await testApp.phone('carol')).get('/api/audio-clips')).body).toEqual({
      items: [],
      next_cursor: null,
    });
  });

  it('narrows to one state or several', async () => {
    expect(idsOf((await alice.get('/api/audio-clips?status=ready')).body.items)).toEqual([ids.ready]);
    expect(idsOf((await alice.get('/api/audio-clips?status=failed,ready')).body.items)).toEqual([
      ids.failed,
      ids.ready,
    ]);
    expect(idsOf((await alice.get('/api/audio-clips?status=ready&status=failed')).body.items)).toEqual([
      ids.failed,
      ids.ready,
    ]);
    expect((await alice.get('/api/audio-clips?status=expired')).body.items).toEqual([]);
  });

  it('narrows to the clips changed since a moment, that moment included', async () => {
    const failed = before.find((clip) => clip.id === ids.failed)!;
    const since = await alice.get(`/api/audio-clips?updated_since=${encodeURIComponent(failed.updated_at)}`);
    expect(since.status).toBe(200);
    for (const clip of since.body.items)
      expect(Date.parse(clip.updated_at)).toBeGreaterThanOrEqual(Date.parse(failed.updated_at));
    expect(idsOf(since.body.items)).toContain(ids.failed);
    expect(idsOf(since.body.items)).not.toContain(ids.ready);

    // The same instant in another zone is the same filter.
    const offset = new Date(Date.parse(failed.updated_at) + 2 * 3600_000).toISOString().replace('Z', '+02:00');
    expect(idsOf((await alice.get(`/api/audio-clips?updated_since=${encodeURIComponent(offset)}`)).body.items)).toEqual(
      idsOf(since.body.items),
    );
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect((await alice.get(`/api/audio-clips?updated_since=${future}&status=ready`)).body.items).toEqual([]);
  });

  it('pages with limit and cursor, keeping the filter, without gaps or repeats', async () => {
    for (let i = 0; i < 4; i += 1) await create(alice, wav(0.05));
    const all = idsOf((await alice.get('/api/audio-clips?status=pending&limit=100')).body.items);
    expect(all).toHaveLength(5);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { items: { id: string; status: string }[]; next_cursor: string | null } } =
        await alice.get(`/api/audio-clips?status=pending&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      for (const clip of page.body.items) expect(clip.status).toBe('pending');
      seen.push(...idsOf(page.body.items));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(all);
  });

  it.each([
    ['status=bogus', 'status'],
    ['status=', 'status'],
    ['status=ready,,failed', 'status'],
    ['status=READY', 'status'],
    ['updated_since=yesterday', 'updated_since'],
    ['updated_since=2026-11-27', 'updated_since'],
    ['updated_since=2026-11-27T09:30:00', 'updated_since'],
    ['updated_since=2026-02-30T09:30:00Z', 'updated_since'],
    ['updated_since=2026-11-27T25:30:00Z', 'updated_since'],
    ['updated_since=1764235800', 'updated_since'],
    ['updated_since=2026-11-27T09:30:00Z&updated_since=2026-11-28T09:30:00Z', 'updated_since'],
    ['cursor=not-a-cursor', 'cursor'],
    ['limit=0', 'limit'],
    ['limit=101', 'limit'],
    ['limit=ten', 'limit'],
    ['owner_id=bob', 'owner_id'],
  ])('answers 400 VALIDATION_FAILED naming the field to ?%s', async (query, field) => {
    const response = await alice.get(`/api/audio-clips?${query}`);
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/application\/json/);
    expect(response.body.error.code).toBe('VALIDATION_FAILED');
    expect(response.body.error.details.map((detail: { field: string }) => detail.field)).toContain(field);
    expect(JSON.stringify(response.body)).not.toMatch(/at .+\.ts:\d+/);
  });
});
