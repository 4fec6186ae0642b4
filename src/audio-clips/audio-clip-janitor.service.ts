import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../config/app-config';
import type { AudioClip } from './audio-clip.entity';
import { STORAGE_DRIVER, type StorageDriver } from '../storage/storage-driver';
import { AudioClipsRepository } from './audio-clips.repository';
import { AudioClipsService, type ServerCompletionOutcome } from './audio-clips.service';
import { UPLOAD_GRACE_MS } from './deletions/deletion-rules';
import { StorageDeletionsService } from './deletions/storage-deletions.service';
import { IdempotencyKeysRepository } from '../idempotency/idempotency-keys.repository';
import { IDEMPOTENCY_KEY_LIFETIME_MS } from '../idempotency/idempotency';
import { JanitorTasks } from './janitor-tasks';
import { nextUploadCheck } from './upload-checks';
import { Metrics } from '../operations/metrics';
import { ShutdownState } from '../operations/shutdown-state';
import { SyncService } from '../sync/sync.service';

const BATCH_SIZE = 100;
/** A temporary upload file untouched this long (at least) was left by a crash. */
const STALE_UPLOAD_MIN_MS = 10 * 60_000;
/** A look at an upload that was claimed but never finished (a crash) is taken up again after this. */
const LOOK_CLAIM_MS = 60_000;
/** The store could not be reached during a look: look again after this. */
const LOOK_RETRY_MS = 60_000;
const PASS_BUDGET_MS = 20_000;

export interface JanitorReport {
  /** Uploads the phone never completed, completed by this pass (`completed_by: "server"`). */
  completedClips: number;
  /** Uploads never completed that were not the declared audio (or, at the last look, size or type). */
  failedClips: number;
  /** Clips with nothing uploaded, past the TTL. */
  expiredClips: number;
  deletedObjects: number;
  failedDeletions: number;
  remainingDeletions: number;
  /** Tombstones of deletions older than SYNC_TOMBSTONE_TTL_SECONDS, forgotten by the change feed. */
  purgedTombstones: number;
}

/**
 * The periodic pass (inside the app every JANITOR_INTERVAL_SECONDS, or `npm run sweep`): completes
 * uploads the phone never completed, expires clips with nothing uploaded, has StorageDeletionsService
 * work through the objects to delete (retrying while the store is down), and forgets old idempotency
 * keys. Safe with several instances on one database: every state change is a conditional update that
 * only one of them can win.
 */
@Injectable()
export class AudioClipJanitor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(AudioClipJanitor.name);
  private running: Promise<JanitorReport> | null = null;
  private stopped = false;

  constructor(
    private readonly clips: AudioClipsRepository,
    private readonly completion: AudioClipsService,
    private readonly deletions: StorageDeletionsService,
    private readonly idempotencyKeys: IdempotencyKeysRepository,
    private readonly config: AppConfig,
    private readonly scheduler: SchedulerRegistry,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
    private readonly metrics: Metrics,
    private readonly shutdown: ShutdownState,
    private readonly sync: SyncService,
    private readonly tasks: JanitorTasks,
  ) {
    metrics.measureDeletionBacklog(() => this.deletions.remaining());
  }

  onApplicationBootstrap(): void {
    const seconds = this.config.lifecycle.janitorIntervalSeconds;
    if (seconds === 0) return;
    const timer = setInterval(() => {
      this.runOnce().catch((error: unknown) => this.logger.error(`Janitor run failed: ${String(error)}`));
    }, seconds * 1000);
    timer.unref();
    this.scheduler.addInterval(AudioClipJanitor.name, timer);
    // A drain starts no new pass; the one under way stops after the entry in hand.
    this.shutdown.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  }

  /** One full pass; overlapping calls in one process share the pass already under way. */
  runOnce(now = new Date()): Promise<JanitorReport> {
    this.running ??= this.measuredPass(now).finally(() => (this.running = null));
    return this.running;
  }

  /** The app closes once the pass under way has stopped (after its current entry when draining). */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    await this.running?.catch(() => undefined);
  }

  private get stopping(): boolean {
    return this.stopped || this.shutdown.draining;
  }

  private async measuredPass(now: Date): Promise<JanitorReport> {
    const stopTimer = this.metrics.janitorDuration.startTimer();
    try {
      const report = await this.pass(now);
      this.metrics.janitorRuns.inc({ outcome: 'success' });
      return report;
    } catch (error) {
      this.metrics.janitorRuns.inc({ outcome: 'error' });
      throw error;
    } finally {
      stopTimer();
    }
  }

  private async pass(now: Date): Promise<JanitorReport> {
    const settled = await this.settleUploadsNeverCompleted(now);
    // A live upload writes to its temporary file at least once per idle timeout, or is cut off.
    const staleBefore = new Date(now.getTime() - Math.max(2 * this.config.http.idleTimeoutMs, STALE_UPLOAD_MIN_MS));
    await this.storage.sweepIncoming?.(staleBefore);
    // Other features' share (expired export archives): it records deletions the outbox then works through.
    for (const task of this.tasks.all) {
      await task
        .run(now)
        .catch((error: unknown) => this.logger.error(`Janitor task ${task.name} failed: ${String(error)}`));
    }
    const { deletedObjects, failedDeletions } = await this.deletions.processDue(now, () => this.stopping);
    await this.idempotencyKeys.deleteOlderThan(new Date(now.getTime() - IDEMPOTENCY_KEY_LIFETIME_MS));
    const purgedTombstones = await this.sync.purgeTombstones(now);
    return {
      ...settled,
      deletedObjects,
      failedDeletions,
      remainingDeletions: await this.deletions.remaining(),
      purgedTombstones,
    };
  }

  /**
   * Pending clips whose phone never called complete: once the upload URL has run out, looks for the
   * upload and completes the clip as `complete` would; past the TTL with nothing uploaded, expires it.
   * Batch after batch within a time budget; each clip is looked at once per pass (claiming a look
   * moves its next look past `now`).
   */
  private async settleUploadsNeverCompleted(
    now: Date,
  ): Promise<Pick<JanitorReport, 'completedClips' | 'failedClips' | 'expiredClips'>> {
    const cutoff = new Date(now.getTime() - this.config.lifecycle.uploadTtlSeconds * 1000);
    const report = { completedClips: 0, failedClips: 0, expiredClips: 0 };
    const stopAt = Date.now() + PASS_BUDGET_MS;
    for (
      let batch = await this.clips.findUploadsToLookFor(now, cutoff, BATCH_SIZE);
      batch.length > 0 && Date.now() < stopAt;
      batch = await this.clips.findUploadsToLookFor(now, cutoff, BATCH_SIZE)
    ) {
      let claimedAny = false;
      for (const clip of batch) {
        if (this.stopping) break;
        const outcome = await this.lookForUpload(clip, now, cutoff);
        if (outcome === null) continue;
        claimedAny = true;
        if (outcome === 'completed') report.completedClips += 1;
        if (outcome === 'failed') report.failedClips += 1;
        if (outcome === 'expired') report.expiredClips += 1;
      }
      if (!claimedAny || this.stopping) break; // another instance holds them all, or the app is draining
    }
    return report;
  }

  /** `null` when another janitor (or a new upload URL) got to the clip first. */
  private async lookForUpload(
    clip: AudioClip,
    now: Date,
    cutoff: Date,
  ): Promise<ServerCompletionOutcome | 'expired' | 'retry' | null> {
    const pastTtl = clip.createdAt < cutoff;
    const nextLook = nextUploadCheck(clip.uploadExpiresAt, now);
    // No upload can land any more past the TTL: this is the last look, and then the clip is settled.
    const lastLook = pastTtl && nextLook === null;
    const claimedUntil = nextLook ?? (lastLook ? new Date(now.getTime() + LOOK_CLAIM_MS) : null);
    if (!(await this.clips.claimUploadLook(clip.id, now, cutoff, claimedUntil))) return null;

    let outcome: ServerCompletionOutcome;
    try {
      outcome = await this.completion.completeForPhone(clip, { lastLook });
    } catch (error) {
      this.logger.warn(`Looking for the upload of clip ${clip.id} failed, trying again later: ${String(error)}`);
      await this.clips.scheduleUploadLook(clip.id, new Date(now.getTime() + LOOK_RETRY_MS));
      return 'retry';
    }
    if (outcome !== 'not-uploaded' || !lastLook) return outcome;
    // Nothing uploaded, and nothing can be any more. The deletions are recorded first: if the expiry
    // then loses to a completion, the janitor finds the keys still in use and leaves them.
    await this.deletions.record(this.deletions.ofGoneClips([clip], now), now);
    const expired = await this.clips.markExpired(clip.id, cutoff, new Date(now.getTime() - UPLOAD_GRACE_MS), now);
    if (expired) this.metrics.clipTransitions.inc({ from: 'pending', to: 'expired' });
    return expired ? 'expired' : 'settled';
  }
}
