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

  @ApiPropertyOptional({ description: 'Given on 500 answers; quote it when reporting the problem.', example: 'req-1a' })
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
