import { randomUUID } from 'node:crypto';
import { PassThrough, Transform } from 'node:stream';
import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleInit,
} from '@nestjs/common';
import { AudioClipsRepository } from '../audio-clips/audio-clips.repository';
import { StorageDeletionsService } from '../audio-clips/deletions/storage-deletions.service';
import { JanitorTasks } from '../audio-clips/janitor-tasks';
import { AppConfig } from '../config/app-config';
import { NotesRepository } from '../notes/notes.repository';
import { ShutdownState } from '../operations/shutdown-state';
import { STORAGE_DRIVER, type StorageDriver } from '../storage/storage-driver';
import { archiveFileName, attachmentDisposition } from './archive-names';
import type { Export } from './export.entity';
import { exportArchive } from './export-archive';
import { ExportsRepository } from './exports.repository';

/** A claim lasts this long unless renewed; the build renews it every third of it. */
const CLAIM_MS = 60_000;
/** An archive stream that moves no byte for this long is given up (a store that froze), and retried. */
const STALL_MS = 60_000;
/** Attempts before an export fails for good; between them 5 s, 20 s, 80 s, 320 s. */
export const MAX_EXPORT_ATTEMPTS = 5;
/** Whatever an attempt that crashed half-way left in the store is deleted after this. */
const ORPHAN_AFTER_MS = 24 * 60 * 60_000;
/** Finished exports' rows are kept this long (the daily cap counts them; a late GET answers 410). */
const FINISHED_ROWS_KEPT_MS = 7 * 24 * 60 * 60_000;
const BATCH_SIZE = 10;

/**
 * Builds export archives in the background: each export is claimed with a conditional update (so of
 * several instances exactly one builds it), its archive streamed from the store through a zip into a
 * streamed write, and marked ready only once the store holds the whole archive. A failed attempt
 * (store outage, lost claim) deletes what it wrote and is retried later; the archive is deleted
 * through the deletion outbox when it expires, or when the account is deleted.
 */
@Injectable()
export class ExportWorker implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(ExportWorker.name);
  private running: Promise<void> | null = null;
  private again = false;
  private readonly retries = new Set<NodeJS.Timeout>();
  private stopped = false;
  /** Aborted when the app closes: a build under way stops (and is retried, by another instance if need be). */
  private readonly closing = new AbortController();

  constructor(
    private readonly exports: ExportsRepository,
    private readonly notes: NotesRepository,
    private readonly clips: AudioClipsRepository,
    private readonly deletions: StorageDeletionsService,
    private readonly config: AppConfig,
    private readonly janitorTasks: JanitorTasks,
    private readonly shutdown: ShutdownState,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
  ) {}

  onModuleInit(): void {
    this.janitorTasks.add('exports', async (now) => {
      await this.expire(now);
      this.kick();
    });
  }

  /** Exports asked for before a restart (or whose worker crashed) are taken up at once. */
  onApplicationBootstrap(): void {
    this.kick();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.closing.abort();
    for (const timer of this.retries) clearTimeout(timer);
    await this.running?.catch(() => undefined);
  }

  private get stopping(): boolean {
    return this.stopped || this.shutdown.draining;
  }

  /** Works through the due exports in the background; a kick during a run makes it look once more. */
  kick(): void {
    if (this.stopping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.runUntilIdle()
      .catch((error: unknown) => this.logger.error(`Export worker failed: ${String(error)}`))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Builds every due export this instance can claim, and resolves when done (tests and the CLI wait on it). */
  async runOnce(now = new Date()): Promise<void> {
    await this.running?.catch(() => undefined);
    await this.runUntilIdle(now);
  }

  private async runUntilIdle(now?: Date): Promise<void> {
    for (;;) {
      const at = now ?? new Date();
      const due = await this.exports.findDue(at, BATCH_SIZE);
      let built = 0;
      for (const entry of due) {
        if (this.stopping) return;
        if (await this.attempt(entry, at)) built += 1;
      }
      if (built === 0) return; // nothing due, or other instances hold it all
    }
  }

  /** One attempt at one export; false when another worker claimed it first. */
  private async attempt(entry: Export, now: Date): Promise<boolean> {
    const token = randomUUID();
    // Each attempt its own key: a stale attempt can never overwrite a finished archive.
    const key = `${this.config.storage.keyPrefix}/exports/${token}.zip`;
    if (!(await this.exports.claim(entry.id, token, key, now, new Date(Date.now() + CLAIM_MS)))) return false;
    // Recorded before anything is written: a crash mid-way leaves nothing behind for good.
    const orphanAfter = new Date(Date.now() + ORPHAN_AFTER_MS);
    await this.deletions.record([{ storageKey: key, deleteAfter: orphanAfter }], new Date(), orphanAfter);
    try {
      const size = await this.build(entry, token, key);
      const readyAt = new Date();
      const expiresAt = new Date(readyAt.getTime() + this.config.exports.expiresSeconds * 1000);
      // The archive goes when it expires: its outbox entry is due then.
      await this.deletions.record([{ storageKey: key, deleteAfter: expiresAt }], readyAt, expiresAt);
      if (!(await this.exports.markReady(entry.id, token, size, readyAt, expiresAt))) {
        // The claim was lost meanwhile (the account was deleted, or another worker took over): not ours to keep.
        await this.discard(key);
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const attempts = entry.attempts + 1;
      const retryAt =
        attempts >= MAX_EXPORT_ATTEMPTS ? null : new Date(Date.now() + 5_000 * 4 ** Math.min(attempts - 1, 6));
      this.logger.warn(
        `Export ${entry.id} attempt ${attempts} failed${retryAt ? `, retrying at ${retryAt.toISOString()}` : ' for good'}: ${message}`,
      );
      await this.exports.markAttemptFailed(entry.id, token, message, new Date(), retryAt);
      await this.discard(key);
      if (retryAt) this.retryAt(retryAt);
    }
    return true;
  }

  private retryAt(at: Date): void {
    if (this.stopping) return;
    const timer = setTimeout(
      () => {
        this.retries.delete(timer);
        this.kick();
      },
      Math.max(0, at.getTime() - Date.now()) + 50,
    );
    timer.unref();
    this.retries.add(timer);
  }

  private async discard(key: string): Promise<void> {
    const now = new Date();
    await this.deletions.record([{ storageKey: key, deleteAfter: now }], now);
    await this.deletions.deleteSoon([key]);
  }

  /**
   * Streams the archive into the store. The claim is renewed while it runs; a lost claim or a stream
   * that stops moving fails the attempt.
   */
  private async build(entry: Export, token: string, key: string): Promise<number> {
    const [notes, clips] = await Promise.all([
      this.notes.summariesOfOwner(entry.ownerId),
      this.clips.allOfOwner(entry.ownerId),
    ]);
    const archive = exportArchive(
      {
        userId: entry.ownerId,
        notes,
        clips,
        bodyOf: async (noteId) => (await this.notes.findById(entry.ownerId, noteId))?.body ?? null,
        openRecording: (storageKey) => this.storage.openRead(storageKey),
      },
      new Date(),
    );
    let moved = 0;
    let lastMoved = -1;
    let lastProgressAt = Date.now();
    const counted = new PassThrough();
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        moved += chunk.length;
        callback(null, chunk);
      },
    });
    const fail = (error: Error) => {
      archive.destroy(error);
      counted.destroy(error);
    };
    archive.on('error', (error: Error) => counted.destroy(error));
    archive.pipe(counter).pipe(counted);
    const watchdog = setInterval(() => {
      if (moved !== lastMoved) {
        lastMoved = moved;
        lastProgressAt = Date.now();
      } else if (Date.now() - lastProgressAt > STALL_MS) {
        fail(new Error(`the archive stream moved no byte for ${STALL_MS / 1000} s`));
      }
    }, 1_000);
    const heartbeat = setInterval(() => {
      this.exports.renewClaim(entry.id, token, new Date(Date.now() + CLAIM_MS)).then(
        (kept) => {
          if (!kept) fail(new Error('the claim on the export was lost'));
        },
        () => undefined, // the database blinked: the next beat tries again, the claim has time left
      );
    }, CLAIM_MS / 3);
    watchdog.unref();
    heartbeat.unref();
    // A drain or a shutdown does not wait for a long export: the attempt fails and is retried later.
    const stop = () => fail(new Error('the server is shutting down'));
    const signals = [this.closing.signal, this.shutdown.signal];
    for (const signal of signals) signal.addEventListener('abort', stop, { once: true });
    if (signals.some((signal) => signal.aborted)) stop();
    try {
      const { size } = await this.storage.writeStream(key, counted, {
        contentType: 'application/zip',
        contentDisposition: attachmentDisposition(archiveFileName(entry.createdAt)),
      });
      return size;
    } finally {
      clearInterval(watchdog);
      clearInterval(heartbeat);
      for (const signal of signals) signal.removeEventListener('abort', stop);
      archive.destroy();
    }
  }

  /** The janitor's share: ready exports past their expiry become expired (the outbox deletes their archives). */
  private async expire(now: Date): Promise<void> {
    for (const entry of await this.exports.findExpired(now, 100)) {
      if (entry.storageKey) await this.deletions.record([{ storageKey: entry.storageKey, deleteAfter: now }], now);
      await this.exports.markExpired(entry.id, now);
    }
    await this.exports.deleteFinishedBefore(new Date(now.getTime() - FINISHED_ROWS_KEPT_MS));
  }
}
