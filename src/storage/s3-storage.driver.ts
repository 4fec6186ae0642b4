import { Logger } from '@nestjs/common';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { S3Config } from '../config/app-config';
import { AppError } from '../common/app-error';
import type { PresignedDownload, PresignedUpload, StorageDriver, StoredObjectInfo, UploadRequirements } from './storage-driver';

/** The store itself enforces what is signed, so a phone cannot upload another type or size than it declared. */
const SIGNED_UPLOAD_HEADERS = new Set(['content-type', 'content-length']);

export function createS3Client(config: S3Config): S3Client {
  return new S3Client({
    region: config.region,
    credentials: config.credentials,
    endpoint: config.endpointUrl,
    // S3-compatible servers (MinIO, LocalStack, R2) generally want path-style addressing.
    forcePathStyle: config.endpointUrl !== undefined,
    // Without these the SDK signs a CRC32 of an empty body into presigned PUTs, and a plain phone upload fails.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 2,
    // A store outage must turn into a quick 503, not a request that hangs for minutes.
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 10_000 },
  });
}

export class S3StorageDriver implements StorageDriver {
  readonly name = 's3';
  private readonly logger = new Logger(S3StorageDriver.name);

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  close(): void {
    this.client.destroy();
  }

  async presignUpload(key: string, requirements: UploadRequirements): Promise<PresignedUpload> {
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ContentType: requirements.contentType,
      ContentLength: requirements.contentLength,
    });
    const url = await this.guard('presign upload', () =>
      getSignedUrl(this.client, command, { expiresIn: requirements.expiresInSeconds, signableHeaders: SIGNED_UPLOAD_HEADERS }),
    );
    return {
      url,
      method: 'PUT',
      headers: { 'Content-Type': requirements.contentType, 'Content-Length': String(requirements.contentLength) },
      expiresAt: expiry(url, requirements.expiresInSeconds),
    };
  }

  async presignDownload(key: string, expiresInSeconds: number): Promise<PresignedDownload> {
    const command = new GetObjectCommand({ Bucket: this.bucket, Key: key });
    const url = await this.guard('presign download', () => getSignedUrl(this.client, command, { expiresIn: expiresInSeconds }));
    return { url, expiresAt: expiry(url, expiresInSeconds) };
  }

  async inspect(key: string): Promise<StoredObjectInfo | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: head.ContentLength ?? 0, contentType: head.ContentType };
    } catch (error) {
      if (error instanceof S3ServiceException && (error.name === 'NotFound' || error.$metadata.httpStatusCode === 404)) {
        return null;
      }
      throw this.unavailable('inspect', error);
    }
  }

  async delete(key: string): Promise<void> {
    await this.guard('delete', () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
  }

  private async guard<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw this.unavailable(operation, error);
    }
  }

  private unavailable(operation: string, error: unknown): AppError {
    this.logger.error(`S3 ${operation} failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    return new AppError('STORAGE_UNAVAILABLE', 'The audio store is unreachable right now. Retry in a few seconds.');
  }
}

/** The URL carries its own signing time; the expiry is derived from it so the two can never disagree. */
function expiry(url: string, expiresInSeconds: number): Date {
  const signedAt = new URL(url).searchParams.get('X-Amz-Date');
  const match = signedAt?.match(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/);
  const start = match ? Date.UTC(+match[1], +match[2] - 1, +match[3], +match[4], +match[5], +match[6]) : Date.now();
  return new Date(start + expiresInSeconds * 1000);
}
