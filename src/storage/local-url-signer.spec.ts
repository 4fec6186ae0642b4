import { LocalGrant, LocalUrlSigner } from './local-url-signer';

const NOW_MS = Date.UTC(2026, 10, 27, 9, 30, 0);
const NOW_S = NOW_MS / 1000;

const PUT_GRANT: LocalGrant = {
  method: 'PUT',
  key: 'dev/audio-clips/9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b.m4a',
  expiresAtSeconds: NOW_S + 900,
  contentType: 'audio/m4a',
  contentLength: 123456,
};
const GET_GRANT: LocalGrant = { method: 'GET', key: PUT_GRANT.key, expiresAtSeconds: NOW_S + 900 };

const signer = new LocalUrlSigner(Buffer.from('0123456789abcdef0123456789abcdef'));

describe('LocalUrlSigner', () => {
  it('signs deterministically with a URL-safe signature', () => {
    const signature = signer.sign(PUT_GRANT);
    expect(signature).toBe(signer.sign({ ...PUT_GRANT }));
    expect(signature).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it.each([
    ['an upload grant', PUT_GRANT],
    ['a download grant', GET_GRANT],
  ])('verifies %s it signed', (_name, grant) => {
    expect(signer.verify(grant, signer.sign(grant), NOW_MS)).toEqual({ ok: true });
  });

  it('verifies up to the last millisecond before expiry', () => {
    expect(signer.verify(PUT_GRANT, signer.sign(PUT_GRANT), PUT_GRANT.expiresAtSeconds * 1000 - 1)).toEqual({
      ok: true,
    });
  });

  const signature = signer.sign(PUT_GRANT);
  const flipLast = (value: string) => value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A');

  it.each<[string, LocalGrant, string | undefined, RegExp]>([
    ['a tampered signature', PUT_GRANT, flipLast(signature), /signature does not match/],
    ['a truncated signature', PUT_GRANT, signature.slice(0, -2), /signature does not match/],
    ['a longer signature', PUT_GRANT, `${signature}AA`, /signature does not match/],
    [
      'a signature in another encoding',
      PUT_GRANT,
      Buffer.from(signature, 'base64url').toString('hex'),
      /signature does not match/,
    ],
    ['another key', { ...PUT_GRANT, key: 'dev/audio-clips/other.m4a' }, signature, /signature does not match/],
    [
      'another prefix',
      { ...PUT_GRANT, key: PUT_GRANT.key.replace(/^dev/, 'prod') },
      signature,
      /signature does not match/,
    ],
    ['another method', { ...PUT_GRANT, method: 'GET' }, signature, /signature does not match/],
    ['another content type', { ...PUT_GRANT, contentType: 'audio/webm' }, signature, /signature does not match/],
    ['no content type', { ...PUT_GRANT, contentType: undefined }, signature, /signature does not match/],
    ['another length', { ...PUT_GRANT, contentLength: 123457 }, signature, /signature does not match/],
    ['no length', { ...PUT_GRANT, contentLength: undefined }, signature, /signature does not match/],
    [
      'a later expiry',
      { ...PUT_GRANT, expiresAtSeconds: PUT_GRANT.expiresAtSeconds + 3600 },
      signature,
      /signature does not match/,
    ],
    ['a missing signature', PUT_GRANT, undefined, /not signed/],
    ['an empty signature', PUT_GRANT, '', /not signed/],
    ['a NaN expiry (no expires parameter)', { ...PUT_GRANT, expiresAtSeconds: Number.NaN }, signature, /not signed/],
    [
      'a fractional expiry',
      { ...PUT_GRANT, expiresAtSeconds: PUT_GRANT.expiresAtSeconds + 0.5 },
      signature,
      /not signed/,
    ],
  ])('refuses %s', (_name, grant, given, reason) => {
    const verdict = signer.verify(grant, given, NOW_MS);
    expect(verdict.ok).toBe(false);
    expect(verdict.ok === false && verdict.reason).toMatch(reason);
  });

  it('refuses a download signature used for an upload of the same key, and the other way round', () => {
    const getAsPut = signer.verify({ ...GET_GRANT, method: 'PUT' }, signer.sign(GET_GRANT), NOW_MS);
    const putAsGet = signer.verify(
      { method: 'GET', key: PUT_GRANT.key, expiresAtSeconds: PUT_GRANT.expiresAtSeconds },
      signature,
      NOW_MS,
    );
    expect(getAsPut.ok).toBe(false);
    expect(putAsGet.ok).toBe(false);
  });

  it('refuses a grant signed with another secret', () => {
    const other = new LocalUrlSigner(Buffer.from('another-secret-another-secret-xx'));
    const verdict = signer.verify(PUT_GRANT, other.sign(PUT_GRANT), NOW_MS);
    expect(verdict).toEqual({ ok: false, reason: expect.stringMatching(/signature does not match/) });
  });

  it.each([
    ['exactly at expiry', PUT_GRANT.expiresAtSeconds * 1000],
    ['a second after expiry', PUT_GRANT.expiresAtSeconds * 1000 + 1000],
    ['a day after expiry', PUT_GRANT.expiresAtSeconds * 1000 + 86_400_000],
  ])('refuses a correctly signed grant %s', (_name, nowMs) => {
    const verdict = signer.verify(PUT_GRANT, signature, nowMs);
    expect(verdict).toEqual({ ok: false, reason: expect.stringMatching(/expired/) });
  });
});
