import { createHash, createHmac, createSecretKey, type Hash, type Hmac, type KeyObject } from 'node:crypto';

type SourceData = string | ArrayBuffer | ArrayBufferView;

/** Enough for every secret and daily signing key a process meets; a full cache is simply dropped. */
const MAX_CACHED_KEYS = 64;
const keyObjects = new Map<string, KeyObject>();

/**
 * The SHA-256 / HMAC-SHA256 primitive the AWS SDK's SigV4 signer runs on (its documented `sha256`
 * option), with one change from the SDK's own: HMAC keys are turned into `KeyObject`s once and reused.
 *
 * Why: on Node 24, `createHmac` with raw key bytes builds a KeyObject on every call, several times the
 * cost of the HMAC itself (`npm run bench:signing`, docs/PERFORMANCE.md), and signing one URL makes two
 * keyed HMACs. The signing algorithm is still entirely the SDK's; this only computes the digests it
 * asks for, identically.
 */
export class Sha256WithKeyCache {
  readonly digestLength = 32;
  private readonly secret?: SourceData;
  private hash: Hash | Hmac;
  private finished = false;

  constructor(secret?: SourceData) {
    // As the SDK's own: any truthy secret (an empty Uint8Array included) means HMAC, none or '' a plain hash.
    this.secret = secret ? secret : undefined;
    this.hash = this.start();
  }

  update(data: SourceData): void {
    if (this.finished) throw new Error('Attempted to update an already finished hash.');
    this.hash.update(typeof data === 'string' ? data : toBuffer(data));
  }

  async digest(): Promise<Uint8Array> {
    // As the SDK's own: a plain hash may be digested again (a copy is finished), an HMAC only once.
    let digest: Buffer;
    if (this.secret === undefined) {
      digest = (this.hash as Hash).copy().digest();
    } else {
      this.finished = true;
      digest = this.hash.digest();
    }
    return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
  }

  reset(): void {
    this.hash = this.start();
    this.finished = false;
  }

  private start(): Hash | Hmac {
    if (this.secret === undefined) return createHash('sha256');
    const key = typeof this.secret === 'string' ? Buffer.from(this.secret, 'utf8') : toBuffer(this.secret);
    // An empty key is never met in SigV4: not worth a cache entry.
    return key.length === 0 ? createHmac('sha256', key) : createHmac('sha256', keyObjectFor(key));
  }
}

/**
 * Keyed by a digest of the key, not the key itself, so the map holds no secret in readable form; the
 * KeyObjects do (as the SDK's own signing-key cache does), and a rotated secret's entries go when the
 * bounded map is next emptied.
 */
function keyObjectFor(key: Buffer): KeyObject {
  const id = createHash('sha256').update(key).digest('base64');
  let keyObject = keyObjects.get(id);
  if (keyObject === undefined) {
    if (keyObjects.size >= MAX_CACHED_KEYS) keyObjects.clear();
    keyObject = createSecretKey(key);
    keyObjects.set(id, keyObject);
  }
  return keyObject;
}

/** How many keys are cached now (for the tests of the bound). */
export function cachedKeyCount(): number {
  return keyObjects.size;
}

function toBuffer(data: ArrayBuffer | ArrayBufferView): Buffer {
  return ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);
}
