import { UPLOAD_GRACE_MS } from './deletions/deletion-rules';

/**
 * How long after an upload URL runs out the janitor first looks for the upload: a margin for the
 * store's clock running a little behind ours, never more than a few seconds.
 */
export const UPLOAD_CLOCK_SKEW_MS = 5_000;

/** The first look for an upload the phone may never complete: just after its (latest) URL has run out. */
export function firstUploadCheck(uploadExpiresAt: Date): Date {
  return new Date(uploadExpiresAt.getTime() + UPLOAD_CLOCK_SKEW_MS);
}

/**
 * When to look again after a look at `now` found nothing to complete. A store checks a URL's expiry
 * only when an upload starts, so an upload begun just in time can land until `UPLOAD_GRACE_MS` after
 * it: one more look then. After that nothing can land any more (until a new URL is handed out, which
 * schedules its own looks), so there is nothing to look for until the clip expires.
 */
export function nextUploadCheck(uploadExpiresAt: Date | null, now: Date): Date | null {
  if (uploadExpiresAt === null) return null;
  const lastLanding = new Date(uploadExpiresAt.getTime() + UPLOAD_GRACE_MS);
  return now < lastLanding ? lastLanding : null;
}

/** Whether any upload may still land: a URL is valid, or an upload begun with one may still be arriving. */
export function uploadMayStillLand(uploadExpiresAt: Date | null, now: Date): boolean {
  return nextUploadCheck(uploadExpiresAt, now) !== null;
}
