import { randomUUID } from 'node:crypto';

export const REQUEST_ID_HEADER = 'x-request-id';

/** What a caller may choose as its request id: short, and safe to copy into logs and headers. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The id of one request: the caller's `X-Request-Id` when it is sane (a proxy or the phone can then
 * follow its own id through our logs), a new UUID otherwise. A repeated header arrives joined with
 * ", " and is replaced like any other unusable value.
 */
export function requestIdFor(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}
