import type { DeletionRequest } from './storage-deletions.repository';
import type { AudioClip } from '../audio-clip.entity';

/**
 * A store checks a presigned URL's expiry when the request starts, so a long upload begun just before
 * can still be landing well after it; the last delete of an upload key waits this long beyond.
 */
export const UPLOAD_GRACE_MS = 60 * 60_000;

/** Until when an upload key may still receive bytes. */
export function uploadOpenUntil(uploadExpiresAt: Date): Date {
  return new Date(uploadExpiresAt.getTime() + UPLOAD_GRACE_MS);
}

/**
 * Both objects a clip may have. Its audio can go at once; its upload key only for good once no upload
 * can land in it any more, so that deletion is repeated then.
 */
export function deletionsFor(
  clip: Pick<AudioClip, 'storageKey' | 'uploadKey' | 'uploadExpiresAt' | 'multipartUploadId'>,
  now: Date,
): DeletionRequest[] {
  const openUntil = clip.uploadExpiresAt ? uploadOpenUntil(clip.uploadExpiresAt) : now;
  const uploadOpenUntilOrNow = openUntil > now ? openUntil : now;
  // A multipart upload's parts sit in the store until it is completed or aborted: the upload key's
  // entry carries its id, so the janitor aborts it before deleting the key.
  const multipartUploadId = clip.multipartUploadId ?? null;
  return clip.uploadKey === clip.storageKey
    ? [{ storageKey: clip.storageKey, deleteAfter: uploadOpenUntilOrNow, multipartUploadId }]
    : [
        { storageKey: clip.storageKey, deleteAfter: now },
        { storageKey: clip.uploadKey, deleteAfter: uploadOpenUntilOrNow, multipartUploadId },
      ];
}
