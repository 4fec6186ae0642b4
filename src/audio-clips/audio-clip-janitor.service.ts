import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../config/app-config';
import { StorageDeletion } from '../storage/storage-deletion.entity';
import { StorageDeletionsRepository } from '../storage/storage-deletions.repository';
import { STORAGE_DRIVER, type StorageDriver } from '../storage/storage-driver';
import { AudioClipsRepository } from './audio-clips.repository';
import { deletionsFor } from './clip-deletions';
import { IdempotencyKeysRepository } from './idempotency-keys.repository';

const BATCH_SIZE = 100;
/** How long an entry is ours once claimed; long enough for one store call, short enough to recover from a crash. */
const CLAIM_MS = 60_000;
/** A key still in use by a clip is looked at again later, and forgotten after a day. */
const REFERENCED_RETRY_MS = 10 * 60_000;
const REFERENCED_GIVE_UP_MS = 24 * 60 * 60_000;
const IDEMPOTENCY_KEY_LIFETIME_MS = 24 * 60 * 60_000;
const PASS_BUDGET_MS = 20_000;
const READY_GRACE_MS = 5 * 60_000;

export interface JanitorReport {
  expiredClips: number;
  deletedObjects: number;
  failedDeletions: number;
  remainingDeletions: number;
}

/**
 * Keeps storage and rows in step: expires uploads never completed, and works through the outbox of
 * objects to delete, retrying while the store is down. Safe with several instances on one database:
 * every state change is a conditional update that only one of them can win.
 */
@Injectable()
export class AudioClipJanitor implements OnApplicationBootstrap {
  private readonly logger = new Logger(AudioClipJanitor.name);
  private running: Promise<JanitorReport> | null = null;

  constructor(
    private readonly clips: AudioClipsRepository,
    private readonly deletions: StorageDeletionsRepository,
    private readonly idempotencyKeys: IdempotencyKeysRepository,
    private readonly config: AppConfig,
    private readonly scheduler: SchedulerRegistry,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
  ) {}

  onApplicationBootstrap(): void {
    const seconds = this.config.lifecycle.janitorIntervalSeconds;
    if (seconds === 0) return;
    const timer = setInterval(() => {
      this.runOnce().catch((error: unknown) => this.logger.error(`Janitor run failed: ${String(error)}`));
    }, seconds * 1000);
    timer.unref();
    this.scheduler.addInterval(AudioClipJanitor.name, timer);
  }

  /** One full pass; overlapping calls in one process share the pass already under way. */
  runOnce(now = new Date()): Promise<JanitorReport> {
    this.running ??= this.pass(now).finally(() => (this.running = null));
    return this.running;
  }

  /** Deletes these keys now if they are due (used right after a delete, so the API answers with the work done). */
  async deleteNow(storageKeys: string[]): Promise<void> {
    const now = new Date();
    for (const entry of await this.deletions.find(storageKeys)) {
      await this.claimAndProcess(entry, now);
    }
  }

  private async pass(now: Date): Promise<JanitorReport> {
    const expiredClips = await this.expireStalledUploads(now);
    let deletedObjects = 0;
    let failedDeletions = 0;
    // Batch after batch while there is due work, within a time budget so one pass never runs on for long.
    const stopAt = Date.now() + PASS_BUDGET_MS;
    for (
      let batch = await this.deletions.findDue(now, BATCH_SIZE);
      batch.length > 0 && Date.now() < stopAt;
      batch = await this.deletions.findDue(now, BATCH_SIZE)
    ) {
      let claimedAny = false;
      for (const entry of batch) {
        const outcome = await this.claimAndProcess(entry, now);
        if (outcome === null) continue;
        claimedAny = true;
        if (outcome === 'deleted') deletedObjects += 1;
        if (outcome === 'failed') failedDeletions += 1;
      }
      if (!claimedAny) break; // another instance holds them all
    }
    await this.idempotencyKeys.deleteOlderThan(new Date(now.getTime() - IDEMPOTENCY_KEY_LIFETIME_MS));
    return { expiredClips, deletedObjects, failedDeletions, remainingDeletions: await this.deletions.count() };
  }

  /**
   * pending → expired for uploads older than the TTL whose last URL has run out. The deletions are
   * recorded first: if the expiry then loses to a completion, the janitor finds the key still in use
   * and leaves it.
   */
  private async expireStalledUploads(now: Date): Promise<number> {
    const cutoff = new Date(now.getTime() - this.config.lifecycle.uploadTtlSeconds * 1000);
    let expired = 0;
    for (const clip of await this.clips.findExpirable(cutoff, now, BATCH_SIZE)) {
      await this.deletions.enqueue(deletionsFor(clip, now), now);
      if (await this.clips.markExpired(clip.id, cutoff, now)) expired += 1;
    }
    return expired;
  }

  /** Works the entry if this caller can claim it; `null` when another worker or a new enqueue got there first. */
  private async claimAndProcess(entry: StorageDeletion, now: Date): Promise<'deleted' | 'failed' | 'skipped' | null> {
    const claimed = await this.deletions.claim(entry, new Date(now.getTime() + CLAIM_MS));
    return claimed ? this.process(claimed, now) : null;
  }

  private async process(entry: StorageDeletion, now: Date): Promise<'deleted' | 'failed' | 'skipped'> {
    const use = await this.clips.keyUse(entry.storageKey);
    if (use !== null) {
      // A ready clip's audio stays, and its deletion is recorded anew when the clip is deleted. But a
      // delete records that first and removes the row a moment later: an entry recorded just now may
      // be that delete, so it is only forgotten once it is older than that moment could be. A pending
      // clip's keys may yet be needed (or not, if it fails or expires): look again later.
      const age = now.getTime() - entry.createdAt.getTime();
      if ((use === 'ready' && age > READY_GRACE_MS) || age > REFERENCED_GIVE_UP_MS) await this.deletions.remove(entry);
      else
        await this.deletions.reschedule(
          entry,
          new Date(now.getTime() + (use === 'ready' ? READY_GRACE_MS : REFERENCED_RETRY_MS)),
          entry.attempts,
          `still used by a ${use} clip`,
        );
      return 'skipped';
    }
    try {
      await this.storage.delete(entry.storageKey);
    } catch (error) {
      const attempts = entry.attempts + 1;
      // 5 s, 10 s, 20 s … up to an hour between tries while the store is down.
      const backoffMs = Math.min(60 * 60_000, 5_000 * 2 ** Math.min(attempts - 1, 10));
      await this.deletions.reschedule(
        entry,
        new Date(now.getTime() + backoffMs),
        attempts,
        error instanceof Error ? error.message : String(error),
      );
      return 'failed';
    }
    // A PUT URL may still be valid: delete once more when it has run out, then forget the key.
    if (now >= entry.deleteAfter) await this.deletions.remove(entry);
    else await this.deletions.reschedule(entry, entry.deleteAfter, entry.attempts, null);
    return 'deleted';
  }
}
