import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { freePort } from './harness/free-port';
import { Phone } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

const ISSUER = 'https://id.example.test/';
const AUDIENCE = 'advanced-notes';

interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function makeKey(kid: string, alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

function sign(key: SigningKey, claims: { sub?: string; iss?: string; aud?: string } = {}): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .setSubject(claims.sub ?? 'carol')
    .setIssuer(claims.iss ?? ISSUER)
    .setAudience(claims.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key.privateKey);
}

/** An identity provider's JWKS endpoint, served by the test, whose key set the test can rotate. */
describe('tokens from an identity provider (JWKS)', () => {
  let jwksServer: Server;
  let published: JWK[] = [];
  let fetches = 0;
  let testApp: TestApp;
  let first: SigningKey;
  let second: SigningKey;

  beforeAll(async () => {
    first = await makeKey('key-2026-01', 'RS256');
    second = await makeKey('key-2026-02', 'ES256');
    published = [first.jwk];
    jwksServer = createServer((_request, response) => {
      fetches += 1;
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const { port } = jwksServer.address() as AddressInfo;
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 'local',
      env: {
        AUTH_JWT_SECRET: '',
        AUTH_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
        AUTH_ISSUER: ISSUER,
        AUTH_AUDIENCE: AUDIENCE,
        AUTH_JWKS_COOLDOWN_SECONDS: '0',
      },
    });
  });

  afterAll(async () => {
    await testApp?.close();
    await new Promise((resolve) => jwksServer?.close(resolve));
  });

  const call = async (token: string) => new Phone(testApp.baseUrl, token).get('/api/notes');

  it('accepts a token signed with a published key, and its sub is the owner', async () => {
    const phone = new Phone(testApp.baseUrl, await sign(first));
    const note = await phone.post('/api/notes', { title: 'from the provider' });
    expect(note.status).toBe(201);
    expect((await phone.get(`/api/notes/${note.body.id}`)).status).toBe(200);
    expect(
      (await new Phone(testApp.baseUrl, await sign(first, { sub: 'dave' })).get(`/api/notes/${note.body.id}`)).status,
    ).toBe(404);
  });

  it('refuses the wrong issuer, the wrong audience, an unknown key and a shared-secret token', async () => {
    for (const token of [
      await sign(first, { iss: 'https://evil.example.test/' }),
      await sign(first, { aud: 'another-app' }),
      await sign(await makeKey('key-2026-01', 'RS256')), // same kid, other key material
      await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('carol')
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode('x'.repeat(32))),
    ]) {
      const response = await call(token);
      expect(response.status).toBe(401);
      expect(response.body.error.code).toBe('UNAUTHENTICATED');
    }
  });

  it('picks up a rotated key by its new kid, and drops the retired one', async () => {
    expect((await call(await sign(second))).status).toBe(401); // not published yet

    published = [first.jwk, second.jwk];
    const before = fetches;
    expect((await call(await sign(second))).status).toBe(200);
    expect(fetches).toBeGreaterThan(before);

    published = [second.jwk];
    const unknownKid = await makeKey('key-2026-03', 'ES256');
    expect((await call(await sign(unknownKid))).status).toBe(401); // forces a refetch of the set without the first key
    expect((await call(await sign(first))).status).toBe(401);
    expect((await call(await sign(second))).status).toBe(200);
  });
});

describe('an identity provider that cannot be reached', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    const key = await makeKey('key-x', 'RS256');
    unreachableToken = await sign(key);
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 'local',
      env: {
        AUTH_JWT_SECRET: '',
        AUTH_JWKS_URL: `http://127.0.0.1:${await freePort()}/jwks.json`,
        AUTH_ISSUER: ISSUER,
        AUTH_AUDIENCE: AUDIENCE,
      },
    });
  });

  afterAll(async () => {
    await testApp?.close();
  });

  let unreachableToken: string;

  it('answers 503 with Retry-After, not 401: the token may well be valid', async () => {
    const response = await new Phone(testApp.baseUrl, unreachableToken).get('/api/notes');
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('5');
    expect(response.body.error.code).toBe('AUTH_UNAVAILABLE');
  });
});
