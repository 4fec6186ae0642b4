import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { OwnerId } from '../auth/auth.decorators';
import { ApiAuthenticated, ApiErrorResponses, invalidPathId } from '../common/api-error-responses.decorator';
import { uuidParam } from '../common/validation';
import { ExportResponseDto, toExportResponse } from './export.dto';
import { ExportsService } from './exports.service';

@ApiAuthenticated()
@ApiTags('account')
@Controller('me/exports')
export class ExportsController {
  constructor(private readonly exports: ExportsService) {}

  @Post()
  @HttpCode(202)
  @ApiOperation({
    summary: 'Export all your data as one zip archive',
    description:
      'Built in the background: poll GET /api/me/exports/{export_id} until `status` is `ready`, then download `url`. The zip holds ' +
      '`notes.json` (every note’s and recording’s metadata), one Markdown file per note and every ready recording’s original bytes. ' +
      'One export runs at a time: asking again while one is pending or running answers that one. At most EXPORTS_PER_DAY (5) ' +
      'may be asked for in 24 hours (429 past it, with Retry-After). Exports do not count toward your storage quota.',
  })
  @ApiAcceptedResponse({ type: ExportResponseDto })
  @ApiErrorResponses('EXPORTS_PER_DAY_EXCEEDED')
  async createExport(@OwnerId() ownerId: string): Promise<ExportResponseDto> {
    return toExportResponse(await this.exports.create(ownerId));
  }

  @Get(':export_id')
  @ApiOperation({
    summary: 'An export’s status, and once ready its download URL',
    description: '410 EXPORT_EXPIRED once its archive has expired and was deleted.',
  })
  @ApiOkResponse({ type: ExportResponseDto })
  @ApiErrorResponses(invalidPathId('export_id'), 'EXPORT_NOT_FOUND', 'EXPORT_EXPIRED')
  async getExport(
    @OwnerId() ownerId: string,
    @Param('export_id', uuidParam('export_id')) exportId: string,
  ): Promise<ExportResponseDto> {
    return toExportResponse(await this.exports.get(ownerId, exportId));
  }
}
