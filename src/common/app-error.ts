/**
 * Every error the API can answer with, and its HTTP status. Clients branch on `code`;
 * the message is for the developer reading the log.
 */
export const ERROR_STATUS = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  UPLOAD_INCOMPLETE: 400,
  CHECKSUM_MISMATCH: 400,
  DELETE_NOT_CONFIRMED: 400,
  UNAUTHENTICATED: 401,
  SIGNED_URL_INVALID: 403,
  NOT_FOUND: 404,
  NOTE_NOT_FOUND: 404,
  AUDIO_CLIP_NOT_FOUND: 404,
  NO_READY_AUDIO_CLIP: 404,
  NOTE_REVISION_NOT_FOUND: 404,
  EXPORT_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  EXPORT_EXPIRED: 410,
  UPLOAD_NOT_FOUND: 409,
  AUDIO_CLIP_NOT_READY: 409,
  AUDIO_CLIP_NOT_PENDING: 409,
  UPLOAD_CHANGED: 409,
  TOO_MANY_PENDING_UPLOADS: 409,
  AUDIO_CLIP_NOT_MULTIPART: 409,
  UPLOAD_PARTS_MISSING: 409,
  MULTIPART_UPLOAD_GONE: 409,
  RENDITION_NOT_READY: 409,
  RENDITION_FAILED: 409,
  RENDITION_UNAVAILABLE: 409,
  NOTE_ID_CONFLICT: 409,
  NOTE_EDIT_CONFLICT: 409,
  NOTE_DELETED: 410,
  SYNC_CURSOR_EXPIRED: 410,
  NOTE_VERSION_MISMATCH: 412,
  PAYLOAD_TOO_LARGE: 413,
  QUOTA_EXCEEDED: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RANGE_NOT_SATISFIABLE: 416,
  RATE_LIMITED: 429,
  EXPORTS_PER_DAY_EXCEEDED: 429,
  UPLOAD_MISMATCH: 422,
  UPLOAD_NOT_AUDIO: 422,
  IDEMPOTENCY_KEY_REUSED: 422,
  INTERNAL_ERROR: 500,
  STORAGE_UNAVAILABLE: 503,
  AUTH_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorDetail {
  field: string;
  message: string;
}

export class AppError extends Error {
  readonly details?: readonly ErrorDetail[];
  /** Extra response headers the answer needs, such as `Content-Range` on a 416. */
  readonly headers: Readonly<Record<string, string>>;
  /** Machine-readable facts about the error, added to the error body (e.g. `remaining_bytes`). */
  readonly info?: Readonly<Record<string, unknown>>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    extra: {
      details?: readonly ErrorDetail[];
      headers?: Record<string, string>;
      info?: Record<string, unknown>;
    } = {},
  ) {
    super(message);
    this.details = extra.details;
    this.info = extra.info;
    this.headers = extra.headers ?? (ERROR_STATUS[code] === 503 ? { 'retry-after': '5' } : {});
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}
