import { Inject, Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error';
import { AppConfig } from '../config/app-config';
import { AudioClipStatus, type AudioClip } from '../audio-clips/audio-clip.entity';
import { STORAGE_DRIVER, type PresignedDownload, type StorageDriver } from '../storage/storage-driver';
import { DecoderAvailability } from './decoder-availability';
import { RenditionSource, RenditionStatus, type Rendition } from './rendition.entity';
import { RENDITION_FORMAT_NAMES, RENDITION_FORMATS, type RenditionFormat } from './rendition-formats';
import type { RenditionView } from './rendition-view';
import { RenditionsRepository } from './renditions.repository';

/** How long a phone is told to wait before asking again for a rendition still being made. */
export const RENDITION_RETRY_AFTER_SECONDS = 5;

export interface Playback extends PresignedDownload {
  mimeType: string;
}

/**
 * The API's side of renditions: what a clip shows of them, and which object a playback with a `format`
 * answers. The making is RenditionWorker's.
 */
@Injectable()
export class RenditionsService {
  private readonly wakeListeners = new Set<() => void>();

  constructor(
    private readonly renditions: RenditionsRepository,
    private readonly decoder: DecoderAvailability,
    private readonly config: AppConfig,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
  ) {}

  /** A clip became ready: its renditions are due (the worker of this instance starts at once if free). */
  async clipBecameReady(clip: Pick<AudioClip, 'id' | 'ownerId' | 'storageKey'>): Promise<void> {
    await this.renditions.insertPending(clip, new Date());
    for (const wake of this.wakeListeners) wake();
  }

  onWork(listener: () => void): void {
    this.wakeListeners.add(listener);
  }

  /** Sets `renditions` on each clip (one query for them all). Only ready clips have any. */
  async attach<T extends AudioClip>(clips: T[]): Promise<T[]> {
    const ready = clips.filter((clip) => clip.status === AudioClipStatus.Ready);
    const rows = await this.renditions.forClips(ready.map((clip) => clip.id));
    for (const clip of clips) {
      clip.renditions =
        clip.status !== AudioClipStatus.Ready
          ? []
          : RENDITION_FORMAT_NAMES.map((format) =>
              this.view(format, rows.find((row) => row.clipId === clip.id && row.format === format) ?? null),
            );
    }
    return clips;
  }

  private view(format: RenditionFormat, row: Rendition | null): RenditionView {
    const status = row?.status ?? RenditionStatus.Pending;
    return {
      format,
      mimeType: RENDITION_FORMATS[format].mimeType,
      // Nothing makes a pending rendition on a server without ffmpeg.
      status: status === RenditionStatus.Pending && !this.decoder.available ? RenditionStatus.Unavailable : status,
      bytes: row?.bytes ?? null,
      durationMs: row?.durationMs ?? null,
      failureReason: row?.failureReason ?? null,
      source: row?.source ?? RenditionSource.Rendition,
    };
  }

  /**
   * The URL of the clip in `format`: the rendition once made (or the original, when it already is that
   * format). 404 for a clip that is not the owner's, 409 while it cannot be played in that format.
   */
  async playback(ownerId: string, clipId: string, format: RenditionFormat): Promise<Playback> {
    const found = await this.renditions.findPlayback(ownerId, clipId, format);
    if (!found) throw new AppError('AUDIO_CLIP_NOT_FOUND', `No audio clip with id ${clipId}.`);
    if (found.clipStatus !== String(AudioClipStatus.Ready)) {
      throw new AppError(
        'AUDIO_CLIP_NOT_READY',
        `Audio clip ${clipId} is ${found.clipStatus}; only ready clips can be played.`,
      );
    }
    const rendition = found.rendition;
    const expires = this.config.storage.presignGetExpiresSeconds;
    if (rendition?.status === RenditionStatus.Ready) {
      const original = rendition.source === RenditionSource.Original;
      const download = await this.storage.presignDownload(
        original ? found.clipStorageKey : rendition.storageKey,
        expires,
      );
      return { ...download, mimeType: original ? found.clipMimeType : RENDITION_FORMATS[format].mimeType };
    }
    if (rendition?.status === RenditionStatus.Failed) {
      throw new AppError(
        'RENDITION_FAILED',
        `The ${format} rendition of audio clip ${clipId} could not be made: ${rendition.failureReason ?? 'unknown reason'}. Play the original (no format).`,
        { info: { failure_reason: rendition.failureReason ?? '' } },
      );
    }
    if (!this.decoder.available) {
      throw new AppError(
        'RENDITION_UNAVAILABLE',
        `This server does not make ${format} renditions (no decoder is installed). Play the original (no format).`,
      );
    }
    throw new AppError(
      'RENDITION_NOT_READY',
      `The ${format} rendition of audio clip ${clipId} is being made. Ask again in a few seconds, or play the original meanwhile.`,
      { headers: { 'retry-after': String(RENDITION_RETRY_AFTER_SECONDS) } },
    );
  }

  /** The original, as playback without a format answers it. */
  async original(clip: Pick<AudioClip, 'storageKey' | 'mimeType'>): Promise<Playback> {
    const download = await this.storage.presignDownload(clip.storageKey, this.config.storage.presignGetExpiresSeconds);
    return { ...download, mimeType: clip.mimeType };
  }
}
