import { connect } from 'node:net';
import { SignJWT } from 'jose';
import { Phone } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

jest.setTimeout(60_000);

const LIMIT = 10;
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Any claims, signed with the app's own secret: the signature is fine, the content is what is tested. */
function signed(testApp: TestApp, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(testApp.env.AUTH_JWT_SECRET));
}

/** One raw request, so that headers can repeat (fetch would merge them into one). */
function rawRequest(baseUrl: string, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(baseUrl).port), '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
    socket.write(`${head}Host: x\r\nConnection: close\r\n\r\n`);
  });
}

describe('failed sign-ins and failed signatures count against the client address', () => {
  type Attempt = (testApp: TestApp) => Promise<{ status: number; headers: Headers; body: any }>;
  const uploadUrls = new WeakMap<TestApp, string>();
  const forgedUpload = async (testApp: TestApp, method: 'PUT' | 'GET') => {
    if (!uploadUrls.has(testApp)) {
      const phone = await testApp.phone('owner');
      const created = await phone.post('/api/audio-clips', { mime_type: 'audio/ogg', bytes: 3, duration_ms: 1 });
      uploadUrls.set(testApp, created.body.upload.url);
    }
    const url = new URL(uploadUrls.get(testApp)!);
    url.searchParams.set('signature', 'A'.repeat(43));
    const response = await fetch(url, {
      method,
      headers: method === 'PUT' ? { 'content-type': 'audio/ogg', 'content-length': '3' } : {},
      body: method === 'PUT' ? 'abc' : undefined,
    });
    return { status: response.status, headers: response.headers, body: await response.json() };
  };
  const ATTEMPTS: [string, number, Attempt][] = [
    ['a garbage token', 401, (testApp) => new Phone(testApp.baseUrl, 'garbage').get('/api/notes')],
    ['no token', 401, (testApp) => new Phone(testApp.baseUrl).get('/api/notes')],
    ['a Basic header', 401, (testApp) => new Phone(testApp.baseUrl).get('/api/notes', { authorization: 'Basic YTpi' })],
    [
      'an expired token',
      401,
      async (testApp) =>
        new Phone(testApp.baseUrl, await testApp.tokenFor('x', { exp: nowSeconds() - 60 })).get('/api/notes'),
    ],
    ['a forged upload signature', 403, (testApp) => forgedUpload(testApp, 'PUT')],
    ['a forged download signature', 403, (testApp) => forgedUpload(testApp, 'GET')],
  ];

  it.each(ATTEMPTS)(
    '%s: %i until the address has spent its budget, then 429 with Retry-After',
    async (_name, status, attempt) => {
      const testApp = await startTestApp({
        database: 'sqlite',
        storage: 'local',
        env: { RATE_LIMIT_PER_MINUTE: String(LIMIT) },
      });
      try {
        const statuses: number[] = [];
        let last: Awaited<ReturnType<Attempt>> | undefined;
        for (let i = 0; i < LIMIT + 5; i += 1) {
          last = await attempt(testApp);
          statuses.push(last.status);
        }
        expect(statuses.slice(0, LIMIT)).toEqual(Array.from({ length: LIMIT }, () => status));
        expect(statuses.slice(LIMIT)).toEqual([429, 429, 429, 429, 429]);
        expect(last!.body.error.code).toBe('RATE_LIMITED');
        expect(Number(last!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(Number(last!.headers.get('retry-after'))).toBeLessThanOrEqual(60);
        // A signed-in user on the same address has a budget of their own.
        expect((await (await testApp.phone('someone')).get('/api/notes')).status).toBe(200);
      } finally {
        await testApp.close();
      }
    },
  );
});

describe('token policy', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
  });

  afterAll(async () => {
    await testApp?.close();
  });

  const inAnHour = () => nowSeconds() + 3600;
  const REFUSED: [string, () => Record<string, unknown>][] = [
    ['no exp', () => ({ sub: 'alice' })],
    ['exp of 1e20', () => ({ sub: 'alice', exp: 1e20 })],
    ['exp two days ahead (over the 24 h default)', () => ({ sub: 'alice', exp: nowSeconds() + 2 * 86400 })],
    ['exp as a string', () => ({ sub: 'alice', exp: String(inAnHour()) })],
    ['no sub', () => ({ exp: inAnHour() })],
    ['an empty sub', () => ({ sub: '', exp: inAnHour() })],
    ['a numeric sub', () => ({ sub: 42, exp: inAnHour() })],
    ['a sub with a leading space', () => ({ sub: ' alice', exp: inAnHour() })],
    ['a sub with a trailing newline', () => ({ sub: 'alice\n', exp: inAnHour() })],
    ['a sub with a no-break space around it', () => ({ sub: '\u00a0alice', exp: inAnHour() })],
    ['a sub with a BEL', () => ({ sub: 'al\u0007ice', exp: inAnHour() })],
    ['a sub with a C1 control', () => ({ sub: 'al\u0085ice', exp: inAnHour() })],
    ['a sub with NUL', () => ({ sub: 'alice\u0000', exp: inAnHour() })],
    ['a sub with a bidi override', () => ({ sub: '\u202ealice', exp: inAnHour() })],
  ];

  it.each(REFUSED)('refuses a well-signed token with %s (401, nothing written)', async (_name, claims) => {
    const before = await testApp.rowCounts();
    const phone = new Phone(testApp.baseUrl, await signed(testApp, claims()));
    const answer = await phone.post('/api/notes', { title: 'should not exist' });
    expect(answer.status).toBe(401);
    expect(answer.body.error.code).toBe('UNAUTHENTICATED');
    expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await testApp.rowCounts()).toEqual(before);
  });

  it('accepts a token valid for just under the maximum, with an ordinary sub', async () => {
    const phone = new Phone(testApp.baseUrl, await signed(testApp, { sub: 'alice', exp: nowSeconds() + 23 * 3600 }));
    expect((await phone.get('/api/notes')).status).toBe(200);
  });

  it.each([
    ['two valid tokens', (a: string, b: string) => [a, b]],
    ['the same token twice', (a: string) => [a, a]],
    ['a valid token and garbage', (a: string) => [a, 'garbage']],
  ])('refuses a request with two Authorization headers: %s', async (_name, pick) => {
    const tokens = pick(await testApp.tokenFor('alice'), await testApp.tokenFor('bob'));
    const answer = await rawRequest(
      testApp.baseUrl,
      `GET /api/notes HTTP/1.1\r\n${tokens.map((token) => `Authorization: Bearer ${token}\r\n`).join('')}`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 401/);
    expect(answer).toContain('"code":"UNAUTHENTICATED"');
    expect(answer.toLowerCase()).toContain('www-authenticate: bearer error="invalid_request"');
  });

  it('still takes a single Authorization header sent the raw way', async () => {
    const answer = await rawRequest(
      testApp.baseUrl,
      `GET /api/notes HTTP/1.1\r\nAuthorization: Bearer ${await testApp.tokenFor('alice')}\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
  });
});
