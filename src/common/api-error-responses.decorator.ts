import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse } from '@nestjs/swagger';
import { ERROR_STATUS, type ErrorCode, type ErrorDetail } from './app-error';
import { ErrorResponseDto } from './error-response.dto';

const DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'The request is malformed: a field is missing, of the wrong type, unknown, or out of range.',
  401: 'No bearer token, or one that is expired, malformed, or not signed by a trusted key.',
  404: 'No such resource, or it belongs to someone else.',
  409: 'The resource is not in a state that allows this yet, or the request clashes with it (a note id already used, edits that overlap).',
  410: 'Gone: the note was deleted (on another device), a sync cursor is too old to continue from (sync again from the start), or an export’s archive has expired (ask for a new export).',
  412: 'The `If-Match` version (or the revision `base_version` names) is not the note’s: `error.current` is the note as it is now.',
  413: 'Too big: the request body, or a recording that would take you over your storage quota (`error.remaining_bytes` says what is left).',
  415: 'The body is not JSON.',
  422: 'What was uploaded does not match what was declared, or an Idempotency-Key was reused for another request.',
  429: 'Too many requests; retry after the `Retry-After` seconds.',
  503: 'A service the API needs (the audio store, the identity provider’s keys) is unreachable; retry after the `Retry-After` seconds.',
};

/** One documented error answer: its code, and the body the server really sends for it (ids are the examples'). */
export interface ErrorExample {
  code: ErrorCode;
  message: string;
  details?: ErrorDetail[];
  info?: Record<string, unknown>;
}

const NOTE_ID = '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90';
/** Every error body carries the request's id (as the X-Request-Id header does), so every example does too. */
const REQUEST_ID = '3f0c9a52-6f1e-4f7e-9d55-0b2b1f7f4a10';
const CLIP_ID = '9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b';

/** The example of each code unless an operation gives its own (a field of its own for VALIDATION_FAILED). */
const DEFAULT_EXAMPLES: { readonly [Code in ErrorCode]?: Omit<ErrorExample, 'code'> } = {
  INVALID_JSON: { message: "Body is not valid JSON but content-type is set to 'application/json'" },
  UNAUTHENTICATED: { message: 'Sign in: send Authorization: Bearer <token>.' },
  NOTE_NOT_FOUND: { message: `No note with id ${NOTE_ID}.` },
  AUDIO_CLIP_NOT_FOUND: { message: `No audio clip with id ${CLIP_ID}.` },
  NO_READY_AUDIO_CLIP: { message: `Note ${NOTE_ID} has no ready audio clip yet.` },
  NOTE_REVISION_NOT_FOUND: { message: `Note ${NOTE_ID} keeps no revision 3.` },
  NOTE_DELETED: { message: `Note ${NOTE_ID} was deleted.` },
  NOTE_ID_CONFLICT: {
    message: `The id ${NOTE_ID} is already used by another note (or a deleted one). Create the note under a new id.`,
  },
  NOTE_VERSION_MISMATCH: {
    message: `Note ${NOTE_ID} is at version 4, not the one this request names. error.current is the note as it is now.`,
    info: {
      current: {
        id: NOTE_ID,
        title: 'Standup ideas',
        body: 'Talk about the release train.',
        version: 4,
        created_at: '2026-11-27T09:30:00.000Z',
        updated_at: '2026-11-27T10:05:00.000Z',
      },
    },
  },
  NOTE_EDIT_CONFLICT: {
    message: `Your edit of note ${NOTE_ID} (from version 2) and the changes since (now version 3) change the same lines. Nothing was written.`,
    info: {
      base: { version: 2, title: 'Standup', body: 'Release train.\nHiring.\n' },
      current: {
        id: NOTE_ID,
        title: 'Standup',
        body: 'Release train on Tuesday.\nHiring.\n',
        version: 3,
        created_at: '2026-11-27T09:30:00.000Z',
        updated_at: '2026-11-27T10:05:00.000Z',
      },
      yours: { title: 'Standup', body: 'Release train on Friday.\nHiring.\n' },
      conflicts: [
        {
          field: 'body',
          base_line: 1,
          base: 'Release train.\n',
          current: 'Release train on Tuesday.\n',
          yours: 'Release train on Friday.\n',
        },
      ],
    },
  },
  SYNC_CURSOR_EXPIRED: {
    message:
      'This cursor is older than the deletions this server keeps (SYNC_TOMBSTONE_TTL_SECONDS), or your sync state was reset. Sync again from the start: call without a cursor.',
  },
  UPLOAD_NOT_FOUND: {
    message: 'Nothing has been uploaded for this clip yet. PUT the bytes to upload.url, then complete again.',
  },
  AUDIO_CLIP_NOT_READY: { message: `Audio clip ${CLIP_ID} is pending; only ready clips can be played.` },
  AUDIO_CLIP_NOT_MULTIPART: {
    message: `Audio clip ${CLIP_ID} is uploaded in one PUT to upload.url, not in parts (its bytes are below the multipart threshold).`,
  },
  UPLOAD_PARTS_MISSING: {
    message: `The store does not hold every part of audio clip ${CLIP_ID} yet: upload parts 3, 4, then complete again.`,
  },
  MULTIPART_UPLOAD_GONE: {
    message: `The store no longer has the multipart upload of audio clip ${CLIP_ID}; create a new clip to try again.`,
  },
  RENDITION_NOT_READY: {
    message: `The m4a rendition of audio clip ${CLIP_ID} is being made. Ask again in a few seconds, or play the original meanwhile.`,
  },
  RENDITION_FAILED: {
    message: `The m4a rendition of audio clip ${CLIP_ID} could not be made: the decoder ran past its 600 s limit and was stopped. Play the original (no format).`,
    info: { failure_reason: 'the decoder ran past its 600 s limit and was stopped' },
  },
  RENDITION_UNAVAILABLE: {
    message: 'This server does not make m4a renditions (no decoder is installed). Play the original (no format).',
  },
  AUDIO_CLIP_NOT_PENDING: {
    message: `Audio clip ${CLIP_ID} is already ready; create a new clip to upload again.`,
  },
  UPLOAD_CHANGED: {
    message: 'The upload changed or disappeared while it was being checked. Complete again.',
  },
  PAYLOAD_TOO_LARGE: { message: 'Request body is too large' },
  QUOTA_EXCEEDED: {
    message:
      'This recording needs 123456 bytes but only 20000 of your 104857600-byte storage quota are left. ' +
      'This counts 123456 bytes that the still-valid upload URLs of 1 deleted or failed recording can write; they stop counting after 2026-11-27T10:45:00.000Z. Delete some recordings first.',
    info: {
      quota_bytes: 104857600,
      used_bytes: 104837600,
      remaining_bytes: 20000,
      dead_uploads: 1,
      dead_upload_bytes: 123456,
      dead_uploads_counted_until: '2026-11-27T10:45:00.000Z',
    },
  },
  TOO_MANY_PENDING_UPLOADS: {
    message:
      'You have 100 uploads (104857600 bytes) not yet completed; at most 100 uploads and 1073741824 bytes may be pending at once. Complete or delete some first.',
    info: {
      pending_uploads: 100,
      pending_bytes: 104857600,
      max_pending_uploads: 100,
      max_pending_upload_bytes: 1073741824,
      dead_uploads: 0,
      dead_upload_bytes: 0,
    },
  },
  UNSUPPORTED_MEDIA_TYPE: { message: 'Send JSON with Content-Type: application/json (got text/plain).' },
  UPLOAD_MISMATCH: {
    message: 'The uploaded file is 1000 bytes but 123456 were declared. Upload the declared file again.',
  },
  UPLOAD_NOT_AUDIO: {
    message:
      'The uploaded bytes are not audio/m4a audio: not an audio container: the content looks like text ("just some text …"). The upload was deleted; create a new clip to try again.',
  },
  IDEMPOTENCY_KEY_REUSED: {
    message: 'This Idempotency-Key was used for a different request. Use a new key for a new recording.',
  },
  DELETE_NOT_CONFIRMED: {
    message: 'Confirm-Delete does not match your user_id (from GET /api/me, percent-encoded). Nothing was deleted.',
  },
  EXPORT_NOT_FOUND: { message: 'No export with id 3d6f1a2b-7c8e-4f90-a1b2-c3d4e5f6a7b8.' },
  EXPORT_EXPIRED: {
    message:
      'Export 3d6f1a2b-7c8e-4f90-a1b2-c3d4e5f6a7b8 expired at 2026-11-28T10:00:00.000Z and its archive was deleted. Ask for a new export.',
  },
  EXPORTS_PER_DAY_EXCEEDED: {
    message: 'At most 5 exports may be asked for in 24 hours. Retry in 3600 s.',
  },
  RATE_LIMITED: { message: 'Too many requests: at most 600 per 60 s. Retry in 12 s.' },
  STORAGE_UNAVAILABLE: { message: 'The audio store is unreachable right now. Retry in a few seconds.' },
  AUTH_UNAVAILABLE: {
    message: 'The identity provider’s keys cannot be fetched right now. Retry in a few seconds.',
  },
};

/** Every authenticated route can answer these, whatever it does. */
const AUTHENTICATED_ROUTE_ERRORS: readonly ErrorCode[] = ['UNAUTHENTICATED', 'RATE_LIMITED', 'AUTH_UNAVAILABLE'];

/** VALIDATION_FAILED on one field, as the validation pipe words it. */
export function invalidField(field: string, message: string, summary = 'The request is not valid.'): ErrorExample {
  return { code: 'VALIDATION_FAILED', message: summary, details: [{ field, message }] };
}

/** VALIDATION_FAILED for a path id that is not a UUID. */
export function invalidPathId(name: string): ErrorExample {
  return invalidField(name, `${name} must be a UUID`, `${name} must be a UUID.`);
}

/**
 * Documents the error answers of an authenticated operation: each code it can answer, grouped under
 * its status, each with an example of the body the server sends (so the explorer shows, say, a
 * NOTE_NOT_FOUND under a note's 404, not a made-up error of another route). 401, 429 and the 503 of an
 * unreachable identity provider are added to every operation.
 */
export function ApiErrorResponses(...errors: (ErrorCode | ErrorExample)[]): MethodDecorator {
  const examples = [...errors, ...AUTHENTICATED_ROUTE_ERRORS].map((error) => toExample(error));
  const statuses = [...new Set(examples.map((example) => ERROR_STATUS[example.code]))].sort();
  return applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: DESCRIPTIONS[status],
        type: ErrorResponseDto,
        examples: Object.fromEntries(
          examples
            .filter((example) => ERROR_STATUS[example.code] === status)
            .map((example) => [
              example.code,
              {
                summary: example.code,
                value: {
                  status,
                  error: {
                    code: example.code,
                    message: example.message,
                    ...(example.details ? { details: example.details } : {}),
                    ...example.info,
                    request_id: REQUEST_ID,
                  },
                },
              },
            ]),
        ),
      }),
    ),
  );
}

/** A controller whose routes need a bearer token (its error answers come with ApiErrorResponses). */
export function ApiAuthenticated(): ClassDecorator {
  return ApiBearerAuth();
}

function toExample(error: ErrorCode | ErrorExample): ErrorExample {
  if (typeof error !== 'string') return error;
  const example = DEFAULT_EXAMPLES[error];
  if (!example) throw new Error(`No example for ${error}: give the operation its own (e.g. invalidField).`);
  return { code: error, ...example };
}
