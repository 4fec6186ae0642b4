import type { DeletionRequest } from '../storage/storage-deletions.repository';
import type { AudioClip } from './audio-clip.entity';

/**
 * Both objects a clip may have. Its audio can go at once; its upload key only for good once no upload
 * URL can write it again, so that deletion is repeated when the last URL has run out.
 */
export function deletionsFor(clip: Pick<AudioClip, 'storageKey' | 'uploadKey' | 'uploadExpiresAt'>, now: Date): DeletionRequest[] {
  const uploadOpenUntil = clip.uploadExpiresAt && clip.uploadExpiresAt > now ? clip.uploadExpiresAt : now;
  return clip.uploadKey === clip.storageKey
    ? [{ storageKey: clip.storageKey, deleteAfter: uploadOpenUntil }]
    : [
        { storageKey: clip.storageKey, deleteAfter: now },
        { storageKey: clip.uploadKey, deleteAfter: uploadOpenUntil },
      ];
}
