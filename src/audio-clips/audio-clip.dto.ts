import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsIn,
  IsInt,
  IsISO8601,
  IsString,
  IsUUID,
  Matches,
  Max,
  MaxLength,
  Min,
} from 'class-validator';
import { lowerCaseUuid, Optional } from '../common/validation';
import { PageQueryDto, type Page } from '../common/pagination';
import type { StoredPart } from '../storage/storage-driver';
import { RenditionSource, RenditionStatus } from '../renditions/rendition.entity';
import { RENDITION_FORMAT_NAMES, type RenditionFormat } from '../renditions/rendition-formats';
import type { Playback } from '../renditions/renditions.service';
import { AudioClip, AudioClipStatus, CompletedBy, DurationSource } from './audio-clip.entity';
import type { PartUpload, UploadInstructions } from './audio-clips.service';
import { MAX_PART_COUNT, MAX_PART_URLS_PER_REQUEST } from './multipart-plan';

/** About 24 days: more than any voice note, and what fits a 32-bit integer column. */
export const MAX_DURATION_MS = 2_147_483_647;

export class CreateAudioClipDto {
  @ApiPropertyOptional({
    format: 'uuid',
    description: 'The note this recording belongs to.',
    example: '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90',
  })
  @Optional()
  @Transform(lowerCaseUuid)
  @IsUUID('4')
  note_id?: string;

  @ApiProperty({
    description: 'The audio type the phone recorded; the upload must be sent with exactly this Content-Type.',
    example: 'audio/m4a',
  })
  @IsString()
  @MaxLength(255)
  mime_type!: string;

  @ApiProperty({
    type: 'integer',
    description: 'Exact size of the file in bytes; the upload URL accepts this size only.',
    minimum: 1,
    example: 123456,
  })
  @IsInt()
  @Min(1)
  bytes!: number;

  @ApiProperty({
    type: 'integer',
    description: 'Length of the recording in milliseconds.',
    minimum: 0,
    maximum: MAX_DURATION_MS,
    example: 42000,
  })
  @IsInt()
  @Min(0)
  @Max(MAX_DURATION_MS)
  duration_ms!: number;

  @ApiPropertyOptional({
    description:
      'Base64 MD5 of the file. When given, the upload URL requires it as Content-MD5 and the store refuses bytes that do not match.',
    example: 'XUFAKrxLKna5cZ2REBfFkg==',
  })
  @Optional()
  @IsString()
  @Matches(/^[A-Za-z0-9+/]{22}==$/, { message: 'content_md5 must be the base64 of a 16-byte MD5 digest' })
  content_md5?: string;
}

export class RenditionDto {
  @ApiProperty({ enum: RENDITION_FORMAT_NAMES, example: 'm4a', description: 'Ask for it with `playback?format=`.' })
  format!: string;

  @ApiProperty({ example: 'audio/mp4' })
  mime_type!: string;

  @ApiProperty({
    enum: RenditionStatus,
    enumName: 'RenditionStatus',
    example: RenditionStatus.Ready,
    description:
      '`pending` while the server makes it; `ready`; `failed` (see `failure_reason`: play the original); `unavailable` on a server without a decoder.',
  })
  status!: RenditionStatus;

  @ApiProperty({ type: Number, nullable: true, example: 168213 })
  bytes!: number | null;

  @ApiProperty({ type: Number, nullable: true, example: 41984, description: 'Measured by ffprobe from the made file.' })
  duration_ms!: number | null;

  @ApiProperty({ type: String, nullable: true, example: null })
  failure_reason!: string | null;

  @ApiPropertyOptional({
    enum: ['original'],
    description: 'Present when the original already is this format: it is what playback answers, nothing was made.',
  })
  source?: 'original';
}

/** A spoken sentence: loud syllables between short pauses, the loudest slice at 255. */
const WAVEFORM_RAW = Array.from(
  { length: 100 },
  (_, i) => Math.abs(Math.sin(i / 4)) * (0.6 + 0.4 * Math.cos(i / 17)) ** 2,
);
const WAVEFORM_EXAMPLE = WAVEFORM_RAW.map((peak) => Math.round((255 * peak) / Math.max(...WAVEFORM_RAW)));

export class AudioClipResponseDto {
  @ApiProperty({ format: 'uuid', example: '9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b' })
  id!: string;

  @ApiProperty({ type: String, format: 'uuid', nullable: true, example: '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90' })
  note_id!: string | null;

  @ApiProperty({
    enum: AudioClipStatus,
    enumName: 'AudioClipStatus',
    example: AudioClipStatus.Pending,
    description: 'pending → ready | failed | expired',
  })
  status!: AudioClipStatus;

  @ApiProperty({ example: 'audio/m4a' })
  mime_type!: string;

  @ApiProperty({ type: 'integer', example: 123456 })
  bytes!: number;

  @ApiProperty({
    type: 'integer',
    example: 42000,
    description: 'Measured from the audio once ready, when its container says; else as declared.',
  })
  duration_ms!: number;

  @ApiProperty({ type: 'integer', example: 42000, description: 'What the phone declared.' })
  declared_duration_ms!: number;

  @ApiProperty({
    enum: DurationSource,
    enumName: 'DurationSource',
    example: DurationSource.Declared,
    description: '`declared` until completion measured the audio.',
  })
  duration_source!: DurationSource;

  @ApiProperty({ type: String, nullable: true, example: null, description: 'The declared base64 MD5, if any.' })
  content_md5!: string | null;

  @ApiProperty({ type: String, nullable: true, example: null, description: 'Why the clip failed or expired.' })
  failure_reason!: string | null;

  @ApiProperty({ example: 'dev/audio-clips/9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b.m4a' })
  storage_key!: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-27T09:30:00.000Z' })
  created_at!: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-27T09:30:00.000Z' })
  updated_at!: string;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    example: null,
    description: 'When the clip became ready.',
  })
  completed_at!: string | null;

  // Inline, with null among the values: a `$ref`'d enum beside `nullable` is not nullable to a generator
  // (OpenAPI 3.0 lets nothing sit beside a $ref), and a nullable enum without null in it refuses null.
  @ApiProperty({
    type: String,
    enum: [...Object.values(CompletedBy), null],
    nullable: true,
    example: null,
    description:
      'Who completed the clip: `client` (the phone called complete) or `server` (the phone uploaded but never called complete; ' +
      'the server completed it once the upload URL had run out). Null until ready.',
  })
  completed_by!: CompletedBy | null;

  @ApiProperty({
    type: 'array',
    items: { type: 'integer', minimum: 0, maximum: 255 },
    nullable: true,
    minItems: 100,
    maxItems: 100,
    example: WAVEFORM_EXAMPLE,
    description:
      '100 integers 0–255: the peak of each of 100 equal slices of the recording, scaled so that the loudest slice is 255 ' +
      '(all 0 for silence). What a player draws before downloading anything. Null until the server has made it (after ready).',
  })
  waveform!: number[] | null;

  @ApiProperty({
    type: [RenditionDto],
    description: 'What the server makes of a ready clip so that every phone can play it (empty until ready).',
  })
  renditions!: RenditionDto[];
}

const STATUSES = Object.values(AudioClipStatus);
/** RFC 3339: a full date and time with a zone, so that the instant is never a guess. */
const RFC3339_DATE_TIME =
  /^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/i;

export class ListAudioClipsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({
    type: String,
    description: `Only clips in these states: one of ${STATUSES.join(', ')}, or several separated by commas.`,
    example: 'ready,failed',
  })
  @Optional()
  // `status=ready,failed` and `status=ready&status=failed` mean the same.
  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' || Array.isArray(value)
      ? [value].flat().flatMap((part: unknown) => (typeof part === 'string' ? part.split(',') : [part]))
      : value,
  )
  @IsArray({ message: `status must be one or more of ${STATUSES.join(', ')}, separated by commas` })
  @IsIn(STATUSES, {
    each: true,
    message: `status must be one or more of ${STATUSES.join(', ')}, separated by commas`,
  })
  status?: AudioClipStatus[];

  @ApiPropertyOptional({
    format: 'date-time',
    description:
      'Only clips changed at or after this instant (RFC 3339 with a zone). Pass the newest `updated_at` seen last time to learn what changed since.',
    example: '2026-11-27T09:30:00.000Z',
  })
  @Optional()
  @IsString()
  @Matches(RFC3339_DATE_TIME, {
    message: 'updated_since must be an RFC 3339 date-time with a time zone, such as 2026-11-27T09:30:00Z',
  })
  @IsISO8601({ strict: true }, { message: 'updated_since must be a real date and time' })
  updated_since?: string;
}

/**
 * What the explorer pre-fills for `POST /api/audio-clips`: no `note_id`, since an example id names no
 * note of the person trying it (that would answer 404).
 */
export const CREATE_AUDIO_CLIP_EXAMPLE = { mime_type: 'audio/m4a', bytes: 123456, duration_ms: 42000 };

/** A clip as `complete` answers it: ready, with the duration measured from the audio. */
export const READY_AUDIO_CLIP_EXAMPLE: AudioClipResponseDto = {
  id: '9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b',
  note_id: '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90',
  status: AudioClipStatus.Ready,
  mime_type: 'audio/m4a',
  bytes: 123456,
  duration_ms: 41987,
  declared_duration_ms: 42000,
  duration_source: DurationSource.Measured,
  content_md5: null,
  failure_reason: null,
  storage_key: 'dev/audio-clips/9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b.m4a',
  created_at: '2026-11-27T09:30:00.000Z',
  updated_at: '2026-11-27T09:30:41.000Z',
  completed_at: '2026-11-27T09:30:41.000Z',
  completed_by: CompletedBy.Client,
  waveform: null,
  renditions: [
    {
      format: 'm4a',
      mime_type: 'audio/mp4',
      status: RenditionStatus.Ready,
      bytes: 123456,
      duration_ms: 41987,
      failure_reason: null,
      source: 'original',
    },
  ],
};

const SERVER_TIME = {
  format: 'date-time',
  example: '2026-11-27T09:30:00.000Z',
  description:
    'The server’s clock when it answered: a phone whose clock is off measures how long its URLs last from this, not from its own time.',
} as const;

export class PresignedUploadDto {
  @ApiProperty({
    enum: ['single', 'multipart'],
    example: 'single',
    description:
      '`single`: PUT the whole file to `url`. `multipart` (from MULTIPART_THRESHOLD_BYTES up): no `url`; ask for part URLs with POST parts, ' +
      'PUT each part (`part_size` bytes, the last one the rest), then complete. Parts can be resumed after a lost connection (GET parts).',
  })
  mode!: 'single' | 'multipart';

  @ApiPropertyOptional({
    description: 'Single uploads: presigned URL, PUT the raw file bytes here.',
    example: 'https://advanced-notes-audio.s3.us-east-1.amazonaws.com/dev/audio-clips/9b2f….m4a?X-Amz-Algorithm=…',
  })
  url?: string;

  @ApiPropertyOptional({ enum: ['PUT'], example: 'PUT' })
  method?: 'PUT';

  @ApiPropertyOptional({
    description: 'Single uploads: headers to send with the PUT, exactly as given (they are signed).',
    type: 'object',
    additionalProperties: { type: 'string' },
    example: { 'Content-Type': 'audio/m4a', 'Content-Length': '123456' },
  })
  headers?: Record<string, string>;

  @ApiPropertyOptional({
    type: 'integer',
    description: 'Multipart uploads: the size of every part but the last (at least 5 MiB).',
    example: 5242880,
  })
  part_size?: number;

  @ApiPropertyOptional({
    type: 'integer',
    description: 'Multipart uploads: how many parts, numbered from 1.',
    example: 8,
  })
  part_count?: number;

  @ApiProperty({
    example: 'dev/uploads/9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b.m4a',
    description: 'The key the upload lands under; completion moves it to the clip’s storage_key.',
  })
  storage_key!: string;

  @ApiPropertyOptional({
    format: 'date-time',
    example: '2026-11-27T09:45:00.000Z',
    description: 'Single uploads: when `url` stops working (part URLs carry their own).',
  })
  expires_at?: string;

  @ApiProperty(SERVER_TIME)
  server_time!: string;
}

export class CreateAudioClipPartUrlsDto {
  @ApiProperty({
    type: 'integer',
    isArray: true,
    description: `Part numbers to sign, 1 to upload.part_count, at most ${MAX_PART_URLS_PER_REQUEST} at a time, each once.`,
    example: [1, 2, 3],
  })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_PART_URLS_PER_REQUEST)
  @ArrayUnique()
  @IsInt({ each: true })
  @Min(1, { each: true })
  @Max(MAX_PART_COUNT, { each: true })
  part_numbers!: number[];
}

export class PartUploadUrlDto {
  @ApiProperty({ type: 'integer', example: 1 })
  part_number!: number;

  @ApiProperty({
    description: 'Presigned UploadPart URL: PUT exactly this part’s bytes here.',
    example: 'https://advanced-notes-audio.s3.us-east-1.amazonaws.com/dev/uploads/9b2f….m4a?partNumber=1&uploadId=…',
  })
  url!: string;

  @ApiProperty({ enum: ['PUT'], example: 'PUT' })
  method!: 'PUT';

  @ApiProperty({
    description: 'Headers to send with the PUT (the part’s exact size is signed).',
    type: 'object',
    additionalProperties: { type: 'string' },
    example: { 'Content-Length': '5242880' },
  })
  headers!: Record<string, string>;

  @ApiProperty({ format: 'date-time', example: '2026-11-27T09:45:00.000Z' })
  expires_at!: string;
}

export class PartUploadUrlsDto {
  @ApiProperty({ type: [PartUploadUrlDto] })
  parts!: PartUploadUrlDto[];

  @ApiProperty(SERVER_TIME)
  server_time!: string;
}

export class StoredPartDto {
  @ApiProperty({ type: 'integer', example: 1 })
  part_number!: number;

  @ApiProperty({ type: 'integer', example: 5242880 })
  size!: number;

  @ApiProperty({ example: '"b54357faf0632cce46e942fa68356b38"', description: 'The store’s ETag of the part.' })
  etag!: string;
}

export class StoredPartsDto {
  @ApiProperty({
    type: [StoredPartDto],
    description: 'The parts the store holds, by part number; upload the others (or those of a wrong size) again.',
  })
  parts!: StoredPartDto[];
}

export class CreateAudioClipResponseDto {
  @ApiProperty({ type: AudioClipResponseDto })
  clip!: AudioClipResponseDto;

  @ApiProperty({ type: PresignedUploadDto })
  upload!: PresignedUploadDto;
}

export class PlaybackQueryDto {
  @ApiPropertyOptional({
    enum: RENDITION_FORMAT_NAMES,
    description:
      'Play the server-made rendition in this format (`m4a`: AAC in MP4, which every phone plays) instead of the original. ' +
      '409 RENDITION_NOT_READY (with Retry-After) while it is made, RENDITION_FAILED or RENDITION_UNAVAILABLE when it will not be: play the original then.',
  })
  @Optional()
  @IsIn(RENDITION_FORMAT_NAMES, { message: `format must be one of: ${RENDITION_FORMAT_NAMES.join(', ')}` })
  format?: RenditionFormat;
}

export class PlaybackDto {
  @ApiProperty({
    example: 'audio/mp4',
    description: 'The type of what `url` answers: the original’s as uploaded, or the rendition’s.',
  })
  mime_type!: string;

  @ApiProperty({
    description: 'Presigned GET URL; supports Range requests.',
    example: 'https://advanced-notes-audio.s3.us-east-1.amazonaws.com/dev/audio-clips/9b2f….m4a?X-Amz-Algorithm=…',
  })
  url!: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-27T09:45:00.000Z' })
  expires_at!: string;

  @ApiProperty(SERVER_TIME)
  server_time!: string;
}

export class NoteAudioDto {
  @ApiProperty({ type: AudioClipResponseDto, description: 'The note’s most recently completed ready clip.' })
  clip!: AudioClipResponseDto;

  @ApiProperty({ type: PlaybackDto })
  playback!: PlaybackDto;
}

export class AudioClipPageDto {
  @ApiProperty({ type: [AudioClipResponseDto] })
  items!: AudioClipResponseDto[];

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as `cursor` to get the next page; null on the last page.',
  })
  next_cursor!: string | null;
}

export function toAudioClipResponse(clip: AudioClip): AudioClipResponseDto {
  return {
    id: clip.id,
    note_id: clip.noteId,
    status: clip.status,
    mime_type: clip.mimeType,
    bytes: clip.bytes,
    duration_ms: clip.durationMs,
    declared_duration_ms: clip.declaredDurationMs,
    duration_source: clip.durationSource,
    content_md5: clip.contentMd5,
    failure_reason: clip.failureReason,
    storage_key: clip.storageKey,
    created_at: clip.createdAt.toISOString(),
    updated_at: clip.updatedAt.toISOString(),
    completed_at: clip.completedAt ? clip.completedAt.toISOString() : null,
    completed_by: clip.completedBy,
    waveform: clip.waveform ?? null,
    renditions: (clip.renditions ?? []).map((rendition) => ({
      format: rendition.format,
      mime_type: rendition.mimeType,
      status: rendition.status,
      bytes: rendition.bytes,
      duration_ms: rendition.durationMs,
      failure_reason: rendition.failureReason,
      ...(rendition.source === RenditionSource.Original ? { source: 'original' as const } : {}),
    })),
  };
}

export function toPresignedUploadDto(upload: UploadInstructions, uploadKey: string): PresignedUploadDto {
  if (upload.mode === 'multipart') {
    return {
      mode: 'multipart',
      part_size: upload.partSize,
      part_count: upload.partCount,
      storage_key: uploadKey,
      server_time: new Date().toISOString(),
    };
  }
  return {
    mode: 'single',
    url: upload.presigned.url,
    method: upload.presigned.method,
    headers: upload.presigned.headers,
    storage_key: uploadKey,
    expires_at: upload.presigned.expiresAt.toISOString(),
    server_time: new Date().toISOString(),
  };
}

export function toPartUploadUrlsDto(parts: readonly PartUpload[]): PartUploadUrlsDto {
  return {
    parts: parts.map((part) => ({
      part_number: part.partNumber,
      url: part.url,
      method: part.method,
      headers: part.headers,
      expires_at: part.expiresAt.toISOString(),
    })),
    server_time: new Date().toISOString(),
  };
}

export function toStoredPartsDto(parts: readonly StoredPart[]): StoredPartsDto {
  return { parts: parts.map((part) => ({ part_number: part.partNumber, size: part.size, etag: part.etag })) };
}

export function toPlaybackDto(download: Playback): PlaybackDto {
  return {
    mime_type: download.mimeType,
    url: download.url,
    expires_at: download.expiresAt.toISOString(),
    server_time: new Date().toISOString(),
  };
}

export function toAudioClipPage(page: Page<AudioClip>): AudioClipPageDto {
  return { items: page.items.map(toAudioClipResponse), next_cursor: page.nextCursor };
}
