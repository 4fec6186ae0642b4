import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../config/app-config';
import { STORAGE_DRIVER, type StorageDriver } from '../storage/storage-driver';
import { AudioClipsRepository } from './audio-clips.repository';
import { deletionsFor } from './deletions/deletion-rules';
import { StorageDeletionsService } from './deletions/storage-deletions.service';
import { IdempotencyKeysRepository } from './idempotency-keys.repository';

const BATCH_SIZE = 100;
/** A temporary upload file untouched this long (at least) was left by a crash. */
const STALE_UPLOAD_MIN_MS = 10 * 60_000;
const IDEMPOTENCY_KEY_LIFETIME_MS = 24 * 60 * 60_000;

export interface JanitorReport {
  expiredClips: number;
  deletedObjects: number;
  failedDeletions: number;
  remainingDeletions: number;
}

/**
 * The periodic pass (inside the app every JANITOR_INTERVAL_SECONDS, or `npm run sweep`): expires uploads
 * never completed, has StorageDeletionsService work through the objects to delete (retrying while the
 * store is down), and forgets old idempotency keys. Safe with several instances on one database: every
 * state change is a conditional update that only one of them can win.
 */
@Injectable()
export class AudioClipJanitor implements OnApplicationBootstrap {
  private readonly logger = new Logger(AudioClipJanitor.name);
  private running: Promise<JanitorReport> | null = null;

  constructor(
    private readonly clips: AudioClipsRepository,
    private readonly deletions: StorageDeletionsService,
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

  private async pass(now: Date): Promise<JanitorReport> {
    const expiredClips = await this.expireStalledUploads(now);
    // A live upload writes to its temporary file at least once per idle timeout, or is cut off.
    const staleBefore = new Date(now.getTime() - Math.max(2 * this.config.http.idleTimeoutMs, STALE_UPLOAD_MIN_MS));
    await this.storage.sweepIncoming?.(staleBefore);
    const { deletedObjects, failedDeletions } = await this.deletions.processDue(now);
    await this.idempotencyKeys.deleteOlderThan(new Date(now.getTime() - IDEMPOTENCY_KEY_LIFETIME_MS));
    return { expiredClips, deletedObjects, failedDeletions, remainingDeletions: await this.deletions.remaining() };
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
      await this.deletions.record(deletionsFor(clip, now), now);
      if (await this.clips.markExpired(clip.id, cutoff, now)) expired += 1;
    }
    return expired;
  }
}
