import { Body, Controller, Get, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { OwnerId } from '../auth/auth.decorators';
import {
  ApiAuthenticated,
  ApiErrorResponses,
  invalidField,
  invalidPathId,
} from '../common/api-error-responses.decorator';
import { toPageRequest, PageQueryDto } from '../common/pagination';
import { uuidParam } from '../common/validation';
import { CreateNoteDto, NotePageDto, NoteResponseDto, toNotePage, toNoteResponse, UpdateNoteDto } from './note.dto';
import { NotesService } from './notes.service';

@ApiAuthenticated()
@ApiTags('notes')
@Controller('notes')
export class NotesController {
  constructor(private readonly notes: NotesService) {}

  @Post()
  @ApiOperation({ summary: 'Create a note' })
  @ApiCreatedResponse({ type: NoteResponseDto })
  @ApiErrorResponses(
    invalidField('title', 'title must be longer than or equal to 1 characters'),
    'INVALID_JSON',
    'UNSUPPORTED_MEDIA_TYPE',
    'PAYLOAD_TOO_LARGE',
  )
  async createNote(@OwnerId() ownerId: string, @Body() dto: CreateNoteDto): Promise<NoteResponseDto> {
    return toNoteResponse(await this.notes.create(ownerId, dto));
  }

  @Get()
  @ApiOperation({
    summary: 'List notes, newest first',
    description: 'Cursor pagination: pass `next_cursor` back as `cursor`.',
  })
  @ApiOkResponse({ type: NotePageDto })
  @ApiErrorResponses(
    invalidField(
      'cursor',
      'cursor must be the next_cursor of a previous page',
      'cursor is not a cursor this API returned.',
    ),
  )
  async listNotes(@OwnerId() ownerId: string, @Query() query: PageQueryDto): Promise<NotePageDto> {
    return toNotePage(await this.notes.list(ownerId, toPageRequest(query)));
  }

  @Get(':note_id')
  @ApiOperation({ summary: 'Get a note' })
  @ApiOkResponse({ type: NoteResponseDto })
  @ApiErrorResponses(invalidPathId('note_id'), 'NOTE_NOT_FOUND')
  async getNote(
    @OwnerId() ownerId: string,
    @Param('note_id', uuidParam('note_id')) noteId: string,
  ): Promise<NoteResponseDto> {
    return toNoteResponse(await this.notes.get(ownerId, noteId));
  }

  @Patch(':note_id')
  @ApiOperation({ summary: 'Change a note’s title or body' })
  @ApiOkResponse({ type: NoteResponseDto })
  @ApiErrorResponses(
    invalidPathId('note_id'),
    'INVALID_JSON',
    'UNSUPPORTED_MEDIA_TYPE',
    'PAYLOAD_TOO_LARGE',
    'NOTE_NOT_FOUND',
  )
  async updateNote(
    @OwnerId() ownerId: string,
    @Param('note_id', uuidParam('note_id')) noteId: string,
    @Body() dto: UpdateNoteDto,
  ): Promise<NoteResponseDto> {
    return toNoteResponse(await this.notes.update(ownerId, noteId, dto));
  }

  // DELETE /notes/{note_id} is NoteAudioClipsController.deleteNote: a note's deletion takes its clips' audio with it.
}
