import { Body, Controller, Get, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { OwnerId } from '../auth/auth.decorators';
import {
  ApiAuthenticated,
  ApiErrorResponses,
  invalidField,
  invalidPathId,
} from '../common/api-error-responses.decorator';
import { toPageRequest } from '../common/pagination';
import { uuidParam } from '../common/validation';
import {
  CreateNoteDto,
  NoteListQueryDto,
  NotePageDto,
  NoteResponseDto,
  toNotePage,
  toNoteResponse,
  toNoteSearchPage,
  UpdateNoteDto,
} from './note.dto';
import { NotesService } from './notes.service';
import { NotesSearchService } from './search/notes-search.service';
import { decodeSearchCursor } from './search/search-cursor';

@ApiAuthenticated()
@ApiTags('notes')
@Controller('notes')
export class NotesController {
  constructor(
    private readonly notes: NotesService,
    private readonly search: NotesSearchService,
  ) {}

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
    summary: 'List notes, newest first, or search them with `q`',
    description:
      'Cursor pagination: pass `next_cursor` back as `cursor` (with the same `q`). With `q`, only matching notes, ' +
      'each with a `highlight`, in search order (docs/search.md).',
  })
  @ApiOkResponse({ type: NotePageDto })
  @ApiErrorResponses(
    invalidField(
      'cursor',
      'cursor must be the next_cursor of a previous page',
      'cursor is not a cursor this API returned.',
    ),
    invalidField(
      'q',
      'q must be at most 500 characters long',
      'The search query is not valid: q must be at most 500 characters long.',
    ),
  )
  async listNotes(@OwnerId() ownerId: string, @Query() query: NoteListQueryDto): Promise<NotePageDto> {
    if (query.q !== undefined) {
      const after = query.cursor === undefined ? undefined : decodeSearchCursor(query.cursor);
      const page = toPageRequest({ limit: query.limit });
      return toNoteSearchPage(await this.search.find(ownerId, query.q, page.limit, after));
    }
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
