import { createHmac, timingSafeEqual } from 'node:crypto';
import { AppError } from '../common/app-error';

/** Where a client's last pull of the change feed stopped. Opaque to clients. */
export interface SyncCursor {
  /** The owner's sync epoch it was issued in (sync_owners.epoch). */
  epoch: string;
  /** Every change numbered up to this one was in the pulls before. */
  seq: number;
  /** When it was issued (ms since the epoch). */
  issuedAt: number;
  /**
   * For the pages of a full sync: the counter when its first page was read. A deletion numbered up to it
   * happened before the client read anything, so its tombstone may be purged without the client missing it.
   * 0 otherwise.
   */
  floor: number;
}

/**
 * Not a secret: a check that the cursor is one this API issued to this owner, unchanged (a cursor made up
 * or edited is a 400, not a silent resync from some other point).
 */
const CURSOR_CHECK_KEY = 'advanced-notes sync cursor v1';

function checkOf(ownerId: string, cursor: SyncCursor): string {
  return createHmac('sha256', CURSOR_CHECK_KEY)
    .update(`${ownerId}\n${cursor.epoch}\n${cursor.seq}\n${cursor.issuedAt}\n${cursor.floor}`)
    .digest('base64url')
    .slice(0, 22);
}

export function encodeSyncCursor(ownerId: string, cursor: SyncCursor): string {
  const payload = [cursor.epoch, cursor.seq, cursor.issuedAt, cursor.floor, checkOf(ownerId, cursor)];
  return Buffer.from(JSON.stringify(payload)).toString('base64url');
}

export function decodeSyncCursor(ownerId: string, raw: string): SyncCursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 5) {
      const [epoch, seq, issuedAt, floor, check] = parsed as unknown[];
      if (
        typeof epoch === 'string' &&
        /^[0-9a-f]{32}$/.test(epoch) &&
        typeof seq === 'number' &&
        Number.isSafeInteger(seq) &&
        seq >= 0 &&
        typeof issuedAt === 'number' &&
        Number.isSafeInteger(issuedAt) &&
        typeof floor === 'number' &&
        Number.isSafeInteger(floor) &&
        floor >= 0 &&
        typeof check === 'string'
      ) {
        const cursor = { epoch, seq, issuedAt, floor };
        const expected = Buffer.from(checkOf(ownerId, cursor));
        const given = Buffer.from(check);
        if (given.length === expected.length && timingSafeEqual(given, expected)) return cursor;
      }
    }
  } catch {
    // fall through to the error below
  }
  throw invalidSyncCursor();
}

export function invalidSyncCursor(): AppError {
  return new AppError('VALIDATION_FAILED', 'cursor is not a cursor this API returned.', {
    details: [{ field: 'cursor', message: 'cursor must be the next_cursor of an earlier pull of /api/sync/changes' }],
  });
}

export function syncCursorExpired(): AppError {
  return new AppError(
    'SYNC_CURSOR_EXPIRED',
    'This cursor is older than the deletions this server keeps (SYNC_TOMBSTONE_TTL_SECONDS), or your sync state was reset. Sync again from the start: call without a cursor.',
  );
}
