import { randomUUID } from 'node:crypto';
import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { AppError } from '../common/app-error';
import type { Page, PageRequest } from '../common/pagination';
import { AppConfig } from '../config/app-config';
import { NotesService } from '../notes/notes.service';
import {
  STORAGE_DRIVER,
  type PresignedUpload,
  type StorageDriver,
  type StoredObjectInfo,
  type StoredPart,
} from '../storage/storage-driver';
import { MAX_DURATION_MS } from './audio-clip.dto';
import { AudioClip, AudioClipStatus, CompletedBy, DurationSource } from './audio-clip.entity';
import { AudioClipsRepository, type ClipListFilter, type Holdings, type PlayableClip } from './audio-clips.repository';
import { deletionsFor, uploadOpenUntil } from './deletions/deletion-rules';
import { StorageDeletionsService } from './deletions/storage-deletions.service';
import { baseMimeType, isWellFormedMimeType, normalizeMimeType } from './audio-mime-types';
import { probeAudio } from './audio-probe';
import { IdempotencyKeysRepository } from '../idempotency/idempotency-keys.repository';
import { idempotencyKeyReused, requestHashOf } from '../idempotency/idempotency';
import { MAX_PART_COUNT, partLength, planParts, type PartPlan } from './multipart-plan';
import { buildAudioClipKey, buildUploadKey } from './storage-key';
import { firstUploadCheck } from './upload-checks';
import { Metrics } from '../operations/metrics';
import { RenditionsService, type Playback } from '../renditions/renditions.service';
import type { RenditionFormat } from '../renditions/rendition-formats';

export interface NewAudioClip {
  noteId?: string;
  mimeType: string;
  bytes: number;
  durationMs: number;
  contentMd5?: string;
}

/** How the phone sends the bytes: one presigned PUT, or parts (resumable) whose URLs it asks for in batches. */
export type UploadInstructions = { mode: 'single'; presigned: PresignedUpload } | ({ mode: 'multipart' } & PartPlan);

export interface PartUpload extends PresignedUpload {
  partNumber: number;
}

export interface AudioClipUpload {
  clip: AudioClip;
  upload: UploadInstructions;
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
  playback: Playback;
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
    private readonly renditions: RenditionsService,
  ) {}

  /** A deleted, failed or expired clip's upload URL stops taking bytes, where the store can do that. */
  onModuleInit(): void {
    this.storage.acceptUploadsOnlyWhen?.((key) => this.clips.isPendingUpload(key));
  }

  async create(ownerId: string, input: NewAudioClip, idempotencyKey?: string): Promise<AudioClipUpload> {
    const requestHash = requestHashOf([
      input.noteId ?? null,
      input.mimeType,
      input.bytes,
      input.durationMs,
      input.contentMd5 ?? null,
    ]);
    if (idempotencyKey !== undefined) {
      const earlier = await this.idempotencyKeys.find(ownerId, 'audio-clips', idempotencyKey);
      if (earlier) return this.replay(ownerId, earlier.resourceId, earlier.requestHash === requestHash);
    }

    const mimeType = this.acceptedMimeType(input.mimeType);
    if (input.bytes > this.config.audio.maxUploadBytes) {
      throw invalid(
        'bytes',
        `bytes must be at most ${this.config.audio.maxUploadBytes} (the largest upload this server accepts)`,
      );
    }
    const multipart = input.bytes >= this.config.audio.multipartThresholdBytes;
    if (multipart && input.contentMd5 !== undefined) {
      throw invalid(
        'content_md5',
        `content_md5 is checked by the store on single uploads only (bytes below ${this.config.audio.multipartThresholdBytes}); ` +
          'a multipart upload has each part’s size signed instead. Leave it out for this recording.',
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
      multipartUploadId: null,
      partSize: null,
      failureReason: null,
      createdAt: now,
      updatedAt: now,
      completedAt: null,
      completedBy: null,
      waveform: null,
    });
    let upload: UploadInstructions;
    if (multipart) {
      upload = await this.startMultipartUpload(clip, now);
    } else {
      // Sign first: if the store cannot sign, no row is left behind pointing at nothing.
      const presigned = await this.presignUpload(clip);
      clip.uploadExpiresAt = presigned.expiresAt;
      // If the phone never completes, the janitor looks for its upload once this URL has run out.
      clip.uploadCheckAt = firstUploadCheck(presigned.expiresAt);
      upload = { mode: 'single', presigned };
      await this.insertWithinQuota(clip);
      // Every upload key handed out is recorded for deletion once its URL has run out, before the URL
      // leaves the server: whatever then happens to the clip (completed, failed, deleted with its note
      // in a race, a crash), a PUT can never leave bytes nobody knows of. While a pending clip still
      // uses the key, the janitor leaves it alone.
      await this.deletions.record(
        [{ storageKey: clip.uploadKey, deleteAfter: uploadOpenUntil(presigned.expiresAt) }],
        now,
        uploadOpenUntil(presigned.expiresAt),
      );
    }
    this.metrics.clipTransitions.inc({ from: 'new', to: 'pending' });

    if (idempotencyKey !== undefined) {
      const recorded = await this.idempotencyKeys.insert({
        ownerId,
        endpoint: 'audio-clips',
        key: idempotencyKey,
        requestHash,
        resourceId: clip.id,
        createdAt: now,
      });
      if (!recorded) {
        // A concurrent retry with the same key won: give back its clip, and remove ours (nobody has its URL).
        await this.clips.delete(ownerId, clip.id);
        const winner = await this.idempotencyKeys.find(ownerId, 'audio-clips', idempotencyKey);
        if (winner) return this.replay(ownerId, winner.resourceId, winner.requestHash === requestHash);
      }
    }
    return { clip, upload, replayed: false };
  }

  async get(ownerId: string, id: string): Promise<AudioClip> {
    const clip = await this.clips.findById(ownerId, id);
    if (!clip) throw clipNotFound(id);
    return clip;
  }

  /** The clip as the API shows it: with its renditions. */
  async show(ownerId: string, id: string): Promise<AudioClip> {
    const [clip] = await this.renditions.attach([await this.get(ownerId, id)]);
    return clip;
  }

  async list(ownerId: string, filter: ClipListFilter, page: PageRequest): Promise<Page<AudioClip>> {
    const found = await this.clips.list(ownerId, filter, page);
    await this.renditions.attach(found.items);
    return found;
  }

  async listOfNote(ownerId: string, noteId: string, page: PageRequest): Promise<Page<AudioClip>> {
    await this.notes.assertExists(ownerId, noteId);
    const found = await this.clips.listOfNote(ownerId, noteId, page);
    await this.renditions.attach(found.items);
    return found;
  }

  /**
   * A fresh upload URL for a pending clip whose URL ran out or whose upload was cut off. A multipart
   * clip has no single URL: it gets its plan again, and asks for part URLs.
   */
  async renewUpload(ownerId: string, id: string): Promise<AudioClipUpload> {
    const clip = this.assertPending(await this.get(ownerId, id));
    const plan = partPlanOf(clip);
    if (plan) return { clip, upload: { mode: 'multipart', ...plan }, replayed: false };
    const upload = await this.presignUpload(clip);
    await this.keepUploadOpen(clip, upload.expiresAt);
    return { clip: await this.get(ownerId, id), upload: { mode: 'single', presigned: upload }, replayed: false };
  }

  /**
   * Presigned UploadPart URLs for a pending multipart clip, each signed for its part's exact size.
   * Asking again for a part already uploaded is allowed: the new upload replaces it.
   */
  async presignParts(ownerId: string, id: string, partNumbers: readonly number[]): Promise<PartUpload[]> {
    const clip = this.assertPending(await this.get(ownerId, id));
    const { plan, uploadId } = this.assertMultipart(clip);
    const beyond = partNumbers.filter((partNumber) => partNumber > plan.partCount);
    if (beyond.length > 0) {
      throw invalid(
        'part_numbers',
        `this upload has ${plan.partCount} parts (1 to ${plan.partCount}); there is no part ${beyond.join(', ')}`,
      );
    }
    const parts = await Promise.all(
      partNumbers.map(async (partNumber) => ({
        partNumber,
        ...(await this.storage.presignUploadPart(clip.uploadKey, uploadId, partNumber, {
          contentLength: partLength(clip.bytes, plan, partNumber),
          expiresInSeconds: this.config.storage.presignPutExpiresSeconds,
        })),
      })),
    );
    const lastExpiry = new Date(Math.max(...parts.map((part) => part.expiresAt.getTime())));
    await this.keepUploadOpen(clip, lastExpiry);
    return parts;
  }

  /** The parts the store holds for a pending multipart clip: what a phone resumes from. */
  async listParts(ownerId: string, id: string): Promise<StoredPart[]> {
    const clip = this.assertPending(await this.get(ownerId, id));
    const { uploadId } = this.assertMultipart(clip);
    return this.storage.listParts(clip.uploadKey, uploadId);
  }

  /**
   * Checks what arrived against what was declared, from the object's metadata and its first bytes
   * (never the whole object), moves it to the clip's own key, and marks the clip ready. A missing or
   * wrongly sized upload leaves the clip pending for another try; bytes that are not the declared
   * audio fail the clip and are deleted.
   */
  async complete(ownerId: string, id: string): Promise<AudioClip> {
    const [clip] = await this.renditions.attach([(await this.completeShared(ownerId, id, CompletedBy.Client)).clip]);
    return clip;
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
      // A multipart upload whose parts do not cover the recording yet is, for now, nothing uploaded.
      if (
        error.code === 'UPLOAD_NOT_FOUND' ||
        error.code === 'UPLOAD_PARTS_MISSING' ||
        error.code === 'MULTIPART_UPLOAD_GONE'
      )
        return 'not-uploaded';
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
      // Another instance may have moved the upload and finished first: then its answer is ours too. Whatever
      // this one ran into on the way (the upload gone from under it, or a store that answers a copy racing
      // another one's delete with an error of its own: s3rver says InternalError), the clip is ready.
      const current = await this.get(ownerId, id).catch(() => null);
      if (current?.status === AudioClipStatus.Ready) return { clip: current, promoted: false };
      throw error;
    }
  }

  /**
   * `lastLook`: the janitor's look just before the clip would expire, when nobody can upload again, so
   * bytes of another size or type fail the clip instead of leaving it pending.
   */
  private async verifyAndPromote(clip: AudioClip, by: CompletedBy, lastLook: boolean): Promise<Completion> {
    const { ownerId, id } = clip;

    // A multipart upload is joined into one object first; from there on, it is checked as a single upload.
    if (clip.multipartUploadId !== null && !(await this.findUploadIfAny(clip))) await this.assembleParts(clip);
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
    if (promoted) {
      this.metrics.clipTransitions.inc({ from: 'pending', to: 'ready' });
      // Its renditions are due. Should this fail, the worker's look for ready clips without them finds it.
      await this.renditions.clipBecameReady(clip).catch(() => undefined);
    }
    // Whether this call or a concurrent one made the change, answer with what the row now says.
    const current = await this.clips.findById(ownerId, id);
    if (current?.status === AudioClipStatus.Ready) return { clip: current, promoted };
    // The clip was deleted or expired while its bytes were being moved into place, and whoever did
    // that may already have cleaned up: record the keys again, so the moved bytes go too.
    const requests = this.deletions.ofGoneClips([clip], now);
    await this.deletions.record(requests, now);
    await this.deletions.deleteSoon(requests.map((request) => request.storageKey));
    if (!current) throw clipNotFound(id);
    throw notPending(current);
  }

  /** pending → failed, the upload deleted. */
  private async failUpload(clip: AudioClip, reason: string): Promise<void> {
    const now = new Date();
    // Recorded first: a crash after the state change must not leave the bytes behind. The janitor
    // leaves a key alone while a pending clip still uses it. The owner is charged for what the upload
    // URL can still write before the clip stops counting as pending: those bytes always count somewhere.
    const requests = this.deletions.ofGoneClips([clip], now);
    await this.deletions.record(requests, now);
    if (await this.clips.markFailed(clip.ownerId, clip.id, now, reason)) {
      this.metrics.clipTransitions.inc({ from: 'pending', to: 'failed' });
      await this.deletions.deleteSoon(requests.map((request) => request.storageKey));
    }
  }

  /** The original without a format; with one, its rendition (RenditionsService's rules). */
  async playback(ownerId: string, id: string, format?: RenditionFormat): Promise<Playback> {
    if (format !== undefined) return this.renditions.playback(ownerId, id, format);
    const clip = await this.clips.findPlayable(ownerId, id);
    if (!clip) throw clipNotFound(id);
    return this.presignPlayback(clip);
  }

  async primaryOfNote(ownerId: string, noteId: string, format?: RenditionFormat): Promise<AudioClipPlayback> {
    // One query on the hot path: a clip found through the owner's note proves the note is theirs.
    const clip = await this.clips.findPrimaryOfNote(ownerId, noteId);
    if (!clip) {
      await this.notes.assertExists(ownerId, noteId);
      throw new AppError('NO_READY_AUDIO_CLIP', `Note ${noteId} has no ready audio clip yet.`);
    }
    const playback =
      format === undefined
        ? await this.presignPlayback(clip)
        : await this.renditions.playback(ownerId, clip.id, format);
    await this.renditions.attach([clip]);
    return { clip, playback };
  }

  /**
   * The deletion of the objects is recorded before the row goes, then tried at once; if the store is
   * unreachable the janitor retries until it succeeds, so nothing is orphaned and the answer stays fast.
   */
  async delete(ownerId: string, id: string): Promise<void> {
    const clip = await this.get(ownerId, id);
    const now = new Date();
    // Recorded (with what a still-valid upload URL can write charged to the owner) before the row
    // goes: those bytes always count somewhere.
    const requests = this.deletions.ofGoneClips([clip], now);
    await this.deletions.record(requests, now);
    if (!(await this.clips.delete(ownerId, clip.id))) throw clipNotFound(id);
    this.metrics.clipTransitions.inc({ from: clip.status, to: 'deleted' });
    await this.deletions.deleteSoon(requests.map((request) => request.storageKey));
  }

  /**
   * Lists the parts on the store and joins them, once every part of the plan is there with its exact
   * size. Missing parts leave the clip pending (409 UPLOAD_PARTS_MISSING names them).
   */
  private async assembleParts(clip: AudioClip): Promise<void> {
    const { plan, uploadId } = this.assertMultipart(clip);
    let stored: StoredPart[];
    try {
      stored = await this.storage.listParts(clip.uploadKey, uploadId);
    } catch (error) {
      // Joined meanwhile by a concurrent completion (another instance): the object is there to check.
      if (error instanceof AppError && error.code === 'MULTIPART_UPLOAD_GONE' && (await this.findUploadIfAny(clip)))
        return;
      throw error;
    }
    const byNumber = new Map(stored.map((part) => [part.partNumber, part]));
    const parts: StoredPart[] = [];
    const missing: number[] = [];
    for (let partNumber = 1; partNumber <= plan.partCount; partNumber += 1) {
      const part = byNumber.get(partNumber);
      if (!part) missing.push(partNumber);
      else parts.push(part);
    }
    if (missing.length > 0) {
      throw new AppError(
        'UPLOAD_PARTS_MISSING',
        `${missing.length} of the ${plan.partCount} parts ${missing.length === 1 ? 'is' : 'are'} not uploaded yet. ` +
          'Ask for their URLs (POST parts), upload them, then complete again.',
        { info: { missing_parts: missing } },
      );
    }
    for (const part of parts) {
      const expected = partLength(clip.bytes, plan, part.partNumber);
      if (part.size !== expected) {
        throw new AppError(
          'UPLOAD_MISMATCH',
          `Part ${part.partNumber} is ${part.size} bytes but ${expected} were expected. Upload that part again.`,
        );
      }
    }
    try {
      await this.storage.completeMultipartUpload(clip.uploadKey, uploadId, parts);
    } catch (error) {
      if (error instanceof AppError && error.code === 'MULTIPART_UPLOAD_GONE' && (await this.findUploadIfAny(clip)))
        return;
      throw error;
    }
  }

  /**
   * A multipart clip's upload begins on the store at once; its id is recorded for abort (with the
   * upload key) before the row exists, so an upload whose row never comes is aborted by the janitor.
   */
  private async startMultipartUpload(clip: AudioClip, now: Date): Promise<UploadInstructions> {
    const plan = planParts(clip.bytes);
    if (plan.partCount > MAX_PART_COUNT) throw invalid('bytes', 'bytes is too large to upload in parts');
    const uploadId = await this.storage.createMultipartUpload(clip.uploadKey, clip.mimeType);
    Object.assign(clip, {
      multipartUploadId: uploadId,
      partSize: plan.partSize,
      // No part URL yet; until the first batch, the clip's upload counts as open for one URL lifetime.
      uploadExpiresAt: new Date(now.getTime() + this.config.storage.presignPutExpiresSeconds * 1000),
    });
    // Never completed, the janitor settles it as a single upload: the parts form no object until
    // complete, so after the last URL it expires, and its parts are aborted with it.
    clip.uploadCheckAt = firstUploadCheck(clip.uploadExpiresAt!);
    const openUntil = uploadOpenUntil(clip.uploadExpiresAt!);
    await this.deletions.record(
      [{ storageKey: clip.uploadKey, deleteAfter: openUntil, multipartUploadId: uploadId }],
      now,
      openUntil,
    );
    try {
      await this.insertWithinQuota(clip);
    } catch (error) {
      await this.storage.abortMultipartUpload(clip.uploadKey, uploadId).catch(() => undefined);
      throw error;
    }
    return { mode: 'multipart', ...plan };
  }

  /**
   * A URL valid until `expiresAt` was handed out: the clip is not expired, nor its upload key deleted,
   * before it (and the grace after it) has run out.
   */
  private async keepUploadOpen(clip: AudioClip, expiresAt: Date): Promise<void> {
    const until = clip.uploadExpiresAt && clip.uploadExpiresAt > expiresAt ? clip.uploadExpiresAt : expiresAt;
    await this.deletions.record(
      [{ storageKey: clip.uploadKey, deleteAfter: uploadOpenUntil(until), multipartUploadId: clip.multipartUploadId }],
      new Date(),
      uploadOpenUntil(until),
    );
    if (!(await this.clips.extendUpload(clip.ownerId, clip.id, until, firstUploadCheck(until))))
      this.assertPending(await this.get(clip.ownerId, clip.id));
  }

  private assertMultipart(clip: AudioClip): { plan: PartPlan; uploadId: string } {
    const plan = partPlanOf(clip);
    if (!plan || clip.multipartUploadId === null) {
      throw new AppError(
        'AUDIO_CLIP_NOT_MULTIPART',
        `Audio clip ${clip.id} is uploaded in one PUT to upload.url, not in parts (its bytes are below the multipart threshold).`,
      );
    }
    return { plan, uploadId: clip.multipartUploadId };
  }

  private async findUploadIfAny(clip: AudioClip): Promise<{ key: string; object: StoredObjectInfo } | null> {
    for (const key of new Set([clip.uploadKey, clip.storageKey])) {
      const object = await this.storage.inspect(key);
      if (object) return { key, object };
    }
    // A crash in the middle of an earlier completion's move leaves half the object at each key.
    if (await this.storage.finishInterruptedMove?.(clip.uploadKey, clip.storageKey)) {
      const object = await this.storage.inspect(clip.storageKey);
      if (object) return { key: clip.storageKey, object };
    }
    return null;
  }

  /** The upload is normally under the upload key; after a completion that moved it but failed to record that, under the storage key. */
  private async findUpload(clip: AudioClip): Promise<{ key: string; object: StoredObjectInfo }> {
    const found = await this.findUploadIfAny(clip);
    if (found) return found;
    throw new AppError(
      'UPLOAD_NOT_FOUND',
      'Nothing has been uploaded for this clip yet. PUT the bytes to upload.url, then complete again.',
    );
  }

  private async replay(ownerId: string, clipId: string, sameRequest: boolean): Promise<AudioClipUpload> {
    if (!sameRequest) throw idempotencyKeyReused('recording');
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
    const inserted = await this.clips
      .insertWithinLimits(clip, { quotaBytes: quota, maxPendingBytes: maxPendingUploadBytes, maxPendingUploads })
      .catch(async (error: unknown) => {
        // The note went between the check and the insert: 410 if its owner deleted it, as the check says.
        if (error instanceof AppError && error.code === 'NOTE_NOT_FOUND' && clip.noteId !== null)
          await this.notes.assertExists(clip.ownerId, clip.noteId);
        throw error;
      });
    if (inserted) return;
    const held = await this.clips.holdings(clip.ownerId);
    const dead = deadUploadsInfo(held);
    if (quota !== null && held.usedBytes + clip.bytes > quota) {
      const remaining = Math.max(0, quota - held.usedBytes);
      throw new AppError(
        'QUOTA_EXCEEDED',
        `This recording needs ${clip.bytes} bytes but only ${remaining} of your ${quota}-byte storage quota are left.${dead.sentence} Delete some recordings first.`,
        { info: { quota_bytes: quota, used_bytes: held.usedBytes, remaining_bytes: remaining, ...dead.info } },
      );
    }
    throw new AppError(
      'TOO_MANY_PENDING_UPLOADS',
      `You have ${held.pendingUploads} uploads (${held.pendingBytes} bytes) not yet completed; at most ${maxPendingUploads} uploads and ${maxPendingUploadBytes} bytes may be pending at once.${dead.sentence} Complete or delete some first.`,
      {
        info: {
          pending_uploads: held.pendingUploads,
          pending_bytes: held.pendingBytes,
          max_pending_uploads: maxPendingUploads,
          max_pending_upload_bytes: maxPendingUploadBytes,
          ...dead.info,
        },
      },
    );
  }

  private async presignPlayback(clip: PlayableClip): Promise<Playback> {
    if (clip.status !== AudioClipStatus.Ready) {
      throw new AppError(
        'AUDIO_CLIP_NOT_READY',
        `Audio clip ${clip.id} is ${clip.status}; only ready clips can be played.`,
      );
    }
    return this.renditions.original(clip);
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

/**
 * What a refusal says of the upload URLs of deleted or failed clips still counted: their share of the
 * figures, and when the last of them stops counting.
 */
function deadUploadsInfo(held: Holdings): { sentence: string; info: Record<string, string | number> } {
  const info: Record<string, string | number> = {
    dead_uploads: held.deadUploads,
    dead_upload_bytes: held.deadUploadBytes,
  };
  if (held.deadUploads === 0 || held.deadUploadsCountedUntil === null) return { sentence: '', info };
  const until = held.deadUploadsCountedUntil.toISOString();
  return {
    sentence:
      ` This counts ${held.deadUploadBytes} bytes that the still-valid upload URLs of ${held.deadUploads} deleted or failed ` +
      `recording${held.deadUploads === 1 ? '' : 's'} can write; they stop counting after ${until}.`,
    info: { ...info, dead_uploads_counted_until: until },
  };
}

function partPlanOf(clip: AudioClip): PartPlan | null {
  return clip.partSize === null ? null : { partSize: clip.partSize, partCount: Math.ceil(clip.bytes / clip.partSize) };
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
