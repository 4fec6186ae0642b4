import { Controller, Delete, Get, Headers, HttpCode } from '@nestjs/common';
import { ApiAcceptedResponse, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { OwnerId } from '../auth/auth.decorators';
import { ApiAuthenticated, ApiErrorResponses } from '../common/api-error-responses.decorator';
import { AccountDeletionDto, AccountUsageDto, toAccountDeletionDto, toAccountUsageDto } from './account.dto';
import { AccountService } from './account.service';

@ApiAuthenticated()
@ApiTags('account')
@Controller('me')
export class AccountController {
  constructor(private readonly account: AccountService) {}

  @Get()
  @ApiOperation({
    summary: 'Your usage and limits',
    description:
      'The figures the storage quota (413 QUOTA_EXCEEDED) and the pending-upload caps (409 TOO_MANY_PENDING_UPLOADS) enforce, ' +
      'computed by the same query, under the same names: `used_bytes` of `quota_bytes` is what a create is checked against.',
  })
  @ApiOkResponse({ type: AccountUsageDto })
  @ApiErrorResponses()
  async getMe(@OwnerId() ownerId: string): Promise<AccountUsageDto> {
    return toAccountUsageDto(await this.account.usage(ownerId));
  }

  @Delete()
  @HttpCode(202)
  @ApiOperation({
    summary: 'Delete your account: every note, recording, upload and export',
    description:
      'Every row that is yours goes at once; every stored object is scheduled for deletion (the answer counts them) and deleted ' +
      'in the background, retried while the store is down. Upload URLs handed out before stop mattering: whatever they still ' +
      'write is deleted once they have run out. Repeating it answers 202 again. Your token then works for a fresh, empty account.',
  })
  @ApiHeader({
    name: 'Confirm-Delete',
    required: true,
    description: 'Your `user_id` from GET /api/me, percent-encoded (encodeURIComponent).',
  })
  @ApiAcceptedResponse({ type: AccountDeletionDto })
  @ApiErrorResponses('DELETE_NOT_CONFIRMED')
  async deleteMe(
    @OwnerId() ownerId: string,
    @Headers('confirm-delete') confirmation: string | undefined,
  ): Promise<AccountDeletionDto> {
    return toAccountDeletionDto(await this.account.delete(ownerId, confirmation));
  }
}
