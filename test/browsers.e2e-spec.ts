import { wav } from './support/audio';
import { Phone, putBytes } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

const ORIGIN = 'https://app.example.com';

describe('browsers on an allowed origin', () => {
  let testApp: TestApp;
  let phone: Phone;

  beforeAll(async () => {
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 'local',
      env: { CORS_ORIGINS: `${ORIGIN},https://other.example.com` },
    });
    phone = await testApp.phone('alice');
  });

  afterAll(async () => {
    await testApp?.close();
  });

  const preflight = (
    path: string,
    method: string,
    origin = ORIGIN,
    headers = 'authorization,content-type,idempotency-key',
  ) =>
    fetch(`${testApp.baseUrl}${path}`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
    });

  it.each([
    ['GET', '/api/notes'],
    ['POST', '/api/audio-clips'],
    ['PATCH', '/api/notes/5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90'],
    ['DELETE', '/api/audio-clips/5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90'],
    ['PUT', '/api/storage/local/dev/uploads/x.m4a'],
  ])('lets a preflight for %s %s through, with the headers the API needs', async (method, path) => {
    const answer = await preflight(path, method);
    expect(answer.status).toBeLessThan(300);
    expect(answer.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const methods = (answer.headers.get('access-control-allow-methods') ?? '').split(',').map((m) => m.trim());
    expect(methods).toContain(method);
    const allowed = (answer.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    for (const header of ['authorization', 'content-type', 'idempotency-key', 'content-md5'])
      expect(allowed).toContain(header);
  });

  it('lets a web app send If-Match and If-None-Match, and read the ETag', async () => {
    const answer = await preflight(
      '/api/notes/5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90',
      'PATCH',
      ORIGIN,
      'if-match,if-none-match',
    );
    expect(answer.status).toBeLessThan(300);
    const allowed = (answer.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    for (const header of ['if-match', 'if-none-match']) expect(allowed).toContain(header);
    const note = await fetch(`${testApp.baseUrl}/api/notes`, {
      method: 'POST',
      headers: {
        origin: ORIGIN,
        authorization: `Bearer ${await testApp.tokenFor('web')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ title: 'from the web' }),
    });
    expect(note.headers.get('etag')).toBe('"1"');
    expect((note.headers.get('access-control-expose-headers') ?? '').toLowerCase()).toContain('etag');
  });

  it.each(['https://evil.example.com', 'http://app.example.com', 'https://app.example.com.evil.com', 'null'])(
    'refuses the origin %s',
    async (origin) => {
      const answer = await preflight('/api/notes', 'DELETE', origin);
      expect(answer.headers.get('access-control-allow-origin')).toBeNull();
    },
  );

  it('exposes Retry-After and the request id to the page, and answers JSON with Cache-Control: no-store', async () => {
    const created = await fetch(`${testApp.baseUrl}/api/notes`, {
      method: 'POST',
      headers: {
        origin: ORIGIN,
        authorization: `Bearer ${await testApp.tokenFor('alice')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ title: 'from a browser' }),
    });
    expect(created.status).toBe(201);
    const exposed = (created.headers.get('access-control-expose-headers') ?? '').toLowerCase();
    expect(exposed).toContain('retry-after');
    expect(exposed).toContain('x-request-id');
    expect(created.headers.get('x-request-id')).toBeTruthy();
    for (const answer of [
      created,
      await fetch(`${testApp.baseUrl}/api/notes`, {
        headers: { authorization: `Bearer ${await testApp.tokenFor('alice')}` },
      }),
      await fetch(`${testApp.baseUrl}/api/notes`), // 401
      await fetch(`${testApp.baseUrl}/api/notes/nope`, {
        headers: { authorization: `Bearer ${await testApp.tokenFor('alice')}` },
      }), // 400
    ]) {
      expect(answer.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('serves local playback URLs so that an <audio> element on the allowed origin can play them', async () => {
    const audio = wav(0.2);
    const created = await phone.post('/api/audio-clips', {
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 200,
    });
    expect((await putBytes(created.body.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`)).status).toBe(200);
    const playback = (await phone.get(`/api/audio-clips/${created.body.clip.id}/playback`)).body.url as string;
    for (const headers of [{ origin: ORIGIN }, { origin: ORIGIN, range: 'bytes=0-99' }, {}]) {
      const answer = await fetch(playback, { headers });
      expect([200, 206]).toContain(answer.status);
      expect(answer.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
      if ('origin' in headers) expect(answer.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      expect(answer.headers.get('cache-control')).not.toBe('no-store');
    }
  });

  it('lets a browser upload to the local store with its PUT', async () => {
    const audio = wav(0.1);
    const created = await phone.post('/api/audio-clips', {
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 100,
    });
    const answer = await fetch(created.body.upload.url, {
      method: 'PUT',
      headers: { origin: ORIGIN, 'content-type': 'audio/wav' },
      body: audio,
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('access-control-allow-origin')).toBe(ORIGIN);
  });
});
