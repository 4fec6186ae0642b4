import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsOptional, IsString, IsUUID, Max, MaxLength, Min, MinLength } from 'class-validator';
import { lowerCaseUuid, NoControlCharacters, Optional } from '../common/validation';
import { PageQueryDto, type Page } from '../common/pagination';
import type { Note } from './note.entity';
import type { NoteRevision } from './note-revision.entity';
import { AppError } from '../common/app-error';
import type { SearchHit } from './search/notes-search.service';
import { MAX_QUERY_CLAUSES, MAX_QUERY_LENGTH, MAX_QUERY_TERMS } from './search/search-query';

/** Versions are SQL integers. */
export const MAX_NOTE_VERSION = 2_147_483_647;

export const MAX_NOTE_BODY_LENGTH = 100_000;

export class CreateNoteDto {
  @ApiPropertyOptional({
    format: 'uuid',
    description:
      'The note’s id, chosen by the client (a UUID v4), so that a phone can create a note offline and link recordings to it. ' +
      'Sent again with the same title and body, it answers the note again (201, `Idempotent-Replayed: true`); an id any other ' +
      'note has or had (deleted notes included) answers 409 NOTE_ID_CONFLICT. Omitted, the server chooses one.',
    example: '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90',
  })
  @Optional()
  @Transform(lowerCaseUuid)
  @IsUUID('4')
  id?: string;

  @ApiProperty({ minLength: 1, maxLength: 200, example: 'Standup ideas' })
  @IsString()
  @MinLength(1)
  @MaxLength(200)
  @NoControlCharacters({ allowLineBreaks: false })
  title!: string;

  @ApiPropertyOptional({ maxLength: MAX_NOTE_BODY_LENGTH, default: '', example: 'Talk about the release train.' })
  @Optional()
  @IsString()
  @MaxLength(MAX_NOTE_BODY_LENGTH)
  @NoControlCharacters({ allowLineBreaks: true })
  body?: string;
}

export class UpdateNoteDto {
  @ApiPropertyOptional({ minLength: 1, maxLength: 200, example: 'Standup ideas (edited)' })
  @Optional()
  @IsString()
  @MinLength(1)
  @MaxLength(200)
  @NoControlCharacters({ allowLineBreaks: false })
  title?: string;

  @ApiPropertyOptional({ maxLength: MAX_NOTE_BODY_LENGTH, example: 'Talk about the release train, then hiring.' })
  @Optional()
  @IsString()
  @MaxLength(MAX_NOTE_BODY_LENGTH)
  @NoControlCharacters({ allowLineBreaks: true })
  body?: string;

  @ApiPropertyOptional({
    minimum: 1,
    description:
      'The version your edit started from. When the note has changed since, the server merges your change with the changes since ' +
      '(line by line for the body, the title as one unit): 200 with `merged: true`, or 409 NOTE_EDIT_CONFLICT when they overlap. ' +
      'A version whose revision is no longer kept answers 412 NOTE_VERSION_MISMATCH. Omitted, the edit applies to the current version.',
    example: 3,
  })
  @Optional()
  @IsInt()
  @Min(1)
  @Max(MAX_NOTE_VERSION)
  base_version?: number;
}

export class NoteResponseDto {
  @ApiProperty({ format: 'uuid', example: '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90' })
  id!: string;

  @ApiProperty({ example: 'Standup ideas' })
  title!: string;

  @ApiProperty({ example: 'Talk about the release train.' })
  body!: string;

  @ApiProperty({
    minimum: 1,
    description: '1 on create, +1 on every change; also the `ETag` ("<version>").',
    example: 1,
  })
  version!: number;

  @ApiProperty({ format: 'date-time', example: '2026-11-27T09:30:00.000Z' })
  created_at!: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-27T09:30:00.000Z' })
  updated_at!: string;
}

export class NoteListQueryDto extends PageQueryDto {
  @ApiPropertyOptional({
    maxLength: MAX_QUERY_LENGTH,
    example: 'milk "oat milk" -almond rec',
    description:
      'Search: only the notes whose title or body match, notes whose title matches every term first, then newest ' +
      '`updated_at` first (docs/search.md). Every word must match, in any order; `"a phrase"` matches words next to ' +
      'each other; `-word` excludes; the last word matches as a prefix. Case and accents are ignored; Chinese, ' +
      `Japanese and Korean match by two or more adjacent characters. At most ${MAX_QUERY_LENGTH} characters, ` +
      `${MAX_QUERY_CLAUSES} words and ${MAX_QUERY_TERMS} terms. A query with no word to look for finds nothing.`,
  })
  @IsOptional()
  @IsString()
  q?: string;
}

export class HighlightMatchDto {
  @ApiProperty({ minimum: 0, description: 'Offset in `text`, in UTF-16 code units.', example: 9 })
  start!: number;

  @ApiProperty({ minimum: 1, description: 'Length in UTF-16 code units.', example: 4 })
  length!: number;
}

export class NoteHighlightDto {
  @ApiProperty({
    description: 'A short passage of the body around the first match, as stored (no markup).',
    example: 'Remember milk and eggs',
  })
  text!: string;

  @ApiProperty({ type: [HighlightMatchDto] })
  matches!: HighlightMatchDto[];
}

export class NoteListItemDto extends NoteResponseDto {
  @ApiPropertyOptional({
    type: NoteHighlightDto,
    nullable: true,
    description: 'Only in search results (`q`): where the body matches, or null when only the title matched.',
  })
  highlight?: NoteHighlightDto | null;
}

export class NotePageDto {
  @ApiProperty({ type: [NoteListItemDto] })
  items!: NoteListItemDto[];

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as `cursor` to get the next page; null on the last page.',
  })
  next_cursor!: string | null;
}

export class UpdatedNoteResponseDto extends NoteResponseDto {
  @ApiProperty({
    description: 'True when your edit started from an older version and was merged with the changes since.',
    example: false,
  })
  merged!: boolean;
}

export class NoteRevisionDto {
  @ApiProperty({ minimum: 1, example: 2 })
  version!: number;

  @ApiProperty({ example: 'Standup ideas' })
  title!: string;

  @ApiProperty({ example: 'Talk about the release train.' })
  body!: string;

  @ApiProperty({
    format: 'date-time',
    description: 'When this version was written.',
    example: '2026-11-27T09:30:00.000Z',
  })
  created_at!: string;
}

export class NoteRevisionPageDto {
  @ApiProperty({ type: [NoteRevisionDto], description: 'Newest first; the note’s current version is the first.' })
  items!: NoteRevisionDto[];

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as `cursor` to get the next page; null on the last page.',
  })
  next_cursor!: string | null;
}

export function toNoteRevision(revision: NoteRevision): NoteRevisionDto {
  return {
    version: revision.version,
    title: revision.title,
    body: revision.body,
    created_at: revision.createdAt.toISOString(),
  };
}

export function toNoteResponse(note: Note): NoteResponseDto {
  return {
    id: note.id,
    title: note.title,
    body: note.body,
    version: note.version,
    created_at: note.createdAt.toISOString(),
    updated_at: note.updatedAt.toISOString(),
  };
}

export function toNotePage(page: Page<Note>): NotePageDto {
  return { items: page.items.map(toNoteResponse), next_cursor: page.nextCursor };
}

export function toNoteSearchPage(page: Page<SearchHit>): NotePageDto {
  return {
    items: page.items.map((hit) => ({
      id: hit.id,
      title: hit.title,
      body: hit.body,
      version: hit.version,
      created_at: hit.createdAt,
      updated_at: hit.updatedAt,
      highlight: hit.highlight,
    })),
    next_cursor: page.nextCursor,
  };
}

/** The revisions' cursor: the version the next page starts below. */
export function encodeRevisionCursor(version: number): string {
  return Buffer.from(JSON.stringify(['revisions-before', version])).toString('base64url');
}

export function decodeRevisionCursor(raw: string): number {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && parsed[0] === 'revisions-before') {
      const version: unknown = parsed[1];
      if (typeof version === 'number' && Number.isSafeInteger(version) && version >= 1 && version <= MAX_NOTE_VERSION)
        return version;
    }
  } catch {
    // fall through to the error below
  }
  throw new AppError('VALIDATION_FAILED', 'cursor is not a cursor this API returned.', {
    details: [{ field: 'cursor', message: 'cursor must be the next_cursor of a previous page' }],
  });
}

export function toNoteRevisionPage(revisions: NoteRevision[], limit: number): NoteRevisionPageDto {
  const items = revisions.slice(0, limit);
  return {
    items: items.map(toNoteRevision),
    next_cursor: revisions.length > limit ? encodeRevisionCursor(items[items.length - 1].version) : null,
  };
}
