import { createHash } from 'node:crypto';
import { AppError } from '../common/app-error';

/**
 * `Idempotency-Key`, shared by the creating endpoints (`POST /api/audio-clips`, `POST /api/notes`): a
 * retry with the same key and body answers 201 again with what the first request created and
 * `Idempotent-Replayed: true`; the same key with another body answers 422 IDEMPOTENCY_KEY_REUSED. Keys
 * are scoped per owner and per endpoint and forgotten after a day (the janitor).
 */

/** Printable ASCII up to 255 characters, as the IETF draft and Stripe allow. */
export function idempotencyKeyOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!/^[\x21-\x7e]{1,255}$/.test(header)) {
    throw new AppError('VALIDATION_FAILED', 'The request is not valid.', {
      details: [{ field: 'Idempotency-Key', message: 'Idempotency-Key must be 1 to 255 printable ASCII characters' }],
    });
  }
  return header;
}

/** What a retry must repeat exactly: the request's fields, in a fixed order. */
export function requestHashOf(fields: readonly unknown[]): string {
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

export function idempotencyKeyReused(what: string): AppError {
  return new AppError(
    'IDEMPOTENCY_KEY_REUSED',
    `This Idempotency-Key was used for a different request. Use a new key for a new ${what}.`,
  );
}

/** How long a key is remembered. */
export const IDEMPOTENCY_KEY_LIFETIME_MS = 24 * 60 * 60_000;
