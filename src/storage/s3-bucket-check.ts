import { GetObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { DEFAULT_CONNECT_TIMEOUT_SECONDS, type S3Config } from '../config/app-config';
import { describeCause, StartupError } from '../common/startup-error';

/** Codes with which a store refuses the credentials themselves (wrong key, wrong secret, stale session). */
const REFUSED_CREDENTIALS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'AccessDenied',
  'AllAccessDisabled',
  'Forbidden',
]);

/**
 * Start-up check of the bucket: reads a key that does not exist. "No such key" means the bucket is
 * there and takes the credentials; anything else stops the start with one line naming the variables
 * to fix. (A read, not HeadBucket: errors of a GET carry their code, and the app needs object rights only.
 * On AWS, s3:ListBucket on the bucket is what makes S3 answer "no such key" instead of "access denied".)
 */
export async function checkBucket(client: S3Client, config: S3Config, keyPrefix: string): Promise<void> {
  const timeoutSeconds = config.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_SECONDS;
  const where = config.endpointUrl ? `at S3_ENDPOINT_URL ${config.endpointUrl}` : `in AWS_REGION ${config.region}`;
  const bucket = `S3_BUCKET: the bucket "${config.bucket}" ${where}`;
  const credentials = config.credentials
    ? `AWS_ACCESS_KEY_ID ${config.credentials.accessKeyId} / AWS_SECRET_ACCESS_KEY${config.credentials.sessionToken ? ' / AWS_SESSION_TOKEN' : ''}`
    : "the SDK's default credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY unset)";
  try {
    await client.send(
      new GetObjectCommand({ Bucket: config.bucket, Key: `${keyPrefix}/.startup-check`, Range: 'bytes=0-0' }),
      { abortSignal: AbortSignal.timeout(timeoutSeconds * 1000) },
    );
  } catch (error) {
    const code = error instanceof S3ServiceException ? error.name : undefined;
    if (code === 'NoSuchKey') return;
    if (code === 'NoSuchBucket') throw new StartupError(`${bucket} does not exist.`, { cause: error });
    if (code !== undefined && REFUSED_CREDENTIALS.has(code)) {
      throw new StartupError(`${bucket} refuses ${credentials}: ${code}.`, { cause: error });
    }
    if (code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed') {
      throw new StartupError(`${bucket} answers ${code}: is AWS_REGION the bucket's region?`, { cause: error });
    }
    if (error instanceof Error && error.name === 'CredentialsProviderError') {
      throw new StartupError(
        `${bucket}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a role/profile the SDK finds).`,
        { cause: error },
      );
    }
    const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    const cause = timedOut ? `no answer within ${timeoutSeconds} s (S3_CONNECT_TIMEOUT_SECONDS)` : describeCause(error);
    throw new StartupError(`${bucket} cannot be checked: ${code ? `${code}: ` : ''}${cause}`, { cause: error });
  }
}
