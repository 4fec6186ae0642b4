import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { idempotencyKeyOf } from '../idempotency/idempotency';
import {
  ApiBody,
  ApiCreatedResponse,
  ApiExtraModels,
  ApiHeader,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import { OwnerId } from '../auth/auth.decorators';
import { UploadRateLimited } from '../rate-limit/rate-limit.guard';
import {
  ApiAuthenticated,
  ApiErrorResponses,
  invalidField,
  invalidPathId,
} from '../common/api-error-responses.decorator';
import { toPageRequest } from '../common/pagination';
import { uuidParam } from '../common/validation';
import {
  AudioClipPageDto,
  AudioClipResponseDto,
  CREATE_AUDIO_CLIP_EXAMPLE,
  CreateAudioClipDto,
  CreateAudioClipPartUrlsDto,
  CreateAudioClipResponseDto,
  ListAudioClipsQueryDto,
  PartUploadUrlsDto,
  PlaybackDto,
  PlaybackQueryDto,
  StoredPartsDto,
  toAudioClipPage,
  READY_AUDIO_CLIP_EXAMPLE,
  toAudioClipResponse,
  toPartUploadUrlsDto,
  toPlaybackDto,
  toPresignedUploadDto,
  toStoredPartsDto,
} from './audio-clip.dto';
import { AudioClipsService } from './audio-clips.service';

@ApiAuthenticated()
@ApiExtraModels(CreateAudioClipDto)
@ApiTags('audio-clips')
@Controller('audio-clips')
export class AudioClipsController {
  constructor(private readonly clips: AudioClipsService) {}

  @Post()
  @ApiOperation({
    summary: 'Start an upload: create a pending clip and get a presigned PUT URL (or, for large files, a part plan)',
    description:
      'Below MULTIPART_THRESHOLD_BYTES (16 MiB by default), `upload.mode` is `single`: PUT the raw bytes to `upload.url` with `upload.headers`, ' +
      'then call `complete`. From it up, `upload.mode` is `multipart`: ask for part URLs (POST parts), PUT each part, then `complete`.',
  })
  @ApiBody({
    schema: { $ref: getSchemaPath(CreateAudioClipDto) },
    examples: { 'a recording': { value: CREATE_AUDIO_CLIP_EXAMPLE } },
  })
  @ApiCreatedResponse({ type: CreateAudioClipResponseDto })
  @ApiErrorResponses(
    invalidField('mime_type', 'mime_type must be one of the accepted audio types: audio/m4a, audio/mpeg, …'),
    'INVALID_JSON',
    'UNSUPPORTED_MEDIA_TYPE',
    'PAYLOAD_TOO_LARGE',
    'NOTE_NOT_FOUND',
    'NOTE_DELETED',
    'QUOTA_EXCEEDED',
    'TOO_MANY_PENDING_UPLOADS',
    'IDEMPOTENCY_KEY_REUSED',
  )
  @UploadRateLimited()
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description:
      'Any unique string (a UUID) per recording: a retry with the same key and body returns the same clip with a fresh upload URL.',
  })
  async createAudioClip(
    @OwnerId() ownerId: string,
    @Body() dto: CreateAudioClipDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<CreateAudioClipResponseDto> {
    const input = {
      noteId: dto.note_id,
      mimeType: dto.mime_type,
      bytes: dto.bytes,
      durationMs: dto.duration_ms,
      contentMd5: dto.content_md5,
    };
    const { clip, upload, replayed } = await this.clips.create(ownerId, input, idempotencyKeyOf(idempotencyKey));
    if (replayed) void reply.header('idempotent-replayed', 'true');
    return { clip: toAudioClipResponse(clip), upload: toPresignedUploadDto(upload, clip.uploadKey) };
  }

  @Get()
  @ApiOperation({
    summary: 'List your audio clips, newest first',
    description:
      'Narrow with `status` (e.g. `ready,failed`) and `updated_since`: an app back from a crash learns which of its recordings ' +
      'the server completed for it (`completed_by: "server"`) or refused. Pages with `limit` and `cursor`.',
  })
  @ApiOkResponse({ type: AudioClipPageDto })
  @ApiErrorResponses(invalidField('status', 'each status must be one of pending, ready, failed, expired'))
  async listAudioClips(@OwnerId() ownerId: string, @Query() query: ListAudioClipsQueryDto): Promise<AudioClipPageDto> {
    const filter = {
      statuses: query.status,
      updatedSince: query.updated_since === undefined ? undefined : new Date(query.updated_since),
    };
    return toAudioClipPage(await this.clips.list(ownerId, filter, toPageRequest(query)));
  }

  @Post(':clip_id/upload-url')
  @HttpCode(200)
  @UploadRateLimited()
  @ApiOperation({
    summary: 'Get a fresh presigned PUT URL for a pending clip (the old one expired, or the upload was cut off)',
  })
  @ApiOkResponse({ type: CreateAudioClipResponseDto })
  @ApiErrorResponses(invalidPathId('clip_id'), 'AUDIO_CLIP_NOT_FOUND', 'AUDIO_CLIP_NOT_PENDING')
  async renewAudioClipUpload(
    @OwnerId() ownerId: string,
    @Param('clip_id', uuidParam('clip_id')) clipId: string,
  ): Promise<CreateAudioClipResponseDto> {
    const { clip, upload } = await this.clips.renewUpload(ownerId, clipId);
    return { clip: toAudioClipResponse(clip), upload: toPresignedUploadDto(upload, clip.uploadKey) };
  }

  @Post(':clip_id/parts')
  @HttpCode(200)
  @UploadRateLimited()
  @ApiOperation({
    summary: 'Get presigned URLs for parts of a multipart upload (up to 100 a call)',
    description:
      'Each URL takes exactly its part’s bytes: `upload.part_size` for every part but the last, which holds the rest. ' +
      'A part uploaded again replaces the earlier one. 409 AUDIO_CLIP_NOT_MULTIPART for a clip uploaded in one PUT.',
  })
  @ApiOkResponse({ type: PartUploadUrlsDto })
  @ApiErrorResponses(
    invalidField('part_numbers', 'part_numbers must contain at least 1 elements'),
    'INVALID_JSON',
    'UNSUPPORTED_MEDIA_TYPE',
    'PAYLOAD_TOO_LARGE',
    'AUDIO_CLIP_NOT_FOUND',
    'AUDIO_CLIP_NOT_PENDING',
    'AUDIO_CLIP_NOT_MULTIPART',
  )
  async createAudioClipPartUrls(
    @OwnerId() ownerId: string,
    @Param('clip_id', uuidParam('clip_id')) clipId: string,
    @Body() dto: CreateAudioClipPartUrlsDto,
  ): Promise<PartUploadUrlsDto> {
    return toPartUploadUrlsDto(await this.clips.presignParts(ownerId, clipId, dto.part_numbers));
  }

  @Get(':clip_id/parts')
  @UploadRateLimited()
  @ApiOperation({
    summary: 'List the parts of a multipart upload that the store holds, to resume after a lost connection',
  })
  @ApiOkResponse({ type: StoredPartsDto })
  @ApiErrorResponses(
    invalidPathId('clip_id'),
    'AUDIO_CLIP_NOT_FOUND',
    'AUDIO_CLIP_NOT_PENDING',
    'AUDIO_CLIP_NOT_MULTIPART',
    'STORAGE_UNAVAILABLE',
  )
  async listAudioClipParts(
    @OwnerId() ownerId: string,
    @Param('clip_id', uuidParam('clip_id')) clipId: string,
  ): Promise<StoredPartsDto> {
    return toStoredPartsDto(await this.clips.listParts(ownerId, clipId));
  }

  @Get(':clip_id')
  @ApiOperation({ summary: 'Get an audio clip' })
  @ApiOkResponse({ type: AudioClipResponseDto })
  @ApiErrorResponses(invalidPathId('clip_id'), 'AUDIO_CLIP_NOT_FOUND')
  async getAudioClip(
    @OwnerId() ownerId: string,
    @Param('clip_id', uuidParam('clip_id')) clipId: string,
  ): Promise<AudioClipResponseDto> {
    return toAudioClipResponse(await this.clips.show(ownerId, clipId));
  }

  @Post(':clip_id/complete')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Finish an upload: check the stored object and mark the clip ready',
    description:
      'Idempotent: completing a ready clip returns it unchanged. 409 while nothing is uploaded (UPLOAD_PARTS_MISSING with `missing_parts` for a multipart upload ' +
      'whose parts are not all there; it is joined once they are); 422 UPLOAD_MISMATCH when the size or type differs ' +
      '(the clip stays pending, so upload again); 422 UPLOAD_NOT_AUDIO when the bytes are not the declared audio (the clip fails and the upload is deleted). ' +
      'The duration is measured from the audio where the container gives one.',
  })
  @ApiOkResponse({ type: AudioClipResponseDto, example: READY_AUDIO_CLIP_EXAMPLE })
  @ApiErrorResponses(
    invalidPathId('clip_id'),
    'AUDIO_CLIP_NOT_FOUND',
    'UPLOAD_NOT_FOUND',
    'AUDIO_CLIP_NOT_PENDING',
    'UPLOAD_CHANGED',
    'UPLOAD_MISMATCH',
    'UPLOAD_NOT_AUDIO',
    'STORAGE_UNAVAILABLE',
  )
  @UploadRateLimited()
  async completeAudioClip(
    @OwnerId() ownerId: string,
    @Param('clip_id', uuidParam('clip_id')) clipId: string,
  ): Promise<AudioClipResponseDto> {
    return toAudioClipResponse(await this.clips.complete(ownerId, clipId));
  }

  @Get(':clip_id/playback')
  @ApiOperation({
    summary:
      'Get a presigned GET URL to play a ready clip: the original, or with `format=m4a` the rendition every phone plays',
    description:
      'Without `format`: the original as uploaded. With `format=m4a`: AAC in MP4 (the original itself when it already is that); ' +
      '409 RENDITION_NOT_READY with Retry-After while the server makes it, 409 RENDITION_FAILED (with `failure_reason`) or ' +
      'RENDITION_UNAVAILABLE (no decoder on this server) when it will not be made: then play the original. `mime_type` says what `url` answers.',
  })
  @ApiOkResponse({ type: PlaybackDto })
  @ApiErrorResponses(
    invalidPathId('clip_id'),
    invalidField('format', 'format must be one of: m4a'),
    'AUDIO_CLIP_NOT_FOUND',
    'AUDIO_CLIP_NOT_READY',
    'RENDITION_NOT_READY',
    'RENDITION_FAILED',
    'RENDITION_UNAVAILABLE',
  )
  async getAudioClipPlayback(
    @OwnerId() ownerId: string,
    @Param('clip_id', uuidParam('clip_id')) clipId: string,
    @Query() query: PlaybackQueryDto,
  ): Promise<PlaybackDto> {
    return toPlaybackDto(await this.clips.playback(ownerId, clipId, query.format));
  }

  @Delete(':clip_id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete an audio clip and its stored audio' })
  @ApiNoContentResponse({ description: 'Deleted.' })
  @ApiErrorResponses(invalidPathId('clip_id'), 'AUDIO_CLIP_NOT_FOUND')
  async deleteAudioClip(
    @OwnerId() ownerId: string,
    @Param('clip_id', uuidParam('clip_id')) clipId: string,
  ): Promise<void> {
    await this.clips.delete(ownerId, clipId);
  }
}
