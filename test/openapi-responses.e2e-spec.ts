/**
 * The check every phone runs on the API's answers (test/support/openapi-responses.ts) fails on what the
 * spec does not describe: a server on a real port that answers off the contract, reached through the
 * same Phone the suites use, and a started app whose real answers pass.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Phone } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

const NOTE_ID = '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90';
const CLIP_ID = '9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b';
const NOTE = {
  id: NOTE_ID,
  title: 'Standup ideas',
  version: 1,
  body: '',
  created_at: '2026-11-27T09:30:00.000Z',
  updated_at: '2026-11-27T09:30:00.000Z',
};
const CLIP = {
  id: CLIP_ID,
  note_id: null,
  status: 'pending',
  mime_type: 'audio/wav',
  bytes: 16044,
  duration_ms: 1000,
  declared_duration_ms: 1000,
  duration_source: 'declared',
  content_md5: null,
  failure_reason: null,
  storage_key: `dev/audio-clips/${CLIP_ID}.wav`,
  created_at: '2026-11-27T09:30:00.000Z',
  updated_at: '2026-11-27T09:30:00.000Z',
  completed_at: null,
  completed_by: null,
  waveform: null,
  renditions: [],
};

/** path → [status, content type, body] the fake server answers. */
const ANSWERS: Record<string, [number, string | undefined, string]> = {
  [`/api/notes/${NOTE_ID}`]: [200, 'application/json', JSON.stringify(NOTE)],
  '/api/notes/no-title': [200, 'application/json', JSON.stringify({ ...NOTE, title: undefined })],
  '/api/notes/title-null': [200, 'application/json', JSON.stringify({ ...NOTE, title: null })],
  '/api/notes/as-text': [200, 'text/plain', JSON.stringify(NOTE)],
  '/api/notes/teapot': [418, 'application/json', '{"status":418}'],
  '/api/notes/error-without-request-id': [
    404,
    'application/json',
    JSON.stringify({ status: 404, error: { code: 'NOTE_NOT_FOUND', message: 'No note.' } }),
  ],
  [`/api/audio-clips/${CLIP_ID}`]: [200, 'application/json', JSON.stringify(CLIP)],
  '/api/audio-clips/completed-by-phone': [200, 'application/json', JSON.stringify({ ...CLIP, completed_by: 'phone' })],
  '/api/audio-clips/bytes-as-string': [200, 'application/json', JSON.stringify({ ...CLIP, bytes: '16044' })],
  '/api/no-such-route': [200, 'application/json', '{}'],
  '/api/storage/local/anything': [200, 'audio/wav', 'RIFF…'],
};

describe('checking answers against openapi.json', () => {
  let server: Server;
  let phone: Phone;

  beforeAll(async () => {
    server = createServer((request, response) => {
      const [status, type, body] = ANSWERS[request.url!.split('?')[0]] ?? [404, undefined, ''];
      response.writeHead(status, type ? { 'content-type': type } : {}).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    phone = new Phone(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'token');
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('lets a described answer through, a pending clip’s null completed_by included', async () => {
    expect((await phone.get(`/api/notes/${NOTE_ID}`)).body).toEqual(NOTE);
    expect((await phone.get(`/api/audio-clips/${CLIP_ID}`)).body).toEqual(CLIP);
    const typed = await phone.api.GET('/api/notes/{note_id}', { params: { path: { note_id: NOTE_ID } } });
    expect(typed.data).toEqual(NOTE);
  });

  it.each([
    ['a required field missing', '/api/notes/no-title', /\(body\) must have required property 'title'/],
    ['null in a field that is not nullable', '/api/notes/title-null', /\/title must be string/],
    ['a value outside an enum', '/api/audio-clips/completed-by-phone', /\/completed_by must be equal to one of/],
    ['a field of another type', '/api/audio-clips/bytes-as-string', /\/bytes must be integer/],
    ['an undocumented content type', '/api/notes/as-text', /content type text\/plain is not documented/],
    ['an undocumented status', '/api/notes/teapot', /status 418 is not documented/],
    [
      'an error body without request_id',
      '/api/notes/error-without-request-id',
      /must have required property 'request_id'/,
    ],
    ['a success from a route the spec does not have', '/api/no-such-route', /no operation in openapi.json answers it/],
  ])('fails the call on %s', async (_case, path, message) => {
    await expect(phone.get(path)).rejects.toThrow(message);
    await expect(phone.raw('GET', path, undefined, {})).rejects.toThrow(message);
  });

  it('fails a call of the typed client too', async () => {
    await expect(
      phone.api.GET('/api/audio-clips/{clip_id}', { params: { path: { clip_id: 'completed-by-phone' } } }),
    ).rejects.toThrow(/completed_by must be equal to one of/);
  });

  it('leaves the signed storage URLs alone, and a call made unvalidated()', async () => {
    expect((await phone.get('/api/storage/local/anything')).status).toBe(200);
    expect((await phone.unvalidated().get('/api/notes/teapot')).status).toBe(418);
    expect(
      (await new Phone(phone['baseUrl'], 'token', { validateResponses: false }).get('/api/no-such-route')).status,
    ).toBe(200);
  });
});

describe('a started app’s answers, checked', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('pass for a note’s life and its errors', async () => {
    const phone = await testApp.phone('alice');
    const created = await phone.post('/api/notes', { title: 'Standup ideas' });
    expect(created.status).toBe(201);
    expect((await phone.patch(`/api/notes/${created.body.id}`, { body: 'release train' })).status).toBe(200);
    expect((await phone.get('/api/notes')).status).toBe(200);
    expect((await phone.get(`/api/notes/${created.body.id}/audio`)).status).toBe(404);
    expect((await phone.post('/api/notes', { title: 7 })).status).toBe(400);
    expect((await new Phone(testApp.baseUrl).get('/api/notes')).status).toBe(401);
    expect((await phone.delete(`/api/notes/${created.body.id}`)).status).toBe(204);
    expect((await phone.get(`/api/notes/${created.body.id}`)).status).toBe(410);
    expect((await phone.get('/api/health/ready')).status).toBe(200);
  });
});
