import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, MaxLength, MinLength } from 'class-validator';
import { NoControlCharacters, Optional } from '../common/validation';
import type { Page } from '../common/pagination';
import type { Note } from './note.entity';

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

export class NotePageDto {
  @ApiProperty({ type: [NoteResponseDto] })
  items!: NoteResponseDto[];

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
