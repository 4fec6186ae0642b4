import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/** What a local storage URL grants: one method on one key until a time, and for uploads one exact type and size. */
export interface LocalGrant {
  method: 'PUT' | 'GET';
  key: string;
  expiresAtSeconds: number;
  contentType?: string;
  contentLength?: number;
  contentMd5?: string;
  /** A part of a multipart upload: the grant is for that upload and part only. */
  part?: { uploadId: string; partNumber: number };
}

export type GrantVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Signs local-driver URLs the way S3 signs presigned ones: the signature covers the method, the key,
 * the expiry and (for uploads) the content type and length, so none of them can be changed or replayed.
 */
export class LocalUrlSigner {
  /** Made once: HMAC with raw key bytes builds a KeyObject on every call (see Sha256WithKeyCache). */
  private readonly key: KeyObject;

  constructor(secret: Buffer) {
    this.key = createSecretKey(secret);
  }

  sign(grant: LocalGrant): string {
    const canonical = [
      grant.method,
      grant.key,
      grant.expiresAtSeconds,
      grant.contentType ?? '',
      grant.contentLength ?? '',
      grant.contentMd5 ?? '',
      // Only part grants have these lines, so no grant of one kind ever signs like one of the other.
      ...(grant.part ? ['part', grant.part.uploadId, grant.part.partNumber] : []),
    ].join('\n');
    return createHmac('sha256', this.key).update(canonical).digest('base64url');
  }

  verify(grant: LocalGrant, signature: string | undefined, nowMs = Date.now()): GrantVerdict {
    if (!signature || !Number.isSafeInteger(grant.expiresAtSeconds))
      return { ok: false, reason: 'The URL is not signed.' };
    const expected = Buffer.from(this.sign(grant));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      return {
        ok: false,
        reason: 'The URL signature does not match this request (changed URL, method, type or length).',
      };
    }
    if (grant.expiresAtSeconds * 1000 <= nowMs)
      return { ok: false, reason: 'The URL has expired. Ask the API for a new one.' };
    return { ok: true };
  }
}
