import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueToken } from '../src/auth/dev-token';
import { ConfigValidationError, loadAppConfig } from '../src/config/app-config';
import { createApp } from '../src/app.factory';
import { wav } from './support/audio';
import { Phone, putBytes } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

const clip = (bytes: number) => ({ mime_type: 'audio/m4a', bytes, duration_ms: 1000 });

describe('rate limits', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 'local',
      env: { RATE_LIMIT_PER_MINUTE: '8', UPLOAD_RATE_LIMIT_PER_MINUTE: '3' },
    });
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('limits creating uploads per user, with 429 and Retry-After, without touching other users', async () => {
    const bob = await testApp.phone('bob');
    for (let i = 0; i < 3; i += 1) expect((await bob.post('/api/audio-clips', clip(10))).status).toBe(201);
    const before = await testApp.rowCounts();

    const limited = await bob.post('/api/audio-clips', clip(10));
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(await testApp.rowCounts()).toEqual(before);

    // Completing counts against the same upload budget.
    const completeLimited = await bob.post('/api/audio-clips/00000000-0000-4000-8000-000000000000/complete');
    expect(completeLimited.status).toBe(429);

    const carol = await testApp.phone('carol');
    expect((await carol.post('/api/audio-clips', clip(10))).status).toBe(201);
  });

  it('limits all requests per user', async () => {
    const dave = await testApp.phone('dave');
    const statuses = [];
    for (let i = 0; i < 9; i += 1) statuses.push((await dave.get('/api/notes')).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 429]);
  });

  it('never limits health checks', async () => {
    const anonymous = new Phone(testApp.baseUrl);
    for (let i = 0; i < 12; i += 1) expect((await anonymous.get('/api/health')).status).toBe(200);
  });
});

describe('the storage quota', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'postgres', storage: 'local', env: { USER_QUOTA_BYTES: '1000' } });
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('answers 413 with what is left when a clip would exceed it, counting pending and ready clips', async () => {
    const erin = await testApp.phone('erin');
    const first = await erin.post('/api/audio-clips', clip(600));
    expect(first.status).toBe(201);

    const before = await testApp.rowCounts();
    const over = await erin.post('/api/audio-clips', clip(500));
    expect(over.status).toBe(413);
    expect(over.body.error).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      quota_bytes: 1000,
      used_bytes: 600,
      remaining_bytes: 400,
    });
    expect(over.body.error.message).toContain('400');
    expect(await testApp.rowCounts()).toEqual(before);

    expect((await erin.post('/api/audio-clips', clip(400))).status).toBe(201);
    expect((await erin.post('/api/audio-clips', clip(1))).body.error.remaining_bytes).toBe(0);

    expect((await erin.delete(`/api/audio-clips/${first.body.clip.id}`)).status).toBe(204);
    expect((await erin.post('/api/audio-clips', clip(600))).status).toBe(201);

    const frank = await testApp.phone('frank');
    expect((await frank.post('/api/audio-clips', clip(1000))).status).toBe(201);
  });

  it('counts ready clips too, and frees their bytes when they are deleted', async () => {
    const ivan = await testApp.phone('ivan');
    const audio = wav(0.05); // 844 bytes of real audio
    const created = await ivan.post('/api/audio-clips', {
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 50,
    });
    expect((await putBytes(created.body.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await ivan.post(`/api/audio-clips/${created.body.clip.id}/complete`)).body.status).toBe('ready');

    const over = await ivan.post('/api/audio-clips', clip(200));
    expect(over.status).toBe(413);
    expect(over.body.error).toMatchObject({ used_bytes: audio.length, remaining_bytes: 1000 - audio.length });

    expect((await ivan.delete(`/api/audio-clips/${created.body.clip.id}`)).status).toBe(204);
    expect((await ivan.post('/api/audio-clips', clip(200))).status).toBe(201);
  });

  it('holds under concurrent creates: the quota is never exceeded', async () => {
    const grace = await testApp.phone('grace');
    const answers = await Promise.all(Array.from({ length: 10 }, () => grace.post('/api/audio-clips', clip(300))));
    const created = answers.filter((answer) => answer.status === 201).length;
    expect(answers.every((answer) => answer.status === 201 || answer.status === 413)).toBe(true);
    expect(created).toBe(3);
    const [{ total }] = await testApp.dataSource.query(
      "SELECT COALESCE(SUM(bytes), 0) AS total FROM audio_clips WHERE owner_id = 'grace'",
    );
    expect(Number(total)).toBeLessThanOrEqual(1000);
  });
});

describe('security headers and CORS', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 'local',
      env: { CORS_ORIGINS: 'https://app.example.com' },
    });
  });

  afterAll(async () => {
    await testApp?.close();
  });

  /** helmet 8's defaults, with the explorer page's two CSP additions (inline styles, data: images). */
  const SECURITY_HEADERS = {
    'content-security-policy':
      "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' 'unsafe-inline';upgrade-insecure-requests",
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'origin-agent-cluster': '?1',
    'referrer-policy': 'no-referrer',
    'strict-transport-security': 'max-age=31536000; includeSubDomains',
    'x-content-type-options': 'nosniff',
    'x-dns-prefetch-control': 'off',
    'x-download-options': 'noopen',
    'x-frame-options': 'SAMEORIGIN',
    'x-permitted-cross-domain-policies': 'none',
    'x-xss-protection': '0',
  };

  it.each([
    ['a success', 'GET', '/api/health', undefined, 200],
    ['a missing token', 'GET', '/api/notes', undefined, 401],
    ['an unknown route', 'GET', '/api/nothing-here', undefined, 404],
    ['a malformed JSON body', 'POST', '/api/notes', '{"title":', 400],
    ['the API explorer page', 'GET', '/api/docs', undefined, 200],
  ])('sends the full set of security headers on %s', async (_name, method, path, body, status) => {
    const response = await fetch(`${testApp.baseUrl}${path}`, {
      method,
      body,
      headers: body ? { 'content-type': 'application/json' } : {},
    });
    expect(response.status).toBe(status);
    for (const [name, value] of Object.entries(SECURITY_HEADERS))
      expect([name, response.headers.get(name)]).toEqual([name, value]);
    expect(response.headers.get('x-powered-by')).toBeNull();
  });

  it('allows only the configured browser origins', async () => {
    const preflight = (origin: string) =>
      fetch(`${testApp.baseUrl}/api/notes`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
        },
      });
    const allowed = await preflight('https://app.example.com');
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(allowed.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    const refused = await preflight('https://evil.example.com');
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('without any auth configuration', () => {
  it('outside production starts with a generated secret, and the token command signs for it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'an-dev-auth-'));
    const secretFile = join(dir, 'dev-auth.secret');
    const env = {
      DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`,
      LOCAL_STORAGE_DIR: join(dir, 'objects'),
      AUTH_DEV_SECRET_FILE: secretFile,
      HOST: '127.0.0.1',
      PORT: '0',
    };
    const app = await createApp({ env, logLevels: false });
    try {
      await app.listen(0, '127.0.0.1');
      const address = app.getHttpServer().address() as { port: number };
      const token = await issueToken(loadAppConfig(env).auth, 'henry');
      const phone = new Phone(`http://127.0.0.1:${address.port}`, token);
      expect((await phone.post('/api/notes', { title: 'dev' })).status).toBe(201);
      expect((await new Phone(`http://127.0.0.1:${address.port}`).get('/api/notes')).status).toBe(401);
    } finally {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('in production refuses to start, naming the variables to set', async () => {
    const start = createApp({
      env: { APP_ENV: 'production', LOCAL_STORAGE_DIR: join(tmpdir(), 'never-used') },
      logLevels: false,
    });
    await expect(start).rejects.toBeInstanceOf(ConfigValidationError);
    await expect(start).rejects.toThrow(/AUTH_JWT_SECRET or AUTH_JWKS_URL is required in production/);
  });
});
