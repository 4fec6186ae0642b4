import { Body, Controller, Get, Headers, HttpCode, Param, Patch, Post, Query, Res } from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { OwnerId } from '../auth/auth.decorators';
import {
  ApiAuthenticated,
  ApiErrorResponses,
  invalidField,
  invalidPathId,
} from '../common/api-error-responses.decorator';
import { entityTagOf, matchesVersion, parseEntityTagCondition } from '../common/entity-tags';
import { DEFAULT_PAGE_SIZE, toPageRequest, PageQueryDto } from '../common/pagination';
import { PositiveIntegerParam, uuidParam } from '../common/validation';
import { idempotencyKeyOf } from '../idempotency/idempotency';
import {
  CreateNoteDto,
  decodeRevisionCursor,
  NoteListQueryDto,
  NotePageDto,
  NoteResponseDto,
  NoteRevisionDto,
  NoteRevisionPageDto,
  toNotePage,
  toNoteResponse,
  toNoteRevision,
  toNoteRevisionPage,
  toNoteSearchPage,
  UpdatedNoteResponseDto,
  UpdateNoteDto,
} from './note.dto';
import type { Note } from './note.entity';
import { NotesService } from './notes.service';
import { NotesSearchService } from './search/notes-search.service';
import { decodeSearchCursor } from './search/search-cursor';

const ETAG_HEADER = {
  ETag: { description: 'The note’s version as a strong entity tag: `"<version>"`.', schema: { type: 'string' } },
};
const IF_MATCH = {
  name: 'If-Match',
  required: false,
  description:
    'Only if the note is at this version: its ETag (`"3"`), a list of them, or `*`. Otherwise 412 NOTE_VERSION_MISMATCH with the current note in `error.current`, and nothing changes. A weak tag (`W/"3"`) never matches.',
};
const VERSION_PARAM = {
  name: 'version',
  description: 'A version of the note (its revisions list says which are kept).',
  schema: { type: 'integer' as const, minimum: 1, maximum: 2_147_483_647 },
};
const BAD_IF_MATCH = invalidField(
  'If-Match',
  'If-Match must be * or a list of entity tags such as "3" (from the ETag header)',
);

@ApiAuthenticated()
@ApiTags('notes')
@Controller('notes')
export class NotesController {
  constructor(
    private readonly notes: NotesService,
    private readonly search: NotesSearchService,
  ) {}

  @Post()
  @ApiOperation({
    summary: 'Create a note',
    description:
      'Retry-safe: send the client’s own `id` (a UUID v4) or an `Idempotency-Key`; a retry answers 201 with the note again and `Idempotent-Replayed: true`.',
  })
  @ApiCreatedResponse({ type: NoteResponseDto, headers: ETAG_HEADER })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description:
      'Any unique string (a UUID) per note: a retry with the same key and body answers with the same note; the same key with another body answers 422 IDEMPOTENCY_KEY_REUSED.',
  })
  @ApiErrorResponses(
    invalidField('title', 'title must be longer than or equal to 1 characters'),
    'INVALID_JSON',
    'UNSUPPORTED_MEDIA_TYPE',
    'PAYLOAD_TOO_LARGE',
    'NOTE_ID_CONFLICT',
    'NOTE_DELETED',
    'IDEMPOTENCY_KEY_REUSED',
  )
  async createNote(
    @OwnerId() ownerId: string,
    @Body() dto: CreateNoteDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<NoteResponseDto> {
    const key = idempotencyKeyOf(idempotencyKey);
    const { note, replayed } = await this.notes.create(ownerId, { id: dto.id, title: dto.title, body: dto.body }, key);
    if (replayed) void reply.header('idempotent-replayed', 'true');
    return withEntityTag(reply, note);
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
  @ApiHeader({
    name: 'If-None-Match',
    required: false,
    description: 'The ETag you hold (`"3"`), a list of them, or `*`: 304 with no body while the note is still at it.',
  })
  @ApiOkResponse({ type: NoteResponseDto, headers: ETAG_HEADER })
  @ApiResponse({
    status: 304,
    description: 'Not modified: the note is still at the version of `If-None-Match`.',
    headers: ETAG_HEADER,
  })
  @ApiErrorResponses(
    invalidPathId('note_id'),
    invalidField(
      'If-None-Match',
      'If-None-Match must be * or a list of entity tags such as "3" (from the ETag header)',
    ),
    'NOTE_NOT_FOUND',
    'NOTE_DELETED',
  )
  async getNote(
    @OwnerId() ownerId: string,
    @Param('note_id', uuidParam('note_id')) noteId: string,
    @Headers('if-none-match') ifNoneMatch: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<NoteResponseDto | undefined> {
    const condition = parseEntityTagCondition(ifNoneMatch, 'If-None-Match');
    const note = await this.notes.get(ownerId, noteId);
    if (condition && matchesVersion(condition, note.version)) {
      void reply.status(304).header('etag', entityTagOf(note.version));
      return undefined;
    }
    return withEntityTag(reply, note);
  }

  @Patch(':note_id')
  @ApiOperation({
    summary: 'Change a note’s title or body',
    description:
      'Send `base_version` (the version you edited from) to have an edit made offline merged with the changes since: ' +
      '200 with `merged: true`, or 409 NOTE_EDIT_CONFLICT when both changed the same lines (or the title). ' +
      'With `If-Match`, only if the note is still at that version (412 otherwise); `If-Match` is checked first. ' +
      'A change that changes nothing keeps the version. 410 NOTE_DELETED for a note deleted (on another device).',
  })
  @ApiHeader(IF_MATCH)
  @ApiOkResponse({ type: UpdatedNoteResponseDto, headers: ETAG_HEADER })
  @ApiErrorResponses(
    invalidPathId('note_id'),
    BAD_IF_MATCH,
    'INVALID_JSON',
    'UNSUPPORTED_MEDIA_TYPE',
    'PAYLOAD_TOO_LARGE',
    'NOTE_NOT_FOUND',
    'NOTE_EDIT_CONFLICT',
    'NOTE_DELETED',
    'NOTE_VERSION_MISMATCH',
  )
  async updateNote(
    @OwnerId() ownerId: string,
    @Param('note_id', uuidParam('note_id')) noteId: string,
    @Body() dto: UpdateNoteDto,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<UpdatedNoteResponseDto> {
    const condition = parseEntityTagCondition(ifMatch, 'If-Match');
    const changes = { title: dto.title, body: dto.body, baseVersion: dto.base_version };
    const { note, merged } = await this.notes.update(ownerId, noteId, changes, condition);
    return { ...withEntityTag(reply, note), merged };
  }

  @Get(':note_id/revisions')
  @ApiOperation({
    summary: 'List the note’s kept versions, newest first (the current one first)',
    description:
      'The newest NOTE_REVISIONS_KEPT versions of each note are kept (50 by default). Pages with `limit` and `cursor`.',
  })
  @ApiOkResponse({ type: NoteRevisionPageDto })
  @ApiErrorResponses(
    invalidPathId('note_id'),
    invalidField(
      'cursor',
      'cursor must be the next_cursor of a previous page',
      'cursor is not a cursor this API returned.',
    ),
    'NOTE_NOT_FOUND',
    'NOTE_DELETED',
  )
  async listNoteRevisions(
    @OwnerId() ownerId: string,
    @Param('note_id', uuidParam('note_id')) noteId: string,
    @Query() query: PageQueryDto,
  ): Promise<NoteRevisionPageDto> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const before = query.cursor === undefined ? undefined : decodeRevisionCursor(query.cursor);
    return toNoteRevisionPage(await this.notes.listRevisions(ownerId, noteId, limit + 1, before), limit);
  }

  @Get(':note_id/revisions/:version')
  @ApiOperation({ summary: 'Get one kept version of the note' })
  @ApiParam(VERSION_PARAM)
  @ApiOkResponse({ type: NoteRevisionDto })
  @ApiErrorResponses(
    invalidPathId('note_id'),
    invalidField('version', 'version must be a positive integer', 'version must be a positive integer.'),
    'NOTE_NOT_FOUND',
    'NOTE_REVISION_NOT_FOUND',
    'NOTE_DELETED',
  )
  async getNoteRevision(
    @OwnerId() ownerId: string,
    @Param('note_id', uuidParam('note_id')) noteId: string,
    @PositiveIntegerParam('version') version: number,
  ): Promise<NoteRevisionDto> {
    return toNoteRevision(await this.notes.getRevision(ownerId, noteId, version));
  }

  @Post(':note_id/revisions/:version/restore')
  @HttpCode(200)
  @ApiParam(VERSION_PARAM)
  @ApiOperation({
    summary: 'Restore a kept version: a new version of the note with that version’s title and body',
    description: 'With `If-Match`, only if the note is still at that version (412 otherwise).',
  })
  @ApiHeader(IF_MATCH)
  @ApiOkResponse({ type: NoteResponseDto, headers: ETAG_HEADER })
  @ApiErrorResponses(
    invalidPathId('note_id'),
    invalidField('version', 'version must be a positive integer', 'version must be a positive integer.'),
    BAD_IF_MATCH,
    'NOTE_NOT_FOUND',
    'NOTE_REVISION_NOT_FOUND',
    'NOTE_DELETED',
    'NOTE_VERSION_MISMATCH',
  )
  async restoreNoteRevision(
    @OwnerId() ownerId: string,
    @Param('note_id', uuidParam('note_id')) noteId: string,
    @PositiveIntegerParam('version') version: number,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<NoteResponseDto> {
    const condition = parseEntityTagCondition(ifMatch, 'If-Match');
    return withEntityTag(reply, await this.notes.restore(ownerId, noteId, version, condition));
  }

  // DELETE /notes/{note_id} is NoteAudioClipsController.deleteNote: a note's deletion takes its audio with it.
}

function withEntityTag(reply: FastifyReply, note: Note): NoteResponseDto {
  void reply.header('etag', entityTagOf(note.version));
  return toNoteResponse(note);
}
