import { Controller, Delete, Get, Headers, HttpCode, Param, Query } from '@nestjs/common';
import { ApiHeader, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { OwnerId } from '../auth/auth.decorators';
import {
  ApiAuthenticated,
  ApiErrorResponses,
  invalidField,
  invalidPathId,
} from '../common/api-error-responses.decorator';
import { parseEntityTagCondition } from '../common/entity-tags';
import { PageQueryDto, toPageRequest } from '../common/pagination';
import { uuidParam } from '../common/validation';
import {
  AudioClipPageDto,
  NoteAudioDto,
  PlaybackQueryDto,
  toAudioClipPage,
  toAudioClipResponse,
  toPlaybackDto,
} from './audio-clip.dto';
import { AudioClipsService } from './audio-clips.service';
import { NoteDeletionService } from './deletions/note-deletion.service';

/** The audio of one note, reached through the note; and the note's deletion, which takes its audio with it. */
@ApiAuthenticated()
@ApiTags('notes')
@Controller('notes/:note_id')
export class NoteAudioClipsController {
  constructor(
    private readonly clips: AudioClipsService,
    private readonly noteDeletion: NoteDeletionService,
  ) {}

  @Get('audio')
  @ApiOperation({
    summary: 'Get the note’s primary clip (its most recently completed ready clip) with a playback URL',
    description: '`format=m4a` plays its rendition, with the same answers as the clip’s playback.',
  })
  @ApiOkResponse({ type: NoteAudioDto })
  @ApiErrorResponses(
    invalidPathId('note_id'),
    invalidField('format', 'format must be one of: m4a'),
    'NOTE_NOT_FOUND',
    'NOTE_DELETED',
    'NO_READY_AUDIO_CLIP',
    'RENDITION_NOT_READY',
    'RENDITION_FAILED',
    'RENDITION_UNAVAILABLE',
  )
  async getNoteAudio(
    @OwnerId() ownerId: string,
    @Param('note_id', uuidParam('note_id')) noteId: string,
    @Query() query: PlaybackQueryDto,
  ): Promise<NoteAudioDto> {
    const { clip, playback } = await this.clips.primaryOfNote(ownerId, noteId, query.format);
    return { clip: toAudioClipResponse(clip), playback: toPlaybackDto(playback) };
  }

  @Get('audio-clips')
  @ApiOperation({ summary: 'List the note’s audio clips in every state, newest first' })
  @ApiOkResponse({ type: AudioClipPageDto })
  @ApiErrorResponses(invalidPathId('note_id'), 'NOTE_NOT_FOUND', 'NOTE_DELETED')
  async listNoteAudioClips(
    @OwnerId() ownerId: string,
    @Param('note_id', uuidParam('note_id')) noteId: string,
    @Query() query: PageQueryDto,
  ): Promise<AudioClipPageDto> {
    return toAudioClipPage(await this.clips.listOfNote(ownerId, noteId, toPageRequest(query)));
  }

  @Delete()
  @HttpCode(204)
  @ApiOperation({
    summary: 'Delete a note with all its audio clips and their stored audio',
    description:
      'The deletion shows in the change feed as a tombstone (the note’s and each clip’s). Deleting a note you deleted already answers 204 again. ' +
      'With `If-Match`, only if the note is still at that version (412 with the current note otherwise).',
  })
  @ApiHeader({
    name: 'If-Match',
    required: false,
    description:
      'Only if the note is at this version: its ETag (`"3"`), a list of them, or `*`. A weak tag never matches.',
  })
  @ApiNoContentResponse({ description: 'Deleted (now, or before).' })
  @ApiErrorResponses(
    invalidPathId('note_id'),
    invalidField('If-Match', 'If-Match must be * or a list of entity tags such as "3" (from the ETag header)'),
    'NOTE_NOT_FOUND',
    'NOTE_VERSION_MISMATCH',
  )
  async deleteNote(
    @OwnerId() ownerId: string,
    @Param('note_id', uuidParam('note_id')) noteId: string,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<void> {
    await this.noteDeletion.delete(ownerId, noteId, parseEntityTagCondition(ifMatch, 'If-Match'));
  }
}
