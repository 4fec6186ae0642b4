import { wav } from './support/audio';
import { putBytes, type Phone } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

describe('upload URLs of clips that are gone take no bytes (local store)', () => {
  let testApp: TestApp;
  let phone: Phone;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
    phone = await testApp.phone('alice');
  });

  afterAll(async () => {
    await testApp?.close();
  });

  const audio = wav(0.2);
  async function created() {
    return (await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 200 }))
      .body;
  }

  async function expectRefused(url: string): Promise<void> {
    const files = await testApp.localFiles();
    const answer = await putBytes(url, audio, { 'Content-Type': 'audio/wav' });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.text).error.code).toBe('SIGNED_URL_INVALID');
    expect(await testApp.localFiles()).toEqual(files);
  }

  it('after the clip was deleted (before any upload)', async () => {
    const clip = await created();
    expect((await phone.delete(`/api/audio-clips/${clip.clip.id}`)).status).toBe(204);
    await expectRefused(clip.upload.url);
  });

  it('after the clip was deleted (after an upload)', async () => {
    const clip = await created();
    expect((await putBytes(clip.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.delete(`/api/audio-clips/${clip.clip.id}`)).status).toBe(204);
    await expectRefused(clip.upload.url);
  });

  it('after the clip failed (its bytes were not audio)', async () => {
    const clip = await created();
    const junk = Buffer.alloc(audio.length, 7);
    expect((await putBytes(clip.upload.url, junk, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.post(`/api/audio-clips/${clip.clip.id}/complete`)).status).toBe(422);
    await expectRefused(clip.upload.url);
  });

  it('after the clip became ready (no second copy beside the recording)', async () => {
    const clip = await created();
    expect((await putBytes(clip.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.post(`/api/audio-clips/${clip.clip.id}/complete`)).status).toBe(200);
    await expectRefused(clip.upload.url);
  });

  it('after the note holding the clip was deleted', async () => {
    const note = (await phone.post('/api/notes', { title: 'n' })).body;
    const clip = (
      await phone.post('/api/audio-clips', {
        note_id: note.id,
        mime_type: 'audio/wav',
        bytes: audio.length,
        duration_ms: 200,
      })
    ).body;
    expect((await phone.delete(`/api/notes/${note.id}`)).status).toBe(204);
    await expectRefused(clip.upload.url);
  });

  it('while a pending clip still takes its upload, again and again', async () => {
    const clip = await created();
    expect((await putBytes(clip.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await putBytes(clip.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.post(`/api/audio-clips/${clip.clip.id}/complete`)).body.status).toBe('ready');
  });
});
