import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { OwnerId } from '../auth/auth.decorators';
import { UploadRateLimited } from '../rate-limit/rate-limit.guard';
import { ApiAuthenticated, ApiErrorResponses } from '../common/api-error-responses.decorator';
import { uuidParam } from '../common/validation';
import {
  AudioClipResponseDto,
  CreateAudioClipDto,
  CreateAudioClipResponseDto,
  PlaybackDto,
  toAudioClipResponse,
  toPlaybackDto,
  toPresignedUploadDto,
} from './audio-clip.dto';
import { AudioClipsService } from './audio-clips.service';

@ApiAuthenticated()
@ApiTags('audio-clips')
@Controller('audio-clips')
export class AudioClipsController {
  constructor(private readonly clips: AudioClipsService) {}

  @Post()
  @ApiOperation({
    summary: 'Start an upload: create a pending clip and get a presigned PUT URL',
    description: 'Then PUT the raw bytes to `upload.url` with `upload.headers`, and call `complete`.',
  })
  @ApiCreatedResponse({ type: CreateAudioClipResponseDto })
  @ApiErrorResponses(400, 404, 413, 503)
  @UploadRateLimited()
  async createAudioClip(@OwnerId() ownerId: string, @Body() dto: CreateAudioClipDto): Promise<CreateAudioClipResponseDto> {
    const { clip, upload } = await this.clips.create(ownerId, { noteId: dto.note_id, mimeType: dto.mime_type, bytes: dto.bytes, durationMs: dto.duration_ms });
    return { clip: toAudioClipResponse(clip), upload: toPresignedUploadDto(upload, clip.storageKey) };
  }

  @Get(':clip_id')
  @ApiOperation({ summary: 'Get an audio clip' })
  @ApiOkResponse({ type: AudioClipResponseDto })
  @ApiErrorResponses(400, 404)
  async getAudioClip(@OwnerId() ownerId: string, @Param('clip_id', uuidParam('clip_id')) clipId: string): Promise<AudioClipResponseDto> {
    return toAudioClipResponse(await this.clips.get(ownerId, clipId));
  }

  @Post(':clip_id/complete')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Finish an upload: check the stored object and mark the clip ready',
    description: 'Idempotent: completing a ready clip returns it unchanged. 409 while nothing is uploaded; 422 when the upload differs from what was declared (the clip stays pending, so upload again).',
  })
  @ApiOkResponse({ type: AudioClipResponseDto })
  @ApiErrorResponses(400, 404, 409, 422, 503)
  @UploadRateLimited()
  async completeAudioClip(@OwnerId() ownerId: string, @Param('clip_id', uuidParam('clip_id')) clipId: string): Promise<AudioClipResponseDto> {
    return toAudioClipResponse(await this.clips.complete(ownerId, clipId));
  }

  @Get(':clip_id/playback')
  @ApiOperation({ summary: 'Get a presigned GET URL to play a ready clip' })
  @ApiOkResponse({ type: PlaybackDto })
  @ApiErrorResponses(400, 404, 409, 503)
  async getAudioClipPlayback(@OwnerId() ownerId: string, @Param('clip_id', uuidParam('clip_id')) clipId: string): Promise<PlaybackDto> {
    return toPlaybackDto(await this.clips.playback(ownerId, clipId));
  }

  @Delete(':clip_id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete an audio clip and its stored audio' })
  @ApiNoContentResponse({ description: 'Deleted.' })
  @ApiErrorResponses(400, 404, 503)
  async deleteAudioClip(@OwnerId() ownerId: string, @Param('clip_id', uuidParam('clip_id')) clipId: string): Promise<void> {
    await this.clips.delete(ownerId, clipId);
  }
}
