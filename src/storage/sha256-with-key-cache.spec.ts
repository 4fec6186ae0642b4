import { createHash, createHmac } from 'node:crypto';
import { cachedKeyCount, Sha256WithKeyCache } from './sha256-with-key-cache';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const backing = Buffer.from('xx' + 'a signing key of thirty-two bytes' + 'yy');

describe('Sha256WithKeyCache', () => {
  it.each([
    [
      'a string secret',
      'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      Buffer.from('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'),
    ],
    ['a non-ASCII string secret', 'clé secrète ✓', Buffer.from('clé secrète ✓', 'utf8')],
    ['a Buffer key', Buffer.alloc(32, 7), Buffer.alloc(32, 7)],
    [
      'a Uint8Array view into a larger buffer',
      new Uint8Array(backing.buffer, backing.byteOffset + 2, backing.length - 4),
      backing.subarray(2, backing.length - 2),
    ],
    ['an ArrayBuffer', new Uint8Array([1, 2, 3, 4, 5]).buffer, Buffer.from([1, 2, 3, 4, 5])],
    ['an empty Uint8Array key', new Uint8Array(0), Buffer.alloc(0)],
    ['a key longer than the block size', 'k'.repeat(200), Buffer.from('k'.repeat(200))],
  ])('computes the same HMAC-SHA256 as node:crypto with %s', async (_name, secret, rawKey) => {
    for (let round = 0; round < 3; round += 1) {
      // Second and third rounds come from the cached KeyObject.
      const hash = new Sha256WithKeyCache(secret);
      hash.update('AWS4-HMAC-SHA256\n');
      hash.update(Buffer.from('20261127T100000Z\n'));
      hash.update(new Uint8Array([0, 255, 10]));
      expect(hex(await hash.digest())).toBe(
        createHmac('sha256', rawKey)
          .update('AWS4-HMAC-SHA256\n20261127T100000Z\n')
          .update(Buffer.from([0, 255, 10]))
          .digest('hex'),
      );
    }
  });

  it('computes plain SHA-256 without a secret, and can digest it again', async () => {
    const hash = new Sha256WithKeyCache();
    hash.update('GET\n/b/key\n');
    const expected = createHash('sha256').update('GET\n/b/key\n').digest('hex');
    expect(hex(await hash.digest())).toBe(expected);
    expect(hex(await hash.digest())).toBe(expected);
    expect(hex(await new Sha256WithKeyCache().digest())).toBe(createHash('sha256').digest('hex'));
    // As the SDK's own class: an empty string secret means a plain hash, not an HMAC with an empty key.
    const empty = new Sha256WithKeyCache('');
    empty.update('x');
    expect(hex(await empty.digest())).toBe(createHash('sha256').update('x').digest('hex'));
  });

  it('refuses an update after an HMAC was digested, and starts over after reset', async () => {
    const hash = new Sha256WithKeyCache('secret');
    hash.update('one');
    await hash.digest();
    expect(() => hash.update('two')).toThrow('already finished');
    hash.reset();
    hash.update('two');
    expect(hex(await hash.digest())).toBe(createHmac('sha256', 'secret').update('two').digest('hex'));
  });

  it('keys that differ by one byte give different MACs (the cache is keyed by the whole key)', async () => {
    const a = new Sha256WithKeyCache(Buffer.alloc(32, 1));
    const b = new Sha256WithKeyCache(Buffer.from([...Buffer.alloc(31, 1), 2]));
    a.update('same');
    b.update('same');
    expect(hex(await a.digest())).not.toBe(hex(await b.digest()));
  });

  it('keeps at most 64 keys however many it meets, and stays correct past the bound', async () => {
    for (let i = 0; i < 200; i += 1) {
      const key = `daily-signing-key-${i}`;
      const hash = new Sha256WithKeyCache(key);
      hash.update('data');
      expect(hex(await hash.digest())).toBe(createHmac('sha256', key).update('data').digest('hex'));
      expect(cachedKeyCount()).toBeLessThanOrEqual(64);
    }
  });
});
