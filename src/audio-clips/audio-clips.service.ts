import { randomUUID } from 'node:crypto';
import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { AppError } from '../common/app-error';
import type { Page, PageRequest } from '../common/pagination';
import { AppConfig } from '../config/app-config';
import { NotesService } from '../notes/notes.service';
import { STORAGE_DRIVER, type PresignedDownload, type PresignedUpload, type StorageDriver } from '../storage/storage-driver';
import { AudioClip, AudioClipStatus } from './audio-clip.entity';
import { AudioClipsRepository } from './audio-clips.repository';
import { baseMimeType, isWellFormedMimeType, normalizeMimeType } from './audio-mime-types';
import { buildAudioClipKey } from './storage-key';

export interface NewAudioClip {
  noteId?: string;
  mimeType: string;
  bytes: number;
  durationMs: number;
}

export interface AudioClipUpload {
  clip: AudioClip;
  upload: PresignedUpload;
}

export interface AudioClipPlayback {
  clip: AudioClip;
  playback: PresignedDownload;
}

/**
 * The rules of a clip's life: it is created with an upload URL, becomes ready only once the stored
 * object matches what was declared, and can be played only when ready.
 */
@Injectable()
export class AudioClipsService implements OnModuleInit {
  constructor(
    private readonly clips: AudioClipsRepository,
    private readonly notes: NotesService,
    private readonly config: AppConfig,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
  ) {}

  onModuleInit(): void {
    this.notes.onBeforeDelete((ownerId, noteId) => this.deleteObjectsOfNote(ownerId, noteId));
  }

  async create(ownerId: string, input: NewAudioClip): Promise<AudioClipUpload> {
    const mimeType = this.acceptedMimeType(input.mimeType);
    if (input.bytes > this.config.audio.maxUploadBytes) {
      throw invalid('bytes', `bytes must be at most ${this.config.audio.maxUploadBytes} (the largest upload this server accepts)`);
    }
    if (input.noteId !== undefined) await this.notes.assertExists(ownerId, input.noteId);

    const now = new Date();
    const id = randomUUID();
    const clip = Object.assign(new AudioClip(), {
      id,
      ownerId,
      noteId: input.noteId ?? null,
      status: AudioClipStatus.Pending,
      mimeType,
      bytes: input.bytes,
      durationMs: input.durationMs,
      storageKey: buildAudioClipKey(this.config.storage.keyPrefix, id, mimeType),
      createdAt: now,
      updatedAt: now,
      completedAt: null,
    });
    // Sign first: if the store cannot sign, no row is left behind pointing at nothing.
    const upload = await this.storage.presignUpload(clip.storageKey, {
      contentType: mimeType,
      contentLength: clip.bytes,
      expiresInSeconds: this.config.storage.presignPutExpiresSeconds,
    });
    await this.insertWithinQuota(clip);
    return { clip, upload };
  }

  async get(ownerId: string, id: string): Promise<AudioClip> {
    const clip = await this.clips.findById(ownerId, id);
    if (!clip) throw new AppError('AUDIO_CLIP_NOT_FOUND', `No audio clip with id ${id}.`);
    return clip;
  }

  async listOfNote(ownerId: string, noteId: string, page: PageRequest): Promise<Page<AudioClip>> {
    await this.notes.assertExists(ownerId, noteId);
    return this.clips.listOfNote(ownerId, noteId, page);
  }

  /**
   * Checks what arrived in storage against what the phone declared, then marks the clip ready.
   * A missing or mismatching object leaves the clip pending, so the phone can upload again.
   */
  async complete(ownerId: string, id: string): Promise<AudioClip> {
    const clip = await this.get(ownerId, id);
    if (clip.status === AudioClipStatus.Ready) return clip;

    const stored = await this.storage.inspect(clip.storageKey);
    if (!stored) {
      throw new AppError('UPLOAD_NOT_FOUND', 'Nothing has been uploaded for this clip yet. PUT the bytes to upload.url, then complete again.');
    }
    if (stored.size !== clip.bytes) {
      throw new AppError('UPLOAD_MISMATCH', `The uploaded file is ${stored.size} bytes but ${clip.bytes} were declared. Upload the declared file again.`);
    }
    if (stored.contentType === undefined || normalizeMimeType(stored.contentType) !== clip.mimeType) {
      throw new AppError('UPLOAD_MISMATCH', `The upload was stored as ${stored.contentType ?? 'an unknown type'} but ${clip.mimeType} was declared.`);
    }

    await this.clips.markReady(ownerId, clip.id, new Date());
    // Whether this call or a concurrent one made the change, the row now says ready; answer with it.
    return this.get(ownerId, id);
  }

  async playback(ownerId: string, id: string): Promise<PresignedDownload> {
    return this.presignPlayback(await this.get(ownerId, id));
  }

  async primaryOfNote(ownerId: string, noteId: string): Promise<AudioClipPlayback> {
    await this.notes.assertExists(ownerId, noteId);
    const clip = await this.clips.findPrimaryOfNote(ownerId, noteId);
    if (!clip) throw new AppError('NO_READY_AUDIO_CLIP', `Note ${noteId} has no ready audio clip yet.`);
    return { clip, playback: await this.presignPlayback(clip) };
  }

  /** The object goes first: if the store is unreachable the row stays, and the delete can be retried. */
  async delete(ownerId: string, id: string): Promise<void> {
    const clip = await this.get(ownerId, id);
    await this.storage.delete(clip.storageKey);
    await this.clips.delete(ownerId, clip.id);
  }

  private async deleteObjectsOfNote(ownerId: string, noteId: string): Promise<void> {
    for (const key of await this.clips.storageKeysOfNote(ownerId, noteId)) await this.storage.delete(key);
  }

  private async insertWithinQuota(clip: AudioClip): Promise<void> {
    const quota = this.config.limits.userQuotaBytes;
    if (quota === null) return this.clips.insert(clip);
    const result = await this.clips.insertWithinQuota(clip, quota);
    if (result.inserted) return;
    const remaining = Math.max(0, quota - result.heldBytes);
    throw new AppError('QUOTA_EXCEEDED', `This recording needs ${clip.bytes} bytes but only ${remaining} of your ${quota}-byte storage quota are left. Delete some recordings first.`, {
      info: { quota_bytes: quota, used_bytes: result.heldBytes, remaining_bytes: remaining },
    });
  }

  private presignPlayback(clip: AudioClip): Promise<PresignedDownload> {
    if (clip.status !== AudioClipStatus.Ready) {
      throw new AppError('AUDIO_CLIP_NOT_READY', `Audio clip ${clip.id} is ${clip.status}; complete the upload before playing it.`);
    }
    return this.storage.presignDownload(clip.storageKey, this.config.storage.presignGetExpiresSeconds);
  }

  private acceptedMimeType(raw: string): string {
    const mimeType = normalizeMimeType(raw);
    if (!isWellFormedMimeType(mimeType) || !this.config.audio.allowedMimeTypes.includes(baseMimeType(mimeType))) {
      throw invalid('mime_type', `mime_type must be one of the accepted audio types: ${this.config.audio.allowedMimeTypes.join(', ')}`);
    }
    return mimeType;
  }
}

function invalid(field: string, message: string): AppError {
  return new AppError('VALIDATION_FAILED', 'The request is not valid.', { details: [{ field, message }] });
}
