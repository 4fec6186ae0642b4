import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExportWorker } from '../src/exports/export-worker.service';
import { testS3Env } from './harness/databases';
import { describeEachWithLegs } from './harness/legs';
import { RGW_LEG } from './harness/rgw';
import { wav } from './support/audio';
import { cuttableStore, type CuttableStore } from './support/cuttable-store';
import { download, putBytes, type Phone } from './support/phone';
import { startTestApp, type DatabaseKind, type StorageKind, type TestApp } from './support/test-app';
import { unzip, type ZipEntry } from './support/unzip';

const MIB = 1024 * 1024;
const FIXTURES = join(__dirname, 'fixtures', 'audio');
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Recordings of several types, from the fixtures, with the type each is declared as. */
const RECORDINGS = [
  { file: 'tone-2s-faststart.m4a', mimeType: 'audio/mp4', extension: 'm4a' },
  { file: 'tone-2s-no-id3.mp3', mimeType: 'audio/mpeg', extension: 'mp3' },
  { file: 'tone-2s-vorbis.ogg', mimeType: 'audio/ogg', extension: 'ogg' },
  { file: 'tone-2s.webm', mimeType: 'audio/webm', extension: 'webm' },
  { file: 'tone-1s.wav', mimeType: 'audio/wav', extension: 'wav' },
];

interface Uploaded {
  id: string;
  sha256: string;
  noteId: string | null;
}

/** A ready clip of these bytes: one PUT, or parts when the server plans a multipart upload. */
async function readyClip(phone: Phone, bytes: Buffer, mimeType: string, noteId: string | null): Promise<Uploaded> {
  const created = await phone.post('/api/audio-clips', {
    mime_type: mimeType,
    bytes: bytes.length,
    duration_ms: 1000,
    ...(noteId ? { note_id: noteId } : {}),
  });
  expect(created.status).toBe(201);
  const { clip, upload } = created.body;
  if (upload.mode === 'multipart') {
    const numbers = Array.from({ length: upload.part_count }, (_, index) => index + 1);
    const parts = (await phone.post(`/api/audio-clips/${clip.id}/parts`, { part_numbers: numbers })).body.parts;
    for (const part of parts) {
      const start = (part.part_number - 1) * upload.part_size;
      const slice = bytes.subarray(start, start + upload.part_size);
      expect((await putBytes(part.url, slice, part.headers)).status).toBe(200);
    }
  } else {
    expect((await putBytes(upload.url, bytes, upload.headers)).status).toBe(200);
  }
  const completed = await phone.post(`/api/audio-clips/${clip.id}/complete`);
  expect(completed.status).toBe(200);
  return { id: clip.id, sha256: sha256(bytes), noteId };
}

/** Polls the export until it is no longer pending or running. */
async function settled(phone: Phone, id: string, seconds = 60): Promise<any> {
  for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline;) {
    const answer = await phone.get(`/api/me/exports/${id}`);
    expect(answer.status).toBe(200);
    expect(['pending', 'running', 'ready']).toContain(answer.body.status);
    if (answer.body.status === 'ready') return answer.body;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`export ${id} not ready within ${seconds} s`);
}

async function archiveOf(exported: {
  url: string;
}): Promise<{ entries: ZipEntry[]; disposition: string | null; size: number }> {
  const fetched = await download(exported.url);
  expect(fetched.status).toBe(200);
  return {
    entries: await unzip(fetched.bytes),
    disposition: fetched.headers.get('content-disposition'),
    size: fetched.bytes.length,
  };
}

/** What every export must hold for the owner: each note's text, each ready recording's bytes, nothing of anyone else. */
function expectArchiveHolds(
  entries: ZipEntry[],
  owner: { userId: string; notes: { id: string; title: string; body: string }[]; clips: Uploaded[] },
  strangers: { texts: string[]; clips: Uploaded[] },
): void {
  const byName = new Map(entries.map((entry) => [entry.name, entry]));
  const index = JSON.parse(byName.get('notes.json')!.bytes.toString('utf8'));
  expect(index.user_id).toBe(owner.userId);
  expect(index.notes.map((note: { id: string }) => note.id).sort()).toEqual(owner.notes.map((note) => note.id).sort());
  for (const note of owner.notes) {
    const listed = index.notes.find((entry: { id: string }) => entry.id === note.id);
    expect(listed.title).toBe(note.title);
    expect(listed.file).toMatch(/^notes\/[^/]+\.md$/);
    const markdown = byName.get(listed.file)!.bytes.toString('utf8');
    expect(markdown.startsWith(`# ${note.title}\n`)).toBe(true);
    expect(markdown).toContain(`\n${note.body}\n`);
  }
  for (const clip of owner.clips) {
    const listed = index.audio_clips.find((entry: { id: string }) => entry.id === clip.id);
    expect(listed.status).toBe('ready');
    expect(listed.note_id).toBe(clip.noteId);
    expect({ clip: clip.id, sha256: byName.get(listed.file)?.sha256 }).toEqual({ clip: clip.id, sha256: clip.sha256 });
    // Linked from its note's Markdown.
    if (clip.noteId) {
      const noteFile = index.notes.find((entry: { id: string }) => entry.id === clip.noteId).file;
      expect(byName.get(noteFile)!.bytes.toString('utf8')).toContain(`(<../${listed.file}>)`);
    }
  }
  // Nothing else: notes.json, one Markdown file per note, one file per ready recording.
  expect(entries.length).toBe(1 + owner.notes.length + owner.clips.length);
  const hashes = new Set(entries.map((entry) => entry.sha256));
  for (const clip of strangers.clips) expect(hashes.has(clip.sha256)).toBe(false);
  const text = entries.map((entry) => entry.bytes.toString('latin1')).join('\n');
  for (const stranger of strangers.texts) expect(text).not.toContain(stranger);
}

describeEachWithLegs<[DatabaseKind, StorageKind]>(
  [
    ['sqlite', 'local'],
    ['postgres', 's3'],
    ['postgres', 'rgw'],
  ],
  [RGW_LEG],
)('exports on %s + %s storage', (database, storage) => {
  let testApp: TestApp;
  let alice: Phone;
  let bob: Phone;
  const aliceNotes: { id: string; title: string; body: string }[] = [];
  const aliceClips: Uploaded[] = [];
  const bobClips: Uploaded[] = [];
  let aliceExport: any;

  beforeAll(async () => {
    testApp = await startTestApp({
      database,
      storage,
      env: { MULTIPART_THRESHOLD_BYTES: String(5 * MIB), EXPORTS_PER_DAY: '3', EXPORT_EXPIRES_SECONDS: '3600' },
    });
    alice = await testApp.phone('alice');
    bob = await testApp.phone('bob');
    for (const [title, body] of [
      ['Groceries / Monday – Ünïcödé 日本語 🎙️', 'milk\neggs\n\n- [ ] bread ✓'],
      ['../../etc/passwd', 'not a path'],
      ['Empty', ''],
    ]) {
      const note = (await alice.post('/api/notes', { title, body })).body;
      aliceNotes.push({ id: note.id, title, body });
    }
    for (const [index, recording] of RECORDINGS.entries()) {
      const bytes = readFileSync(join(FIXTURES, recording.file));
      aliceClips.push(await readyClip(alice, bytes, recording.mimeType, index < 3 ? aliceNotes[index % 2].id : null));
    }
    // Over the multipart threshold (s3rver has no multipart uploads; RGW and the local store do).
    if (storage !== 's3')
      aliceClips.push(await readyClip(alice, wav(600, { noise: true }), 'audio/wav', aliceNotes[0].id));
    // A pending clip: in notes.json, not in the archive.
    await alice.post('/api/audio-clips', {
      mime_type: 'audio/wav',
      bytes: 100,
      duration_ms: 1,
      note_id: aliceNotes[2].id,
    });

    const bobsNote = (await bob.post('/api/notes', { title: 'bob secret title', body: 'bob secret body' })).body;
    bobClips.push(await readyClip(bob, wav(0.5, { noise: true }), 'audio/wav', bobsNote.id));
  }, 180_000);

  afterAll(async () => {
    await testApp?.close();
  });

  it('builds each owner’s archive of every note and recording, two owners at once, nothing of the other’s', async () => {
    const usageBefore = (await alice.get('/api/me')).body;
    const [mine, theirs] = await Promise.all([alice.post('/api/me/exports'), bob.post('/api/me/exports')]);
    expect(mine.status).toBe(202);
    expect(theirs.status).toBe(202);
    expect(mine.body).toMatchObject({
      status: expect.stringMatching(/^(pending|running)$/),
      url: null,
      expires_at: null,
    });
    expect(mine.body.id).not.toBe(theirs.body.id);
    // A second request while one is under way answers that one.
    const again = await alice.post('/api/me/exports');
    if (['pending', 'running'].includes(again.body.status)) expect(again.body.id).toBe(mine.body.id);

    aliceExport = await settled(alice, mine.body.id);
    const bobsExport = await settled(bob, theirs.body.id);
    expect(aliceExport).toMatchObject({ id: mine.body.id, status: 'ready', url: expect.any(String) });
    expect(Date.parse(aliceExport.expires_at) - Date.now()).toBeGreaterThan(3500_000);
    expect(Date.parse(aliceExport.url_expires_at)).toBeLessThanOrEqual(Date.parse(aliceExport.expires_at));

    const archive = await archiveOf(aliceExport);
    expect(archive.size).toBe(aliceExport.bytes);
    expect(archive.disposition).toMatch(/^attachment; filename="advanced-notes-export-\d{4}-\d{2}-\d{2}\.zip"/);
    expectArchiveHolds(
      archive.entries,
      { userId: 'alice', notes: aliceNotes, clips: aliceClips },
      { texts: ['bob secret'], clips: bobClips },
    );
    const names = archive.entries.map((entry) => entry.name);
    for (const recording of RECORDINGS)
      expect(names.some((name) => name.endsWith(`.${recording.extension}`))).toBe(true);
    // The title's "/" and "../" make no folder: every note is a file right under notes/.
    expect(names.filter((name) => name.startsWith('notes/')).every((name) => name.split('/').length === 2)).toBe(true);
    expect(names).toContain(`notes/Groceries _ Monday – Ünïcödé 日本語 🎙️ (${aliceNotes[0].id.slice(0, 8)}).md`);

    const bobs = await archiveOf(bobsExport);
    expect(bobs.entries.map((entry) => entry.sha256)).toContain(bobClips[0].sha256);
    expect(bobs.entries.some((entry) => aliceClips.some((clip) => clip.sha256 === entry.sha256))).toBe(false);

    // Under <prefix>/exports/, with no owner in the key.
    const [row] = await testApp.dataSource.query(
      `SELECT storage_key FROM exports WHERE id = ${database === 'postgres' ? '$1' : '?'}`,
      [mine.body.id],
    );
    expect(row.storage_key).toMatch(new RegExp(`^${testApp.keyPrefix}/exports/[0-9a-f-]{36}\\.zip$`));
    expect(row.storage_key).not.toContain('alice');
    // Exports do not count toward the quota.
    expect((await alice.get('/api/me')).body).toEqual(usageBefore);
  }, 180_000);

  it('answers 404 for an export that is not the caller’s, exactly as for none', async () => {
    const theirs = await bob.get(`/api/me/exports/${aliceExport.id}`);
    const none = await bob.get('/api/me/exports/00000000-0000-4000-8000-000000000000');
    expect([theirs.status, theirs.body.error.code]).toEqual([404, 'EXPORT_NOT_FOUND']);
    expect([none.status, none.body.error.code]).toEqual([404, 'EXPORT_NOT_FOUND']);
  });

  it('caps the exports of a day (429 with Retry-After)', async () => {
    // Alice asked once; two more fit in EXPORTS_PER_DAY=3.
    for (let i = 0; i < 2; i += 1) {
      const next = await alice.post('/api/me/exports');
      expect(next.status).toBe(202);
      await settled(alice, next.body.id);
    }
    const capped = await alice.post('/api/me/exports');
    expect(capped.status).toBe(429);
    expect(capped.body.error.code).toBe('EXPORTS_PER_DAY_EXCEEDED');
    expect(Number(capped.headers.get('retry-after'))).toBeGreaterThan(80_000);
  }, 180_000);

  it('expires: 410 with its own code, and the janitor deletes the archive', async () => {
    const [row] = await testApp.dataSource.query(
      `SELECT storage_key FROM exports WHERE id = ${database === 'postgres' ? '$1' : '?'}`,
      [aliceExport.id],
    );
    expect(await testApp.storage.inspect(row.storage_key)).not.toBeNull();
    await testApp.janitor.runOnce(new Date(Date.now() + 2 * 60 * 60_000));
    const gone = await alice.get(`/api/me/exports/${aliceExport.id}`);
    expect([gone.status, gone.body.error.code]).toEqual([410, 'EXPORT_EXPIRED']);
    expect(await testApp.storage.inspect(row.storage_key)).toBeNull();
  });

  it('goes with the account: a deleted account’s archives are deleted', async () => {
    const fresh = (await bob.post('/api/me/exports')).body;
    await settled(bob, fresh.id);
    const [row] = await testApp.dataSource.query(
      `SELECT storage_key FROM exports WHERE id = ${database === 'postgres' ? '$1' : '?'}`,
      [fresh.id],
    );
    expect(await testApp.storage.inspect(row.storage_key)).not.toBeNull();
    const deleted = await bob.raw('DELETE', '/api/me', undefined, { 'confirm-delete': 'bob' });
    expect(deleted.status).toBe(202);
    expect(deleted.body.deleted_rows.exports).toBe(2);
    expect((await bob.get(`/api/me/exports/${fresh.id}`)).status).toBe(404);
    await testApp.janitor.runOnce();
    expect(await testApp.storage.inspect(row.storage_key)).toBeNull();
  });
});

describe('an export while the store goes away mid-way (Postgres + s3rver through a proxy)', () => {
  let testApp: TestApp;
  let proxy: CuttableStore;

  beforeAll(async () => {
    proxy = await cuttableStore(testS3Env('s3').S3_ENDPOINT_URL);
    testApp = await startTestApp({
      database: 'postgres',
      storage: 's3',
      env: { S3_ENDPOINT_URL: proxy.endpoint, STORAGE_TIMEOUT_SECONDS: '2' },
    });
  }, 120_000);

  afterAll(async () => {
    await testApp?.close();
    await proxy?.close();
  });

  it('fails the attempt, is never ready with a broken archive, and is retried to a whole one', async () => {
    const phone = await testApp.phone('carol');
    const note = (await phone.post('/api/notes', { title: 'long', body: 'text' })).body;
    const clips: Uploaded[] = [];
    for (let i = 0; i < 3; i += 1) clips.push(await readyClip(phone, wav(40, { noise: true }), 'audio/wav', note.id));

    // The store stops after about one and a half recordings have been read back.
    proxy.cutAfter(1.5 * 640_044);
    const started = await phone.post('/api/me/exports');
    expect(started.status).toBe(202);
    const id = started.body.id;
    const rowOf = async () =>
      (
        await testApp.dataSource.query('SELECT status, attempts, last_error, storage_key FROM exports WHERE id = $1', [
          id,
        ])
      )[0];
    for (const deadline = Date.now() + 30_000; ;) {
      const row = await rowOf();
      expect(row.status).not.toBe('ready');
      if (row.attempts >= 1 && row.status === 'pending' && row.last_error) break;
      if (Date.now() > deadline) throw new Error(`no failed attempt: ${JSON.stringify(row)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(proxy.cut).toBe(true);
    const failed = await rowOf();
    const answer = await phone.get(`/api/me/exports/${id}`);
    expect(answer.body).toMatchObject({ status: 'pending', url: null, bytes: null });

    proxy.restore();
    // The failed attempt's archive key holds nothing.
    expect(await testApp.storage.inspect(failed.storage_key)).toBeNull();
    // The retry is due 5 s later; the worker takes it up by itself.
    const ready = await settled(phone, id, 60);
    const archive = await archiveOf(ready);
    expectArchiveHolds(
      archive.entries,
      { userId: 'carol', notes: [{ id: note.id, title: 'long', body: 'text' }], clips },
      { texts: [], clips: [] },
    );
    const done = await rowOf();
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    expect(done.storage_key).not.toBe(failed.storage_key);
    await testApp.app.get(ExportWorker).runOnce();
  }, 120_000);

  it('deleted with the account while it is being built: nothing of it is left, in the database or the store', async () => {
    const phone = await testApp.phone('erin');
    const note = (await phone.post('/api/notes', { title: 'going', body: 'soon' })).body;
    await readyClip(phone, wav(20, { noise: true }), 'audio/wav', note.id);
    proxy.pause(); // the build hangs on the store
    const started = (await phone.post('/api/me/exports')).body;
    let key = '';
    for (const deadline = Date.now() + 10_000; !key;) {
      const [row] = await testApp.dataSource.query('SELECT status, storage_key FROM exports WHERE id = $1', [
        started.id,
      ]);
      if (row?.status === 'running' && row.storage_key) key = row.storage_key;
      else if (Date.now() > deadline) throw new Error('the export never started');
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const deleted = await phone.raw('DELETE', '/api/me', undefined, { 'confirm-delete': 'erin' });
    expect(deleted.status).toBe(202);
    expect(deleted.body.deleted_rows.exports).toBe(1);
    proxy.resume();
    await testApp.app.get(ExportWorker).runOnce();
    await testApp.janitor.runOnce(new Date(Date.now() + 2 * 24 * 60 * 60_000));
    expect(await testApp.storage.inspect(key)).toBeNull();
    expect(await testApp.dataSource.query("SELECT id FROM exports WHERE owner_id = 'erin'")).toEqual([]);
    expect((await phone.get(`/api/me/exports/${started.id}`)).status).toBe(404);
  }, 60_000);
});

describe('an export with two instances of one deployment (Postgres + s3rver)', () => {
  let first: TestApp;
  let second: TestApp;

  beforeAll(async () => {
    first = await startTestApp({ database: 'postgres', storage: 's3' });
    second = await startTestApp({ database: 'postgres', storage: 's3', sameDeploymentAs: first });
  }, 120_000);

  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  it('is built by exactly one of them, and either answers it', async () => {
    const phone = await first.phone('dora');
    const note = (await phone.post('/api/notes', { title: 'shared', body: 'both instances' })).body;
    const clip = await readyClip(phone, wav(2, { noise: true }), 'audio/wav', note.id);
    for (let round = 0; round < 3; round += 1) {
      // The instance that took the request starts building at once; the other's worker looks at the same moment.
      const started = await phone.post('/api/me/exports');
      expect(started.status).toBe(202);
      await Promise.all([
        second.app.get(ExportWorker).runOnce(),
        second.app.get(ExportWorker).runOnce(),
        first.app.get(ExportWorker).runOnce(),
      ]);
      const other = await second.phone('dora');
      const ready = await settled(other, started.body.id);
      const [row] = await first.dataSource.query('SELECT attempts FROM exports WHERE id = $1', [started.body.id]);
      expect(row.attempts).toBe(1);
      const archive = await archiveOf(ready);
      expectArchiveHolds(
        archive.entries,
        { userId: 'dora', notes: [{ id: note.id, title: 'shared', body: 'both instances' }], clips: [clip] },
        { texts: [], clips: [] },
      );
    }
  }, 120_000);
});
