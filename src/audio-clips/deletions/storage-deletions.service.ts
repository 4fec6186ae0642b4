import { Inject, Injectable } from '@nestjs/common';
import { STORAGE_DRIVER, type StorageDriver } from '../../storage/storage-driver';
import { AudioClipsRepository } from '../audio-clips.repository';
import { RenditionsRepository } from '../../renditions/renditions.repository';
import { deletionsOfGoneClip, type GoneClip } from './deletion-rules';
import type { StorageDeletion } from './storage-deletion.entity';
import { StorageDeletionsRepository, type DeletionRequest } from './storage-deletions.repository';

const BATCH_SIZE = 100;
/** How long an entry is ours once claimed; long enough for one store call, short enough to recover from a crash. */
const CLAIM_MS = 60_000;
/** A key still in use by a clip is looked at again later, and forgotten after a day. */
const REFERENCED_RETRY_MS = 10 * 60_000;
const REFERENCED_GIVE_UP_MS = 24 * 60 * 60_000;
const READY_GRACE_MS = 5 * 60_000;
const PASS_BUDGET_MS = 20_000;
/** Deleting objects after a delete is tried at once, but the answer does not wait on a slow store for longer than this. */
const IMMEDIATE_DELETE_WAIT_MS = 1_000;

export interface DeletionPass {
  deletedObjects: number;
  failedDeletions: number;
}

/**
 * Deleting stored objects, in one place. Whoever makes an object unneeded (a clip or note deleted, an
 * upload failed, expired or moved) records it here before changing the rows that name it, so a crash
 * or an unreachable store never orphans it; then the deletion is tried at once (`deleteSoon`) and
 * retried with back-off by the janitor's pass (`processDue`) until the store confirms it. A key still
 * used by a clip is never deleted. Safe with several instances on one database: each entry is claimed
 * with a conditional update that only one of them can win.
 */
@Injectable()
export class StorageDeletionsService {
  constructor(
    private readonly outbox: StorageDeletionsRepository,
    private readonly clips: AudioClipsRepository,
    private readonly renditions: RenditionsRepository,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
  ) {}

  /**
   * The deletions of clips that are gone (deleted, failed, expired), with what their still-valid upload
   * URLs can write held against their owner where this store cannot revoke the URLs.
   */
  ofGoneClips(clips: readonly GoneClip[], now: Date): DeletionRequest[] {
    return clips.flatMap((clip) => deletionsOfGoneClip(clip, now, this.storage));
  }

  /** Records that these objects must go; recording a key again keeps its later `deleteAfter`. */
  record(requests: DeletionRequest[], now: Date, firstAttemptAt: Date = now): Promise<void> {
    return this.outbox.enqueue(requests, now, firstAttemptAt);
  }

  /** Tries the recorded deletions of these keys at once, waiting at most a moment; the janitor finishes what is left. */
  async deleteSoon(storageKeys: string[]): Promise<void> {
    const attempt = this.deleteNow(storageKeys).catch(() => undefined);
    await Promise.race([attempt, new Promise((resolve) => setTimeout(resolve, IMMEDIATE_DELETE_WAIT_MS).unref())]);
  }

  /**
   * Works through the due entries, batch after batch, within a time budget so one pass never runs on
   * for long, and stops between two entries once `shouldStop` says so.
   */
  async processDue(now: Date, shouldStop: () => boolean = () => false): Promise<DeletionPass> {
    let deletedObjects = 0;
    let failedDeletions = 0;
    const stopAt = Date.now() + PASS_BUDGET_MS;
    for (
      let batch = await this.outbox.findDue(now, BATCH_SIZE);
      batch.length > 0 && Date.now() < stopAt && !shouldStop();
      batch = await this.outbox.findDue(now, BATCH_SIZE)
    ) {
      let claimedAny = false;
      for (const entry of batch) {
        // Between two entries is a clean place to stop (a drain): nothing is left claimed or half done.
        if (shouldStop()) break;
        const outcome = await this.claimAndProcess(entry, now);
        if (outcome === null) continue;
        claimedAny = true;
        if (outcome === 'deleted') deletedObjects += 1;
        if (outcome === 'failed') failedDeletions += 1;
      }
      if (!claimedAny) break; // another instance holds them all
    }
    return { deletedObjects, failedDeletions };
  }

  /** Entries still recorded: objects not yet deleted, or deleted but to be deleted once more after their upload URL has run out. */
  remaining(): Promise<number> {
    return this.outbox.count();
  }

  private async deleteNow(storageKeys: string[]): Promise<void> {
    const now = new Date();
    for (const entry of await this.outbox.find(storageKeys)) {
      await this.claimAndProcess(entry, now);
    }
  }

  /** Works the entry if this caller can claim it; `null` when another worker or a new record got there first. */
  private async claimAndProcess(entry: StorageDeletion, now: Date): Promise<'deleted' | 'failed' | 'skipped' | null> {
    const claimed = await this.outbox.claim(entry, new Date(now.getTime() + CLAIM_MS));
    return claimed ? this.process(claimed, now) : null;
  }

  private async process(entry: StorageDeletion, now: Date): Promise<'deleted' | 'failed' | 'skipped'> {
    const use = (await this.clips.keyUse(entry.storageKey)) ?? (await this.renditions.keyUse(entry.storageKey));
    if (use !== null) {
      // A ready clip's audio stays, and its deletion is recorded anew when the clip is deleted. But a
      // delete records that first and removes the row a moment later: an entry recorded just now may
      // be that delete, so it is only forgotten once it is older than that moment could be. A pending
      // clip's keys may yet be needed (or not, if it fails or expires): look again later.
      const age = now.getTime() - entry.createdAt.getTime();
      if ((use === 'ready' && age > READY_GRACE_MS) || age > REFERENCED_GIVE_UP_MS) await this.outbox.remove(entry);
      else
        await this.outbox.reschedule(
          entry,
          new Date(now.getTime() + (use === 'ready' ? READY_GRACE_MS : REFERENCED_RETRY_MS)),
          entry.attempts,
          `still used by a ${use} clip`,
        );
      return 'skipped';
    }
    try {
      // Abandoned multipart upload: its parts are stored (and billed) apart from any object until aborted.
      if (entry.multipartUploadId) await this.storage.abortMultipartUpload(entry.storageKey, entry.multipartUploadId);
      await this.storage.delete(entry.storageKey);
    } catch (error) {
      const attempts = entry.attempts + 1;
      // 5 s, 10 s, 20 s … up to an hour between tries while the store is down.
      const backoffMs = Math.min(60 * 60_000, 5_000 * 2 ** Math.min(attempts - 1, 10));
      await this.outbox.reschedule(
        entry,
        new Date(now.getTime() + backoffMs),
        attempts,
        error instanceof Error ? error.message : String(error),
      );
      return 'failed';
    }
    // A PUT URL may still be valid: delete once more when it has run out, then forget the key (and
    // stop charging its owner). Parts sent to an aborted multipart upload are refused, so its hold ends now.
    if (now >= entry.deleteAfter) await this.outbox.remove(entry);
    else
      await this.outbox.reschedule(
        entry,
        entry.deleteAfter,
        entry.attempts,
        null,
        entry.multipartUploadId !== null && entry.heldBytes !== null,
      );
    return 'deleted';
  }
}
