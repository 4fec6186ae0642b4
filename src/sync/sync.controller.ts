import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { OwnerId } from '../auth/auth.decorators';
import { ApiAuthenticated, ApiErrorResponses, invalidField } from '../common/api-error-responses.decorator';
import { MAX_SYNC_PAGE, SyncChangesDto, SyncChangesQueryDto } from './sync.dto';
import { SyncService } from './sync.service';

@ApiAuthenticated()
@ApiTags('sync')
@Controller('sync')
export class SyncController {
  constructor(private readonly sync: SyncService) {}

  @Get('changes')
  @ApiOperation({
    summary: 'What changed since your last pull: notes and audio clips created, changed or deleted',
    description:
      'Without `cursor`, a full first sync, page by page. Each item comes once, in its latest state; deletions come as tombstones ' +
      '(`deleted: true`). Keep `next_cursor` (never null) and pull again with it; at once while `has_more`. ' +
      '410 SYNC_CURSOR_EXPIRED: the cursor is older than the deletions kept (SYNC_TOMBSTONE_TTL_SECONDS, 90 days): sync again from the start. See docs/sync.md.',
  })
  @ApiOkResponse({ type: SyncChangesDto })
  @ApiErrorResponses(
    invalidField(
      'cursor',
      'cursor must be the next_cursor of an earlier pull of /api/sync/changes',
      'cursor is not a cursor this API returned.',
    ),
    'SYNC_CURSOR_EXPIRED',
  )
  async listSyncChanges(@OwnerId() ownerId: string, @Query() query: SyncChangesQueryDto): Promise<SyncChangesDto> {
    return this.sync.changes(ownerId, query.cursor, query.limit ?? MAX_SYNC_PAGE);
  }
}
