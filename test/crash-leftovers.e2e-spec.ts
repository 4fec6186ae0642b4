import { mkdir, rename, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { wav } from './support/audio';
import { download, putBytes, type Phone } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

describe('what a crash leaves behind in the local store is cleaned up or finished', () => {
  let testApp: TestApp;
  let phone: Phone;
  let root: string;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
    phone = await testApp.phone('alice');
    root = testApp.env.LOCAL_STORAGE_DIR;
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('the janitor removes temporary upload files nobody has written to for long, and leaves fresh ones', async () => {
    const incoming = join(root, '.incoming');
    const hourAgo = new Date(Date.now() - 60 * 60_000);
    for (const name of ['crashed-upload', 'crashed-upload.meta.json']) {
      await writeFile(join(incoming, name), 'half an upload');
      await utimes(join(incoming, name), hourAgo, hourAgo);
    }
    await writeFile(join(incoming, 'live-upload'), 'still arriving');

    await testApp.janitor.runOnce();

    expect((await testApp.localFiles()).filter((file) => file.startsWith('.incoming/'))).toEqual([
      '.incoming/live-upload',
    ]);
  });

  it('complete finishes a move that a crash cut between its two renames', async () => {
    const audio = wav(0.3);
    const created = (
      await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 300 })
    ).body;
    expect((await putBytes(created.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    // The first rename of a completion happened (the metadata moved), then the server died.
    const from = join(root, ...created.upload.storage_key.split('/'));
    const to = join(root, ...created.clip.storage_key.split('/'));
    await mkdir(dirname(to), { recursive: true });
    await rename(`${from}.meta.json`, `${to}.meta.json`);
    expect(await testApp.storage.inspect(created.upload.storage_key)).toBeNull();
    expect(await testApp.storage.inspect(created.clip.storage_key)).toBeNull();

    const completed = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(completed.status).toBe(200);
    expect(completed.body.status).toBe('ready');
    const played = await download((await phone.get(`/api/audio-clips/${created.clip.id}/playback`)).body.url);
    expect(played.bytes.equals(audio)).toBe(true);
  });

  it('but not with bytes that are not the ones the moved metadata describes', async () => {
    const audio = wav(0.3);
    const created = (
      await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 300 })
    ).body;
    expect((await putBytes(created.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    const from = join(root, ...created.upload.storage_key.split('/'));
    const to = join(root, ...created.clip.storage_key.split('/'));
    await mkdir(dirname(to), { recursive: true });
    await rename(`${from}.meta.json`, `${to}.meta.json`);
    await writeFile(from, Buffer.alloc(audio.length, 1)); // same size, other bytes

    const completed = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(completed.status).toBe(409);
    expect(completed.body.error.code).toBe('UPLOAD_NOT_FOUND');
  });
});
