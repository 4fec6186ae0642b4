import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ERROR_STATUS } from './app-error';

export class ErrorDetailDto {
  @ApiProperty({ example: 'mime_type' })
  field!: string;

  @ApiProperty({ example: 'mime_type must be one of the accepted audio types: audio/m4a, audio/mpeg, …' })
  message!: string;
}

export class NoteConflictRegionDto {
  @ApiProperty({ enum: ['title', 'body'], example: 'body' })
  field!: 'title' | 'body';

  @ApiProperty({
    description: 'Where the region starts in the base: line number (1-based) of the body; 1 for the title.',
    example: 1,
  })
  base_line!: number;

  @ApiProperty({ description: 'The region as it was in the base version.', example: 'Release train.\n' })
  base!: string;

  @ApiProperty({ description: 'The region as the note has it now.', example: 'Release train on Tuesday.\n' })
  current!: string;

  @ApiProperty({ description: 'The region as your edit has it.', example: 'Release train on Friday.\n' })
  yours!: string;
}

export class ErrorBodyDto {
  @ApiProperty({ enum: Object.keys(ERROR_STATUS), example: 'VALIDATION_FAILED' })
  code!: string;

  @ApiProperty({ example: 'The request body is not valid.' })
  message!: string;

  @ApiPropertyOptional({ type: [ErrorDetailDto] })
  details?: ErrorDetailDto[];

  @ApiPropertyOptional({
    type: 'integer',
    isArray: true,
    description: 'UPLOAD_PARTS_MISSING: the part numbers the store does not hold yet.',
    example: [3, 4],
  })
  missing_parts?: number[];

  @ApiProperty({
    required: true,
    description:
      'The request id, also in the X-Request-Id answer header and on every log line of the request; quote it when reporting a problem.',
    example: '3f0c9a52-6f1e-4f7e-9d55-0b2b1f7f4a10',
  })
  request_id?: string;

  @ApiPropertyOptional({ type: 'integer', description: 'QUOTA_EXCEEDED: the quota, in bytes.', example: 104857600 })
  quota_bytes?: number;

  @ApiPropertyOptional({
    type: 'integer',
    description:
      'QUOTA_EXCEEDED: bytes held in pending and ready clips, and what the still-valid upload URLs of deleted or failed clips can write (`dead_upload_bytes`).',
    example: 104837600,
  })
  used_bytes?: number;

  @ApiPropertyOptional({ type: 'integer', description: 'QUOTA_EXCEEDED: bytes still free.', example: 20000 })
  remaining_bytes?: number;

  @ApiPropertyOptional({
    type: 'integer',
    description:
      'TOO_MANY_PENDING_UPLOADS: uploads not yet completed, counting the still-valid upload URLs of deleted or failed clips (`dead_uploads`).',
    example: 100,
  })
  pending_uploads?: number;

  @ApiPropertyOptional({
    type: 'integer',
    description: 'TOO_MANY_PENDING_UPLOADS: their declared bytes, counting `dead_upload_bytes`.',
    example: 1048576000,
  })
  pending_bytes?: number;

  @ApiPropertyOptional({ type: 'integer', description: 'TOO_MANY_PENDING_UPLOADS: MAX_PENDING_UPLOADS.', example: 100 })
  max_pending_uploads?: number;

  @ApiPropertyOptional({
    type: 'integer',
    description: 'TOO_MANY_PENDING_UPLOADS: MAX_PENDING_UPLOAD_BYTES.',
    example: 1073741824,
  })
  max_pending_upload_bytes?: number;

  @ApiPropertyOptional({
    type: 'integer',
    description:
      'QUOTA_EXCEEDED, TOO_MANY_PENDING_UPLOADS: upload URLs of deleted or failed clips that stay valid (a presigned S3 URL cannot be revoked), each counted as a pending upload of its clip’s bytes until it has run out.',
    example: 1,
  })
  dead_uploads?: number;

  @ApiPropertyOptional({
    type: 'integer',
    description: 'QUOTA_EXCEEDED, TOO_MANY_PENDING_UPLOADS: the bytes those URLs can still write.',
    example: 123456,
  })
  dead_upload_bytes?: number;

  @ApiPropertyOptional({
    description:
      'QUOTA_EXCEEDED, TOO_MANY_PENDING_UPLOADS: when the last of those URLs stops counting (its expiry plus an hour for an upload under way; the janitor’s next pass frees it). Absent when there are none.',
    format: 'date-time',
    example: '2026-11-27T10:45:00.000Z',
  })
  dead_uploads_counted_until?: string;

  @ApiPropertyOptional({
    description: 'RENDITION_FAILED: why the rendition could not be made (the phone plays the original instead).',
    example: 'the decoder ran past its 600 s limit and was stopped',
  })
  failure_reason?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description:
      'NOTE_VERSION_MISMATCH, NOTE_EDIT_CONFLICT: the note as it is now, in the shape of a note (with its `version`).',
  })
  current?: Record<string, unknown>;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'NOTE_EDIT_CONFLICT: the version your edit started from: `version`, `title`, `body`.',
  })
  base?: Record<string, unknown>;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'NOTE_EDIT_CONFLICT: the note as your edit would make it from the base: `title`, `body`.',
  })
  yours?: Record<string, unknown>;

  @ApiPropertyOptional({
    type: [NoteConflictRegionDto],
    description: 'NOTE_EDIT_CONFLICT: the regions that both your edit and the changes since changed differently.',
  })
  conflicts?: NoteConflictRegionDto[];
}

/** The one shape every error answer has. */
export class ErrorResponseDto {
  @ApiProperty({ type: 'integer', example: 400 })
  status!: number;

  @ApiProperty({ type: ErrorBodyDto })
  error!: ErrorBodyDto;
}
