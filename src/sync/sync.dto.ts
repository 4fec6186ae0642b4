import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { AudioClipResponseDto } from '../audio-clips/audio-clip.dto';
import { NoteResponseDto } from '../notes/note.dto';

export const MAX_SYNC_PAGE = 100;

export class SyncChangesQueryDto {
  @ApiPropertyOptional({
    minimum: 1,
    maximum: MAX_SYNC_PAGE,
    default: MAX_SYNC_PAGE,
    description: 'How many changes per page.',
  })
  @IsOptional()
  // Only plain digits: Number() would also take "0x10", "1e1" and " 5".
  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && /^\d{1,4}$/.test(value) ? Number(value) : value,
  )
  @IsInt()
  @Min(1)
  @Max(MAX_SYNC_PAGE)
  limit?: number;

  @ApiPropertyOptional({
    description:
      'The `next_cursor` of your last pull; omit it for a full sync (every note and clip you have, page by page).',
  })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  cursor?: string;
}

export class SyncChangeDto {
  @ApiProperty({ enum: ['note', 'audio_clip'], example: 'note' })
  type!: 'note' | 'audio_clip';

  @ApiProperty({ format: 'uuid', example: '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90' })
  id!: string;

  @ApiProperty({ description: 'True for a tombstone: the item was deleted; drop your copy.', example: false })
  deleted!: boolean;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When it was deleted; null unless `deleted`.',
    example: null,
  })
  deleted_at!: string | null;

  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'A note’s version (its last one, for a deleted note); null for an audio clip.',
    example: 3,
  })
  version!: number | null;

  @ApiPropertyOptional({ type: NoteResponseDto, description: 'The note as it is now (type `note`, not deleted).' })
  note?: NoteResponseDto;

  @ApiPropertyOptional({
    type: AudioClipResponseDto,
    description: 'The clip as it is now (type `audio_clip`, not deleted).',
  })
  audio_clip?: AudioClipResponseDto;
}

export class SyncChangesDto {
  @ApiProperty({
    type: [SyncChangeDto],
    description:
      'Every note and clip created, changed or deleted since the cursor, each once, in its latest state, oldest change first.',
  })
  changes!: SyncChangeDto[];

  @ApiProperty({
    description: 'Never null: keep it, and send it as `cursor` on your next pull (at once when `has_more`).',
  })
  next_cursor!: string;

  @ApiProperty({ description: 'More changes are waiting: pull again with `next_cursor` now.', example: false })
  has_more!: boolean;
}
