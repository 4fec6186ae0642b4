import { ApiProperty } from '@nestjs/swagger';
import { ExportStatus } from './export.entity';
import type { ExportView } from './exports.service';

export class ExportResponseDto {
  @ApiProperty({ format: 'uuid', example: '3d6f1a2b-7c8e-4f90-a1b2-c3d4e5f6a7b8' })
  id!: string;

  @ApiProperty({
    enum: [ExportStatus.Pending, ExportStatus.Running, ExportStatus.Ready, ExportStatus.Failed, ExportStatus.Expired],
    enumName: 'ExportStatus',
    description:
      '`pending` (waiting, also between retries after a failed attempt), `running`, `ready` (download from `url`), ' +
      '`failed` (every attempt failed: ask again), `expired` (only in the answer to a new request; GET answers 410).',
    example: 'ready',
  })
  status!: ExportStatus;

  @ApiProperty({ type: Number, nullable: true, description: 'The archive’s size once ready.', example: 52428800 })
  bytes!: number | null;

  @ApiProperty({ format: 'date-time', example: '2026-11-27T10:00:00.000Z' })
  created_at!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'Once ready: a signed GET URL of the zip (served as `Content-Disposition: attachment`). It runs out at `url_expires_at`; GET the export again for a fresh one.',
    example: 'https://bucket.s3.amazonaws.com/prod/exports/9b2f….zip?X-Amz-Signature=…',
  })
  url!: string | null;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the URL stops working (at the latest `expires_at`).',
    example: '2026-11-27T10:15:00.000Z',
  })
  url_expires_at!: string | null;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description:
      'Once ready: when the archive is deleted (EXPORT_EXPIRES_SECONDS after it was ready; 24 h by default).',
    example: '2026-11-28T10:00:00.000Z',
  })
  expires_at!: string | null;
}

export function toExportResponse(view: ExportView): ExportResponseDto {
  const ready = view.status === ExportStatus.Ready;
  return {
    id: view.export.id,
    status: view.status,
    bytes: ready ? view.export.bytes : null,
    created_at: view.export.createdAt.toISOString(),
    url: view.download?.url ?? null,
    url_expires_at: view.download?.expiresAt.toISOString() ?? null,
    expires_at: ready ? (view.export.expiresAt?.toISOString() ?? null) : null,
  };
}
