import { ApiProperty } from '@nestjs/swagger';
import type { AccountDeletion, AccountUsage } from './account.service';

/** `GET /api/me`: the figures the quota and the pending caps enforce, under the names their refusals use. */
export class AccountUsageDto {
  @ApiProperty({
    description: 'The `sub` of your token: send it back percent-encoded as `Confirm-Delete`.',
    example: 'alice',
  })
  user_id!: string;

  @ApiProperty({ example: 12 })
  notes!: number;

  @ApiProperty({ description: 'Your audio clips, in every state.', example: 30 })
  audio_clips!: number;

  @ApiProperty({
    description:
      'What the quota counts: ready and pending recordings, and what the still-valid upload URLs of deleted or failed ones can write.',
    example: 83886080,
  })
  used_bytes!: number;

  @ApiProperty({ description: 'Uploads not yet completed, the dead upload URLs still counted included.', example: 1 })
  pending_uploads!: number;

  @ApiProperty({ description: 'Their bytes.', example: 123456 })
  pending_bytes!: number;

  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'Your storage quota; null when there is none.',
    example: 104857600,
  })
  quota_bytes!: number | null;

  @ApiProperty({ example: 100 })
  max_pending_uploads!: number;

  @ApiProperty({ example: 1073741824 })
  max_pending_upload_bytes!: number;

  @ApiProperty({
    description: 'Upload URLs of deleted or failed recordings that the store cannot revoke and that still count.',
    example: 0,
  })
  dead_uploads!: number;

  @ApiProperty({ example: 0 })
  dead_upload_bytes!: number;
}

/** `DELETE /api/me`: what went, and what the deletion outbox will remove from the store. */
export class AccountDeletionDto {
  @ApiProperty({ example: 'alice' })
  user_id!: string;

  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'integer' },
    description: 'Rows deleted, per table that has an owner (0 everywhere on a repeated deletion).',
    example: { notes: 12, audio_clips: 30, idempotency_keys: 2, exports: 1 },
  })
  deleted_rows!: Record<string, number>;

  @ApiProperty({
    description:
      'Stored objects scheduled for deletion: recordings, uploads (open multipart uploads are aborted) and export archives.',
    example: 61,
  })
  scheduled_objects!: number;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description:
      'Upload URLs handed out before cannot be revoked on S3: whatever they write is deleted once the last has run out (plus an hour’s grace), at this time; null when none is open.',
    example: '2026-11-27T10:45:00.000Z',
  })
  uploads_deleted_after!: string | null;
}

export function toAccountUsageDto(usage: AccountUsage): AccountUsageDto {
  return {
    user_id: usage.userId,
    notes: usage.notes,
    audio_clips: usage.audioClips,
    used_bytes: usage.holdings.usedBytes,
    pending_uploads: usage.holdings.pendingUploads,
    pending_bytes: usage.holdings.pendingBytes,
    quota_bytes: usage.limits.quotaBytes,
    max_pending_uploads: usage.limits.maxPendingUploads,
    max_pending_upload_bytes: usage.limits.maxPendingBytes,
    dead_uploads: usage.holdings.deadUploads,
    dead_upload_bytes: usage.holdings.deadUploadBytes,
  };
}

export function toAccountDeletionDto(deletion: AccountDeletion): AccountDeletionDto {
  return {
    user_id: deletion.userId,
    deleted_rows: deletion.deletedRows,
    scheduled_objects: deletion.scheduledObjects,
    uploads_deleted_after: deletion.uploadsDeletedAfter?.toISOString() ?? null,
  };
}
