import { Logger } from '@nestjs/common';
import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, S3Client, type S3ClientConfig, S3ServiceException } from '@aws-sdk/client-s3';
import { S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import { formatUrl } from '@aws-sdk/core/util';
import { extendedEncodeURIComponent, HttpRequest } from '@smithy/core/protocols';
import type { S3Config } from '../config/app-config';
import { AppError } from '../common/app-error';
import { Sha256WithKeyCache } from './sha256-with-key-cache';
import type { PresignedDownload, PresignedUpload, StorageDriver, StoredObjectInfo, UploadRequirements } from './storage-driver';

/** The store itself enforces what is signed, so a phone cannot upload another type or size than it declared. */
const SIGNED_UPLOAD_HEADERS = ['content-type', 'content-length'];

export function createS3Client(config: S3Config): S3Client {
  return new S3Client(s3ClientOptions(config));
}

export function s3ClientOptions(config: S3Config): S3ClientConfig {
  return {
    region: config.region,
    credentials: config.credentials,
    endpoint: config.endpointUrl,
    // S3-compatible servers (MinIO, LocalStack, R2) generally want path-style addressing.
    forcePathStyle: config.endpointUrl !== undefined,
    // Without these the SDK signs a CRC32 of an empty body into presigned PUTs, and a plain phone upload fails.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 2,
    // The SDK's signer, on a digest primitive that reuses HMAC keys (most of the cost of a URL on Node 24).
    sha256: Sha256WithKeyCache,
    // A store outage must turn into a quick 503, not a request that hangs for minutes.
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 10_000 },
  };
}

export class S3StorageDriver implements StorageDriver {
  readonly name = 's3';
  private readonly logger = new Logger(S3StorageDriver.name);

  /**
   * Presigned URLs are the hot paths (playback, create). `getSignedUrl` clones the client's middleware
   * stack and resolves the endpoint rules on every call (about 120 µs of CPU here, `npm run
   * bench:signing`); this presigner is built once and signs requests laid out exactly as the SDK lays out
   * PutObject and GetObject, so the URLs are the same, byte for byte (s3-storage.driver.spec.ts).
   */
  private readonly presigner: S3RequestPresigner;
  private readonly objectLocation: { protocol: string; hostname: string; port?: number; pathPrefix: string };

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    config: Pick<S3Config, 'region' | 'endpointUrl'>,
  ) {
    this.presigner = new S3RequestPresigner({ ...client.config, region: async () => config.region });
    if (config.endpointUrl) {
      const endpoint = new URL(config.endpointUrl);
      const basePath = endpoint.pathname.replace(/\/+$/, '');
      this.objectLocation = {
        protocol: endpoint.protocol,
        hostname: endpoint.hostname,
        port: endpoint.port ? Number(endpoint.port) : undefined,
        pathPrefix: `${basePath}/${bucket}/`,
      };
    } else if (/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(bucket)) {
      this.objectLocation = { protocol: 'https:', hostname: `${bucket}.s3.${config.region}.amazonaws.com`, pathPrefix: '/' };
    } else {
      // Dotted names break the TLS certificate of the virtual host: the SDK addresses them by path too.
      this.objectLocation = { protocol: 'https:', hostname: `s3.${config.region}.amazonaws.com`, pathPrefix: `/${bucket}/` };
    }
  }

  close(): void {
    this.client.destroy();
  }

  async presignUpload(key: string, requirements: UploadRequirements): Promise<PresignedUpload> {
    const headers: Record<string, string> = { 'Content-Type': requirements.contentType, 'Content-Length': String(requirements.contentLength) };
    // With Content-MD5 signed too, S3 refuses bytes whose digest differs (400 BadDigest).
    if (requirements.contentMd5) headers['Content-MD5'] = requirements.contentMd5;
    const signableHeaders = new Set(requirements.contentMd5 ? [...SIGNED_UPLOAD_HEADERS, 'content-md5'] : SIGNED_UPLOAD_HEADERS);
    const signingDate = new Date();
    const request = this.objectRequest('PUT', key, 'PutObject', {
      'content-type': requirements.contentType,
      'content-length': String(requirements.contentLength),
      ...(requirements.contentMd5 ? { 'content-md5': requirements.contentMd5 } : {}),
    });
    const presigned = await this.guard('presign upload', () => this.presigner.presign(request, { expiresIn: requirements.expiresInSeconds, signableHeaders, signingDate }));
    return { url: formatUrl(presigned), method: 'PUT', headers, expiresAt: expiry(signingDate, requirements.expiresInSeconds) };
  }

  async presignDownload(key: string, expiresInSeconds: number, signingDate = new Date()): Promise<PresignedDownload> {
    const request = this.objectRequest('GET', key, 'GetObject', {});
    const presigned = await this.guard('presign download', () => this.presigner.presign(request, { expiresIn: expiresInSeconds, signingDate }));
    return { url: formatUrl(presigned), expiresAt: expiry(signingDate, expiresInSeconds) };
  }

  /** A request laid out as the SDK's own PutObject / GetObject serializer lays it out (same path, query and headers). */
  private objectRequest(method: 'PUT' | 'GET', key: string, operation: string, headers: Record<string, string>): HttpRequest {
    const { protocol, hostname, port, pathPrefix } = this.objectLocation;
    return new HttpRequest({
      protocol,
      hostname,
      port,
      method,
      path: pathPrefix + key.split('/').map(extendedEncodeURIComponent).join('/'),
      query: { 'x-id': operation },
      headers: { ...headers, host: port === undefined ? hostname : `${hostname}:${port}` },
    });
  }

  async inspect(key: string): Promise<StoredObjectInfo | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: head.ContentLength ?? 0, contentType: head.ContentType, etag: head.ETag ?? '' };
    } catch (error) {
      if (error instanceof S3ServiceException && (error.name === 'NotFound' || error.$metadata.httpStatusCode === 404)) {
        return null;
      }
      throw this.unavailable('inspect', error);
    }
  }

  async readRange(key: string, start: number, endInclusive: number, etag: string): Promise<Uint8Array> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${endInclusive}`, IfMatch: etag }));
      return (await object.Body?.transformToByteArray()) ?? new Uint8Array();
    } catch (error) {
      throw this.changedOrUnavailable('read', error);
    }
  }

  /** A server-side copy made conditional on the ETag that was checked, then the source goes. */
  async move(from: string, to: string, etag: string): Promise<void> {
    if (from === to) return;
    try {
      const source = `${this.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
      await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: source, CopySourceIfMatch: etag }));
    } catch (error) {
      throw this.changedOrUnavailable('copy', error);
    }
    await this.delete(from);
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

  private changedOrUnavailable(operation: string, error: unknown): AppError {
    if (error instanceof S3ServiceException && [404, 412].includes(error.$metadata.httpStatusCode ?? 0)) {
      return new AppError('UPLOAD_CHANGED', 'The upload changed or disappeared while it was being checked. Complete again.');
    }
    return this.unavailable(operation, error);
  }

  private unavailable(operation: string, error: unknown): AppError {
    this.logger.error(`S3 ${operation} failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    return new AppError('STORAGE_UNAVAILABLE', 'The audio store is unreachable right now. Retry in a few seconds.');
  }
}

/** The URL carries its own signing time; the expiry is derived from it so the two can never disagree. */
/** X-Amz-Date is the signing instant to the second; the URL stops working the given seconds after it. */
function expiry(signingDate: Date, expiresInSeconds: number): Date {
  return new Date(Math.floor(signingDate.getTime() / 1000) * 1000 + expiresInSeconds * 1000);
}
