import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { AppError } from '../common/app-error';
import type { Page, PageRequest } from '../common/pagination';
import { AppConfig } from '../config/app-config';
import { NotesService } from '../notes/notes.service';
import {
  STORAGE_DRIVER,
  type PresignedDownload,
  type PresignedUpload,
  type StorageDriver,
  type StoredObjectInfo,
} from '../storage/storage-driver';
import { MAX_DURATION_MS } from './audio-clip.dto';
import { AudioClip, AudioClipStatus, CompletedBy, DurationSource } from './audio-clip.entity';
import { AudioClipsRepository, type ClipListFilter, type PlayableClip } from './audio-clips.repository';
import { deletionsFor, uploadOpenUntil } from './deletions/deletion-rules';
import { StorageDeletionsService } from './deletions/storage-deletions.service';
import { baseMimeType, isWellFormedMimeType, normalizeMimeType } from './audio-mime-types';
import { probeAudio } from './audio-probe';
import { IdempotencyKeysRepository } from './idempotency-keys.repository';
import { buildAudioClipKey, buildUploadKey } from './storage-key';
import { firstUploadCheck } from './upload-checks';
import { Metrics } from '../operations/metrics';

export interface NewAudioClip {
  noteId?: string;
  mimeType: string;
  bytes: number;
  durationMs: number;
  contentMd5?: string;
}

export interface AudioClipUpload {
  clip: AudioClip;
  upload: PresignedUpload;
  /** True when an `Idempotency-Key` matched an earlier request and its clip is returned again. */
  replayed: boolean;
}

/**
 * What became of an upload the janitor completed for a phone that never called complete: ready; failed
 * (not the declared audio, or at the last look not the declared size or type); not there (or not yet);
 * there but not the declared size or type (the clip stays pending: the phone may still upload again);
 * or settled by someone else meanwhile.
 */
export type ServerCompletionOutcome = 'completed' | 'failed' | 'not-uploaded' | 'mismatch' | 'settled';

interface Completion {
  clip: AudioClip;
  /** Whether this completion made the pending → ready change (not a concurrent one). */
  promoted: boolean;
}

export interface AudioClipPlayback {
  clip: AudioClip;
  playback: PresignedDownload;
}

/**
 * The rules of a clip's life: pending (created with an upload URL) → ready once the uploaded bytes
 * prove to be the declared audio, → failed when they are not, → expired when never completed.
 * Every transition is one conditional update, so concurrent calls end in one consistent state.
 */
@Injectable()
export class AudioClipsService implements OnModuleInit {
  private readonly completions = new Map<string, Promise<Completion>>();

  constructor(
    private readonly clips: AudioClipsRepository,
    private readonly idempotencyKeys: IdempotencyKeysRepository,
    private readonly deletions: StorageDeletionsService,
    private readonly notes: NotesService,
    private readonly config: AppConfig,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
    private readonly metrics: Metrics,
  ) {}

  /** A deleted, failed or expired clip's upload URL stops taking bytes, where the store can do that. */
  onModuleInit(): void {
    this.storage.acceptUploadsOnlyWhen?.((key) => this.clips.isPendingUpload(key));
  }

  async create(ownerId: string, input: NewAudioClip, idempotencyKey?: string): Promise<AudioClipUpload> {
    const requestHash = createHash('sha256')
      .update(
        JSON.stringify([input.noteId ?? null, input.mimeType, input.bytes, input.durationMs, input.contentMd5 ?? null]),
      )
      .digest('hex');
    if (idempotencyKey !== undefined) {
      const earlier = await this.idempotencyKeys.find(ownerId, idempotencyKey);
      if (earlier) return this.replay(ownerId, earlier.clipId, earlier.requestHash === requestHash);
    }

    const mimeType = this.acceptedMimeType(input.mimeType);
    if (input.bytes > this.config.audio.maxUploadBytes) {
      throw invalid(
        'bytes',
        `bytes must be at most ${this.config.audio.maxUploadBytes} (the largest upload this server accepts)`,
      );
    }
    if (input.noteId !== undefined) await this.notes.assertExists(ownerId, input.noteId);

    const now = new Date();
    const id = randomUUID();
    const clip: AudioClip = Object.assign(new AudioClip(), {
      id,
      ownerId,
      noteId: input.noteId ?? null,
      status: AudioClipStatus.Pending,
      mimeType,
      bytes: input.bytes,
      durationMs: input.durationMs,
      declaredDurationMs: input.durationMs,
      durationSource: DurationSource.Declared,
      contentMd5: input.contentMd5 ?? null,
      storageKey: buildAudioClipKey(this.config.storage.keyPrefix, id, mimeType),
      uploadKey: buildUploadKey(this.config.storage.keyPrefix, id, mimeType),
      uploadExpiresAt: null,
      uploadCheckAt: null,
      failureReason: null,
      createdAt: now,
      updatedAt: now,
      completedAt: null,
      completedBy: null,
    });
    // Sign first: if the store cannot sign, no row is left behind pointing at nothing.
    const upload = await this.presignUpload(clip);
    clip.uploadExpiresAt = upload.expiresAt;
    // If the phone never completes, the janitor looks for its upload once this URL has run out.
    clip.uploadCheckAt = firstUploadCheck(upload.expiresAt);
    await this.insertWithinQuota(clip);
    this.metrics.clipTransitions.inc({ from: 'new', to: 'pending' });
    // Every upload key handed out is recorded for deletion once its URL has run out, before the URL
    // leaves the server: whatever then happens to the clip (completed, failed, deleted with its note
    // in a race, a crash), a PUT can never leave bytes nobody knows of. While a pending clip still
    // uses the key, the janitor leaves it alone.
    await this.deletions.record(
      [{ storageKey: clip.uploadKey, deleteAfter: uploadOpenUntil(upload.expiresAt) }],
      now,
      uploadOpenUntil(upload.expiresAt),
    );

    if (idempotencyKey !== undefined) {
      const recorded = await this.idempotencyKeys.insert({
        ownerId,
        key: idempotencyKey,
        requestHash,
        clipId: clip.id,
        createdAt: now,
      });
      if (!recorded) {
        // A concurrent retry with the same key won: give back its clip, and remove ours (nobody has its URL).
        await this.clips.delete(ownerId, clip.id);
        const winner = await this.idempotencyKeys.find(ownerId, idempotencyKey);
        if (winner) return this.replay(ownerId, winner.clipId, winner.requestHash === requestHash);
      }
    }
    return { clip, upload, replayed: false };
  }

  async get(ownerId: string, id: string): Promise<AudioClip> {
    const clip = await this.clips.findById(ownerId, id);
    if (!clip) throw clipNotFound(id);
    return clip;
  }

  list(ownerId: string, filter: ClipListFilter, page: PageRequest): Promise<Page<AudioClip>> {
    return this.clips.list(ownerId, filter, page);
  }

  async listOfNote(ownerId: string, noteId: string, page: PageRequest): Promise<Page<AudioClip>> {
    await this.notes.assertExists(ownerId, noteId);
    return this.clips.listOfNote(ownerId, noteId, page);
  }

  /** A fresh upload URL for a pending clip whose URL ran out or whose upload was cut off. */
  async renewUpload(ownerId: string, id: string): Promise<AudioClipUpload> {
    const clip = this.assertPending(await this.get(ownerId, id));
    const upload = await this.presignUpload(clip);
    const until =
      clip.uploadExpiresAt && clip.uploadExpiresAt > upload.expiresAt ? clip.uploadExpiresAt : upload.expiresAt;
    await this.deletions.record(
      [{ storageKey: clip.uploadKey, deleteAfter: uploadOpenUntil(until) }],
      new Date(),
      uploadOpenUntil(until),
    );
    if (!(await this.clips.extendUpload(ownerId, id, until, firstUploadCheck(until))))
      this.assertPending(await this.get(ownerId, id));
    return { clip: await this.get(ownerId, id), upload, replayed: false };
  }

  /**
   * Checks what arrived against what was declared, from the object's metadata and its first bytes
   * (never the whole object), moves it to the clip's own key, and marks the clip ready. A missing or
   * wrongly sized upload leaves the clip pending for another try; bytes that are not the declared
   * audio fail the clip and are deleted.
   */
  async complete(ownerId: string, id: string): Promise<AudioClip> {
    return (await this.completeShared(ownerId, id, CompletedBy.Client)).clip;
  }

  /**
   * The janitor's side of completion, for a phone that uploaded and never called complete: exactly the
   * checks, the move and the measurement of `complete`, the clip recorded as completed by the server.
   * Errors of the store are thrown (the janitor tries again later); the rest is an outcome.
   */
  async completeForPhone(
    clip: Pick<AudioClip, 'ownerId' | 'id'>,
    options: { lastLook: boolean },
  ): Promise<ServerCompletionOutcome> {
    try {
      // Shared with a completion by the phone already under way here, the change is the phone's.
      const done = await this.completeShared(clip.ownerId, clip.id, CompletedBy.Server, options.lastLook);
      return done.promoted && done.clip.completedBy === CompletedBy.Server ? 'completed' : 'settled';
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      if (error.code === 'UPLOAD_NOT_FOUND') return 'not-uploaded';
      if (error.code === 'UPLOAD_NOT_AUDIO') return 'failed';
      if (error.code === 'UPLOAD_MISMATCH') return options.lastLook ? 'failed' : 'mismatch';
      if (error.code === 'AUDIO_CLIP_NOT_PENDING' || error.code === 'AUDIO_CLIP_NOT_FOUND') return 'settled';
      throw error;
    }
  }

  private completeShared(ownerId: string, id: string, by: CompletedBy, lastLook = false): Promise<Completion> {
    // Concurrent completions of one clip in this process (the phone's, the janitor's) share one check;
    // other instances are handled by the conditional update and the re-read below.
    const flightKey = `${ownerId}\n${id}`;
    let flight = this.completions.get(flightKey);
    if (!flight) {
      flight = this.completeOnce(ownerId, id, by, lastLook).finally(() => this.completions.delete(flightKey));
      this.completions.set(flightKey, flight);
    }
    return flight;
  }

  private async completeOnce(ownerId: string, id: string, by: CompletedBy, lastLook: boolean): Promise<Completion> {
    const clip = await this.get(ownerId, id);
    if (clip.status === AudioClipStatus.Ready) return { clip, promoted: false };
    this.assertPending(clip);
    try {
      return await this.verifyAndPromote(clip, by, lastLook);
    } catch (error) {
      // Another instance may have moved the upload and finished first: then its answer is ours too.
      if (error instanceof AppError && (error.code === 'UPLOAD_CHANGED' || error.code === 'UPLOAD_NOT_FOUND')) {
        const current = await this.get(ownerId, id);
        if (current.status === AudioClipStatus.Ready) return { clip: current, promoted: false };
      }
      throw error;
    }
  }

  /**
   * `lastLook`: the janitor's look just before the clip would expire, when nobody can upload again, so
   * bytes of another size or type fail the clip instead of leaving it pending.
   */
  private async verifyAndPromote(clip: AudioClip, by: CompletedBy, lastLook: boolean): Promise<Completion> {
    const { ownerId, id } = clip;

    const { key, object } = await this.findUpload(clip);
    const mismatch =
      object.size !== clip.bytes
        ? `The uploaded file is ${object.size} bytes but ${clip.bytes} were declared.`
        : object.contentType === undefined || normalizeMimeType(object.contentType) !== clip.mimeType
          ? `The upload was stored as ${object.contentType ?? 'an unknown type'} but ${clip.mimeType} was declared.`
          : null;
    if (mismatch !== null) {
      if (lastLook) await this.failUpload(clip, `${mismatch} It was never completed, and nothing else was uploaded.`);
      throw new AppError('UPLOAD_MISMATCH', `${mismatch} Upload the declared file again.`);
    }

    const probe = await probeAudio(
      { size: object.size, read: (start, end) => this.storage.readRange(key, start, end, object.etag) },
      clip.mimeType,
    );
    if (probe.kind === 'not-audio') {
      const reason = `The uploaded bytes are not ${clip.mimeType} audio: ${probe.reason}`;
      await this.failUpload(clip, reason);
      throw new AppError('UPLOAD_NOT_AUDIO', `${reason}. The upload was deleted; create a new clip to try again.`);
    }

    // Both keys are recorded before the bytes move, so whatever happens next (a crash, a delete or
    // the sweeper racing this call) the janitor finds them, and deletes them unless a clip uses them.
    await this.deletions.record(deletionsFor(clip, new Date()), new Date());
    await this.storage.move(key, clip.storageKey, object.etag, object.size);
    const now = new Date();
    // A container may claim any duration; one beyond what a clip can hold is not believed.
    const measured =
      probe.durationMs !== null && Number.isSafeInteger(probe.durationMs) && probe.durationMs <= MAX_DURATION_MS
        ? probe.durationMs
        : null;
    const duration =
      measured === null
        ? { durationMs: clip.declaredDurationMs, durationSource: DurationSource.Declared }
        : { durationMs: measured, durationSource: DurationSource.Measured };
    // The upload key's entry stays: whatever a still-valid URL writes there is deleted once it has run out.
    const promoted = await this.clips.markReady(ownerId, id, now, duration, by);
    if (promoted) this.metrics.clipTransitions.inc({ from: 'pending', to: 'ready' });
    // Whether this call or a concurrent one made the change, answer with what the row now says.
    const current = await this.clips.findById(ownerId, id);
    if (current?.status === AudioClipStatus.Ready) return { clip: current, promoted };
    // The clip was deleted or expired while its bytes were being moved into place, and whoever did
    // that may already have cleaned up: record the keys again, so the moved bytes go too.
    const requests = deletionsFor(clip, now);
    await this.deletions.record(requests, now);
    await this.deletions.deleteSoon(requests.map((request) => request.storageKey));
    if (!current) throw clipNotFound(id);
    throw notPending(current);
  }

  /** pending → failed, the upload deleted. */
  private async failUpload(clip: AudioClip, reason: string): Promise<void> {
    const now = new Date();
    // Recorded first: a crash after the state change must not leave the bytes behind. The janitor
    // leaves a key alone while a pending clip still uses it.
    const requests = deletionsFor(clip, now);
    await this.deletions.record(requests, now);
    if (await this.clips.markFailed(clip.ownerId, clip.id, now, reason)) {
      this.metrics.clipTransitions.inc({ from: 'pending', to: 'failed' });
      await this.deletions.deleteSoon(requests.map((request) => request.storageKey));
    }
  }

  async playback(ownerId: string, id: string): Promise<PresignedDownload> {
    const clip = await this.clips.findPlayable(ownerId, id);
    if (!clip) throw clipNotFound(id);
    return this.presignPlayback(clip);
  }

  async primaryOfNote(ownerId: string, noteId: string): Promise<AudioClipPlayback> {
    // One query on the hot path: a clip found through the owner's note proves the note is theirs.
    const clip = await this.clips.findPrimaryOfNote(ownerId, noteId);
    if (!clip) {
      await this.notes.assertExists(ownerId, noteId);
      throw new AppError('NO_READY_AUDIO_CLIP', `Note ${noteId} has no ready audio clip yet.`);
    }
    return { clip, playback: await this.presignPlayback(clip) };
  }

  /**
   * The deletion of the objects is recorded before the row goes, then tried at once; if the store is
   * unreachable the janitor retries until it succeeds, so nothing is orphaned and the answer stays fast.
   */
  async delete(ownerId: string, id: string): Promise<void> {
    const clip = await this.get(ownerId, id);
    const now = new Date();
    const requests = deletionsFor(clip, now);
    await this.deletions.record(requests, now);
    if (!(await this.clips.delete(ownerId, clip.id))) throw clipNotFound(id);
    this.metrics.clipTransitions.inc({ from: clip.status, to: 'deleted' });
    await this.deletions.deleteSoon(requests.map((request) => request.storageKey));
  }

  /** The upload is normally under the upload key; after a completion that moved it but failed to record that, under the storage key. */
  private async findUpload(clip: AudioClip): Promise<{ key: string; object: StoredObjectInfo }> {
    for (const key of new Set([clip.uploadKey, clip.storageKey])) {
      const object = await this.storage.inspect(key);
      if (object) return { key, object };
    }
    // A crash in the middle of an earlier completion's move leaves half the object at each key.
    if (await this.storage.finishInterruptedMove?.(clip.uploadKey, clip.storageKey)) {
      const object = await this.storage.inspect(clip.storageKey);
      if (object) return { key: clip.storageKey, object };
    }
    throw new AppError(
      'UPLOAD_NOT_FOUND',
      'Nothing has been uploaded for this clip yet. PUT the bytes to upload.url, then complete again.',
    );
  }

  private async replay(ownerId: string, clipId: string, sameRequest: boolean): Promise<AudioClipUpload> {
    if (!sameRequest) {
      throw new AppError(
        'IDEMPOTENCY_KEY_REUSED',
        'This Idempotency-Key was used for a different request. Use a new key for a new recording.',
      );
    }
    const renewed = await this.renewUpload(ownerId, clipId);
    return { ...renewed, replayed: true };
  }

  private presignUpload(clip: AudioClip): Promise<PresignedUpload> {
    return this.storage.presignUpload(clip.uploadKey, {
      contentType: clip.mimeType,
      contentLength: clip.bytes,
      contentMd5: clip.contentMd5 ?? undefined,
      expiresInSeconds: this.config.storage.presignPutExpiresSeconds,
    });
  }

  private assertPending(clip: AudioClip): AudioClip {
    if (clip.status !== AudioClipStatus.Pending) throw notPending(clip);
    return clip;
  }

  /**
   * Inserts the clip unless it would take its owner past the storage quota (413) or the cap on
   * outstanding pending uploads (409), which holds even without a quota: every pending clip carries a
   * live upload URL for its bytes.
   */
  private async insertWithinQuota(clip: AudioClip): Promise<void> {
    const { userQuotaBytes: quota, maxPendingUploadBytes, maxPendingUploads } = this.config.limits;
    const inserted = await this.clips.insertWithinLimits(clip, {
      quotaBytes: quota,
      maxPendingBytes: maxPendingUploadBytes,
      maxPendingUploads,
    });
    if (inserted) return;
    const held = await this.clips.holdings(clip.ownerId);
    if (quota !== null && held.heldBytes + clip.bytes > quota) {
      const remaining = Math.max(0, quota - held.heldBytes);
      throw new AppError(
        'QUOTA_EXCEEDED',
        `This recording needs ${clip.bytes} bytes but only ${remaining} of your ${quota}-byte storage quota are left. Delete some recordings first.`,
        { info: { quota_bytes: quota, used_bytes: held.heldBytes, remaining_bytes: remaining } },
      );
    }
    throw new AppError(
      'TOO_MANY_PENDING_UPLOADS',
      `You have ${held.pendingUploads} uploads (${held.pendingBytes} bytes) not yet completed; at most ${maxPendingUploads} uploads and ${maxPendingUploadBytes} bytes may be pending at once. Complete or delete some first.`,
      {
        info: {
          pending_uploads: held.pendingUploads,
          pending_bytes: held.pendingBytes,
          max_pending_uploads: maxPendingUploads,
          max_pending_upload_bytes: maxPendingUploadBytes,
        },
      },
    );
  }

  private presignPlayback(clip: PlayableClip): Promise<PresignedDownload> {
    if (clip.status !== AudioClipStatus.Ready) {
      throw new AppError(
        'AUDIO_CLIP_NOT_READY',
        `Audio clip ${clip.id} is ${clip.status}; only ready clips can be played.`,
      );
    }
    return this.storage.presignDownload(clip.storageKey, this.config.storage.presignGetExpiresSeconds);
  }

  private acceptedMimeType(raw: string): string {
    const mimeType = normalizeMimeType(raw);
    if (!isWellFormedMimeType(mimeType) || !this.config.audio.allowedMimeTypes.includes(baseMimeType(mimeType))) {
      throw invalid(
        'mime_type',
        `mime_type must be one of the accepted audio types: ${this.config.audio.allowedMimeTypes.join(', ')}`,
      );
    }
    return mimeType;
  }
}

function notPending(clip: AudioClip): AppError {
  const why =
    clip.status === AudioClipStatus.Ready
      ? 'already ready'
      : `${clip.status}${clip.failureReason ? ` (${clip.failureReason})` : ''}`;
  return new AppError('AUDIO_CLIP_NOT_PENDING', `Audio clip ${clip.id} is ${why}; create a new clip to upload again.`);
}

function invalid(field: string, message: string): AppError {
  return new AppError('VALIDATION_FAILED', 'The request is not valid.', { details: [{ field, message }] });
}

function clipNotFound(id: string): AppError {
  return new AppError('AUDIO_CLIP_NOT_FOUND', `No audio clip with id ${id}.`);
}
