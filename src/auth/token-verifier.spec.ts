import { SignJWT } from 'jose';
import { AppError } from '../common/app-error';
import { TokenVerifier } from './token-verifier';

const SECRET = 'a-shared-secret-of-at-least-32-characters';
const key = new TextEncoder().encode(SECRET);

function token(claims: Record<string, unknown>, secret = key): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(secret);
}

/** Counts the signature checks the verifier makes (its cache is what saves them). */
function signatureChecks(verifier: TokenVerifier): jest.SpyInstance {
  return jest.spyOn(verifier as unknown as { verifyJwt: (token: string) => Promise<unknown> }, 'verifyJwt');
}

describe('TokenVerifier with a shared secret', () => {
  const now = () => Math.floor(Date.now() / 1000);

  it('returns the subject of a valid token, checking its signature once while it stays cached', async () => {
    const verifier = await TokenVerifier.create({ mode: 'secret', secret: SECRET });
    const checks = signatureChecks(verifier);
    const valid = await token({ sub: 'alice', exp: now() + 600 });
    expect(await verifier.verify(valid)).toEqual({ id: 'alice' });
    expect(await verifier.verify(valid)).toEqual({ id: 'alice' });
    expect(await verifier.verify(valid)).toEqual({ id: 'alice' });
    expect(checks).toHaveBeenCalledTimes(1);
    // Another token is checked on its own.
    expect(await verifier.verify(await token({ sub: 'bob', exp: now() + 600 }))).toEqual({ id: 'bob' });
    expect(checks).toHaveBeenCalledTimes(2);
  });

  it('checks a cached token again after the minute it may be cached', async () => {
    const verifier = await TokenVerifier.create({ mode: 'secret', secret: SECRET });
    const checks = signatureChecks(verifier);
    const valid = await token({ sub: 'alice', exp: now() + 600 });
    await verifier.verify(valid);
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'], now: Date.now() + 61_000 });
    try {
      expect(await verifier.verify(valid)).toEqual({ id: 'alice' });
    } finally {
      jest.useRealTimers();
    }
    expect(checks).toHaveBeenCalledTimes(2);
  });

  it('does not serve a cached token past its expiry', async () => {
    const verifier = await TokenVerifier.create({ mode: 'secret', secret: SECRET });
    const shortLived = await token({ sub: 'alice', exp: now() + 2 });
    expect(await verifier.verify(shortLived)).toEqual({ id: 'alice' });
    // Three seconds on, for the cache and for jose's own clock alike.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'], now: Date.now() + 3000 });
    try {
      await expect(verifier.verify(shortLived)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    } finally {
      jest.useRealTimers();
    }
  });

  it.each([
    ['another key', () => token({ sub: 'alice', exp: now() + 600 }, new TextEncoder().encode('x'.repeat(40)))],
    ['no subject', () => token({ exp: now() + 600 })],
    ['an empty subject', () => token({ sub: '', exp: now() + 600 })],
    ['expired', () => token({ sub: 'alice', exp: now() - 10 })],
    ['not yet valid', () => token({ sub: 'alice', exp: now() + 600, nbf: now() + 300 })],
  ])('refuses a token with %s, again on a second try (failures are not cached)', async (_name, make) => {
    const verifier = await TokenVerifier.create({ mode: 'secret', secret: SECRET });
    const checks = signatureChecks(verifier);
    const bad = await make();
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const error = await verifier.verify(bad).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe('UNAUTHENTICATED');
    }
    expect(checks).toHaveBeenCalledTimes(2);
  });

  it('checks the issuer and audience when configured', async () => {
    const verifier = await TokenVerifier.create({
      mode: 'secret',
      secret: SECRET,
      issuer: 'https://id.example',
      audience: 'notes',
    });
    await expect(
      verifier.verify(await token({ sub: 'a', exp: now() + 600, iss: 'https://id.example', aud: 'notes' })),
    ).resolves.toEqual({ id: 'a' });
    await expect(
      verifier.verify(await token({ sub: 'a', exp: now() + 600, iss: 'https://evil.example', aud: 'notes' })),
    ).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(
      verifier.verify(await token({ sub: 'a', exp: now() + 600, iss: 'https://id.example', aud: 'other' })),
    ).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });
});
