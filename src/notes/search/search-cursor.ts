import { AppError } from '../../common/app-error';

/**
 * Where a page of search results stopped, in the search order: notes whose title matches every term
 * first (`titleMatch`), then the rest; within each, newest `updated_at` first, then id.
 */
export interface SearchCursor {
  titleMatch: boolean;
  updatedAt: Date;
  id: string;
}

/** Tagged, so a list cursor given to a search (or the other way round) is refused, not misread. */
const TAG = 'search';

export function encodeSearchCursor(cursor: SearchCursor): string {
  return Buffer.from(
    JSON.stringify([TAG, cursor.titleMatch ? 1 : 0, cursor.updatedAt.toISOString(), cursor.id]),
  ).toString('base64url');
}

export function decodeSearchCursor(raw: string): SearchCursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 4) {
      const [tag, group, updatedAt, id] = parsed as unknown[];
      const date = new Date(String(updatedAt));
      if (
        tag === TAG &&
        (group === 0 || group === 1) &&
        typeof updatedAt === 'string' &&
        !Number.isNaN(date.getTime()) &&
        typeof id === 'string' &&
        id.length <= 36
      ) {
        return { titleMatch: group === 1, updatedAt: date, id };
      }
    }
  } catch {
    // fall through to the error below
  }
  throw new AppError('VALIDATION_FAILED', 'cursor is not a cursor this API returned.', {
    details: [{ field: 'cursor', message: 'cursor must be the next_cursor of a previous page' }],
  });
}
