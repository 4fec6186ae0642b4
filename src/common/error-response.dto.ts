import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ERROR_STATUS } from './app-error';

export class ErrorDetailDto {
  @ApiProperty({ example: 'mime_type' })
  field!: string;

  @ApiProperty({ example: 'mime_type must be one of the accepted audio types: audio/m4a, audio/mpeg, …' })
  message!: string;
}

export class ErrorBodyDto {
  @ApiProperty({ enum: Object.keys(ERROR_STATUS), example: 'VALIDATION_FAILED' })
  code!: string;

  @ApiProperty({ example: 'The request body is not valid.' })
  message!: string;

  @ApiPropertyOptional({ type: [ErrorDetailDto] })
  details?: ErrorDetailDto[];

  @ApiPropertyOptional({
    type: [Number],
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

  @ApiPropertyOptional({ description: 'QUOTA_EXCEEDED: the quota, in bytes.', example: 104857600 })
  quota_bytes?: number;

  @ApiPropertyOptional({ description: 'QUOTA_EXCEEDED: bytes held in pending and ready clips.', example: 104837600 })
  used_bytes?: number;

  @ApiPropertyOptional({ description: 'QUOTA_EXCEEDED: bytes still free.', example: 20000 })
  remaining_bytes?: number;
}

/** The one shape every error answer has. */
export class ErrorResponseDto {
  @ApiProperty({ example: 400 })
  status!: number;

  @ApiProperty({ type: ErrorBodyDto })
  error!: ErrorBodyDto;
}
