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

  @ApiPropertyOptional({ description: 'Given on 500 answers; quote it when reporting the problem.', example: 'req-1a' })
  request_id?: string;
}

/** The one shape every error answer has. */
export class ErrorResponseDto {
  @ApiProperty({ example: 400 })
  status!: number;

  @ApiProperty({ type: ErrorBodyDto })
  error!: ErrorBodyDto;
}
