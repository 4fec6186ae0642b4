import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { Transform } from 'class-transformer';
import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { AppError } from './app-error';

export class PageQueryDto {
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: 100,
    default: 20,
    description: 'How many items per page.',
  })
  @IsOptional()
  // Only plain digits: Number() would also take "0x10", "1e1" and " 5".
  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && /^\d{1,4}$/.test(value) ? Number(value) : value,
  )
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;

  @ApiPropertyOptional({ description: 'The `next_cursor` of the previous page; omit for the first page.' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  cursor?: string;
}

/** Where the previous page stopped: newest-first lists order by creation time, then id to break ties. */
export interface PageCursor {
  createdAt: Date;
  id: string;
}

export interface PageRequest {
  limit: number;
  after?: PageCursor;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export const DEFAULT_PAGE_SIZE = 20;

export function toPageRequest(query: PageQueryDto): PageRequest {
  return {
    limit: query.limit ?? DEFAULT_PAGE_SIZE,
    after: query.cursor === undefined ? undefined : decodeCursor(query.cursor),
  };
}

/**
 * Builds a page from `limit + 1` rows: the extra row only says whether another page exists.
 */
export function toPage<T extends { createdAt: Date; id: string }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items,
    nextCursor: rows.length > limit && last ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null,
  };
}

export function encodeCursor(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt.toISOString(), cursor.id])).toString('base64url');
}

export function decodeCursor(raw: string): PageCursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    const [createdAt, id]: unknown[] = Array.isArray(parsed) && parsed.length === 2 ? (parsed as unknown[]) : [];
    const date = new Date(String(createdAt));
    if (typeof createdAt === 'string' && typeof id === 'string' && !Number.isNaN(date.getTime()) && id.length <= 36) {
      return { createdAt: date, id };
    }
  } catch {
    // fall through to the error below
  }
  throw new AppError('VALIDATION_FAILED', 'cursor is not a cursor this API returned.', {
    details: [{ field: 'cursor', message: 'cursor must be the next_cursor of a previous page' }],
  });
}

/**
 * Narrows a newest-first query to the rows after the cursor: older, or as old with a smaller id.
 * `createdAt` must already be in the database's own form (see `timestampParameter`).
 */
export function afterCursor<T extends ObjectLiteral>(
  query: SelectQueryBuilder<T>,
  alias: string,
  after: PageCursor | undefined,
  createdAt: unknown,
): SelectQueryBuilder<T> {
  if (!after) return query;
  return query.andWhere(
    `(${alias}.createdAt < :cursorCreatedAt OR (${alias}.createdAt = :cursorCreatedAt AND ${alias}.id < :cursorId))`,
    {
      cursorCreatedAt: createdAt,
      cursorId: after.id,
    },
  );
}
