import { AppError } from '../common/app-error';

/** What every driver answers for an upload id its store no longer knows. */
export function multipartUploadGone(): AppError {
  return new AppError(
    'MULTIPART_UPLOAD_GONE',
    'The store no longer has this multipart upload (completed or abandoned). Create a new clip to upload again.',
  );
}
