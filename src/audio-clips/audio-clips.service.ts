import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
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
import { AudioClip, AudioClipStatus, DurationSource } from './audio-clip.entity';
import { AudioClipsRepository, type PlayableClip } from './audio-clips.repository';
import { deletionsFor, uploadOpenUntil } from './deletions/deletion-rules';
import { StorageDeletionsService } from './deletions/storage-deletions.service';
import { baseMimeType, isWellFormedMimeType, normalizeMimeType } from './audio-mime-types';
import { probeAudio } from './audio-probe';
import { IdempotencyKeysRepository } from './idempotency-keys.repository';
import { buildAudioClipKey, buildUploadKey } from './storage-key';
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
export class AudioClipsService {
  private readonly completions = new Map<string, Promise<AudioClip>>();

  constructor(
    private readonly clips: AudioClipsRepository,
    private readonly idempotencyKeys: IdempotencyKeysRepository,
    private readonly deletions: StorageDeletionsService,
    private readonly notes: NotesService,
    private readonly config: AppConfig,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
    private readonly metrics: Metrics,
  ) {}

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
      failureReason: null,
      createdAt: now,
      updatedAt: now,
      completedAt: null,
    });
    // Sign first: if the store cannot sign, no row is left behind pointing at nothing.
    const upload = await this.presignUpload(clip);
    clip.uploadExpiresAt = upload.expiresAt;
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
    if (!(await this.clips.extendUpload(ownerId, id, until))) this.assertPending(await this.get(ownerId, id));
    return { clip: await this.get(ownerId, id), upload, replayed: false };
  }

  /**
   * Checks what arrived against what was declared, from the object's metadata and its first bytes
   * (never the whole object), moves it to the clip's own key, and marks the clip ready. A missing or
   * wrongly sized upload leaves the clip pending for another try; bytes that are not the declared
   * audio fail the clip and are deleted.
   */
  complete(ownerId: string, id: string): Promise<AudioClip> {
    // Concurrent completions of one clip in this process share one check; other instances are
    // handled by the conditional update and the re-read below.
    const flightKey = `${ownerId}\n${id}`;
    let flight = this.completions.get(flightKey);
    if (!flight) {
      flight = this.completeOnce(ownerId, id).finally(() => this.completions.delete(flightKey));
      this.completions.set(flightKey, flight);
    }
    return flight;
  }

  private async completeOnce(ownerId: string, id: string): Promise<AudioClip> {
    const clip = await this.get(ownerId, id);
    if (clip.status === AudioClipStatus.Ready) return clip;
    this.assertPending(clip);
    try {
      return await this.verifyAndPromote(clip);
    } catch (error) {
      // Another instance may have moved the upload and finished first: then its answer is ours too.
      if (error instanceof AppError && (error.code === 'UPLOAD_CHANGED' || error.code === 'UPLOAD_NOT_FOUND')) {
        const current = await this.get(ownerId, id);
        if (current.status === AudioClipStatus.Ready) return current;
      }
      throw error;
    }
  }

  private async verifyAndPromote(clip: AudioClip): Promise<AudioClip> {
    const { ownerId, id } = clip;

    const { key, object } = await this.findUpload(clip);
    if (object.size !== clip.bytes) {
      throw new AppError(
        'UPLOAD_MISMATCH',
        `The uploaded file is ${object.size} bytes but ${clip.bytes} were declared. Upload the declared file again.`,
      );
    }
    if (object.contentType === undefined || normalizeMimeType(object.contentType) !== clip.mimeType) {
      throw new AppError(
        'UPLOAD_MISMATCH',
        `The upload was stored as ${object.contentType ?? 'an unknown type'} but ${clip.mimeType} was declared.`,
      );
    }

    const probe = await probeAudio(
      { size: object.size, read: (start, end) => this.storage.readRange(key, start, end, object.etag) },
      clip.mimeType,
    );
    if (probe.kind === 'not-audio') {
      const reason = `The uploaded bytes are not ${clip.mimeType} audio: ${probe.reason}`;
      const now = new Date();
      // Recorded first: a crash after the state change must not leave the bytes behind. The janitor
      // leaves a key alone while a pending clip still uses it.
      const requests = deletionsFor(clip, now);
      await this.deletions.record(requests, now);
      if (await this.clips.markFailed(ownerId, id, now, reason)) {
        this.metrics.clipTransitions.inc({ from: 'pending', to: 'failed' });
        await this.deletions.deleteSoon(requests.map((request) => request.storageKey));
      }
      throw new AppError('UPLOAD_NOT_AUDIO', `${reason}. The upload was deleted; create a new clip to try again.`);
    }

    // Both keys are recorded before the bytes move, so whatever happens next (a crash, a delete or
    // the sweeper racing this call) the janitor finds them, and deletes them unless a clip uses them.
    await this.deletions.record(deletionsFor(clip, new Date()), new Date());
    await this.storage.move(key, clip.storageKey, object.etag);
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
    if (await this.clips.markReady(ownerId, id, now, duration))
      this.metrics.clipTransitions.inc({ from: 'pending', to: 'ready' });
    // Whether this call or a concurrent one made the change, answer with what the row now says.
    const current = await this.clips.findById(ownerId, id);
    if (current?.status === AudioClipStatus.Ready) return current;
    // The clip was deleted or expired while its bytes were being moved into place, and whoever did
    // that may already have cleaned up: record the keys again, so the moved bytes go too.
    const requests = deletionsFor(clip, now);
    await this.deletions.record(requests, now);
    await this.deletions.deleteSoon(requests.map((request) => request.storageKey));
    if (!current) throw clipNotFound(id);
    throw notPending(current);
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

  private async insertWithinQuota(clip: AudioClip): Promise<void> {
    const quota = this.config.limits.userQuotaBytes;
    if (quota === null) return this.clips.insert(clip);
    const result = await this.clips.insertWithinQuota(clip, quota);
    if (result.inserted) return;
    const remaining = Math.max(0, quota - result.heldBytes);
    throw new AppError(
      'QUOTA_EXCEEDED',
      `This recording needs ${clip.bytes} bytes but only ${remaining} of your ${quota}-byte storage quota are left. Delete some recordings first.`,
      {
        info: { quota_bytes: quota, used_bytes: result.heldBytes, remaining_bytes: remaining },
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
