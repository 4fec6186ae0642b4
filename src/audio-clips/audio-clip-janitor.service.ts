import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../config/app-config';
import { AudioClipsRepository } from './audio-clips.repository';
import { deletionsFor } from './deletions/deletion-rules';
import { StorageDeletionsService } from './deletions/storage-deletions.service';
import { IdempotencyKeysRepository } from './idempotency-keys.repository';
import { Metrics } from '../operations/metrics';
import { ShutdownState } from '../operations/shutdown-state';

const BATCH_SIZE = 100;
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
export class AudioClipJanitor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(AudioClipJanitor.name);
  private running: Promise<JanitorReport> | null = null;
  private stopped = false;

  constructor(
    private readonly clips: AudioClipsRepository,
    private readonly deletions: StorageDeletionsService,
    private readonly idempotencyKeys: IdempotencyKeysRepository,
    private readonly config: AppConfig,
    private readonly scheduler: SchedulerRegistry,
    private readonly metrics: Metrics,
    private readonly shutdown: ShutdownState,
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
    const expiredClips = await this.expireStalledUploads(now);
    const { deletedObjects, failedDeletions } = await this.deletions.processDue(now, () => this.stopping);
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
      if (this.stopping) break;
      await this.deletions.record(deletionsFor(clip, now), now);
      if (await this.clips.markExpired(clip.id, cutoff, now)) {
        expired += 1;
        this.metrics.clipTransitions.inc({ from: 'pending', to: 'expired' });
      }
    }
    return expired;
  }
}
