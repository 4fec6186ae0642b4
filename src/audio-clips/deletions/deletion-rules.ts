import type { DeletionRequest } from './storage-deletions.repository';
import { AudioClipStatus, type AudioClip } from '../audio-clip.entity';
import { buildRenditionKey, RENDITION_FORMAT_NAMES } from '../../renditions/rendition-formats';

/**
 * A store checks a presigned URL's expiry when the request starts, so a long upload begun just before
 * can still be landing well after it; the last delete of an upload key waits this long beyond.
 */
export const UPLOAD_GRACE_MS = 60 * 60_000;

/** Until when an upload key may still receive bytes. */
export function uploadOpenUntil(uploadExpiresAt: Date): Date {
  return new Date(uploadExpiresAt.getTime() + UPLOAD_GRACE_MS);
}

// The status is required: a ready clip's renditions are among its objects, so a caller that left it out
// would leave them behind.
type ClipKeys = Pick<AudioClip, 'storageKey' | 'uploadKey' | 'uploadExpiresAt' | 'multipartUploadId' | 'status'>;
/** What the deletions of a clip that is gone need: its keys, its owner and its declared bytes. */
export type GoneClip = ClipKeys & Pick<AudioClip, 'ownerId' | 'bytes'>;

/**
 * Every object a clip may have: its audio, its upload, and (once ready) the renditions the server made
 * of it, which go at once with the audio. Its audio can go at once; its upload key only for good once no upload
 * can land in it any more, so that deletion is repeated then.
 */
export function deletionsFor(clip: ClipKeys, now: Date): DeletionRequest[] {
  const openUntil = clip.uploadExpiresAt ? uploadOpenUntil(clip.uploadExpiresAt) : now;
  const uploadOpenUntilOrNow = openUntil > now ? openUntil : now;
  // A multipart upload's parts sit in the store until it is completed or aborted: the upload key's
  // entry carries its id, so the janitor aborts it before deleting the key.
  const multipartUploadId = clip.multipartUploadId ?? null;
  const renditions =
    clip.status === AudioClipStatus.Ready
      ? RENDITION_FORMAT_NAMES.map((format) => ({
          storageKey: buildRenditionKey(clip.storageKey, format),
          deleteAfter: now,
        }))
      : [];
  return [...renditions, ...ownKeys(clip, now, uploadOpenUntilOrNow, multipartUploadId)];
}

function ownKeys(
  clip: ClipKeys,
  now: Date,
  uploadOpenUntilOrNow: Date,
  multipartUploadId: string | null,
): DeletionRequest[] {
  return clip.uploadKey === clip.storageKey
    ? [{ storageKey: clip.storageKey, deleteAfter: uploadOpenUntilOrNow, multipartUploadId }]
    : [
        { storageKey: clip.storageKey, deleteAfter: now },
        { storageKey: clip.uploadKey, deleteAfter: uploadOpenUntilOrNow, multipartUploadId },
      ];
}

/**
 * The deletions of a clip that is gone: deleted (in any state), failed or expired. A store that cannot
 * revoke a signed URL keeps taking bytes through the clip's upload URL until it has run out (plus the
 * grace for an upload already under way), up to the clip's declared bytes since the URL signs its
 * Content-Length. Those bytes are then held against the owner on the upload key's entry, exactly as a
 * pending upload is, until the last delete of the key removes the entry. A multipart upload's parts are
 * refused once the upload is aborted, which the outbox does first: its hold ends with the abort.
 */
export function deletionsOfGoneClip(
  clip: GoneClip,
  now: Date,
  store: { revokesUploadUrls: boolean },
): DeletionRequest[] {
  const requests = deletionsFor(clip, now);
  const urlStillValid = clip.uploadExpiresAt !== null && uploadOpenUntil(clip.uploadExpiresAt) > now;
  if (store.revokesUploadUrls || !urlStillValid) return requests;
  return requests.map((request) =>
    request.storageKey === clip.uploadKey ? { ...request, ownerId: clip.ownerId, heldBytes: clip.bytes } : request,
  );
}
