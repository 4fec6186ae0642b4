import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength, MinLength } from 'class-validator';
import { NoControlCharacters, Optional } from '../common/validation';
import { PageQueryDto, type Page } from '../common/pagination';
import type { Note } from './note.entity';
import type { SearchHit } from './search/notes-search.service';
import { MAX_QUERY_CLAUSES, MAX_QUERY_LENGTH, MAX_QUERY_TERMS } from './search/search-query';

export const MAX_NOTE_BODY_LENGTH = 100_000;

export class CreateNoteDto {
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
}

export class NoteResponseDto {
  @ApiProperty({ format: 'uuid', example: '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90' })
  id!: string;

  @ApiProperty({ example: 'Standup ideas' })
  title!: string;

  @ApiProperty({ example: 'Talk about the release train.' })
  body!: string;

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

export function toNoteResponse(note: Note): NoteResponseDto {
  return {
    id: note.id,
    title: note.title,
    body: note.body,
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
      created_at: hit.createdAt.toISOString(),
      updated_at: hit.updatedAt.toISOString(),
      highlight: hit.highlight,
    })),
    next_cursor: page.nextCursor,
  };
}
