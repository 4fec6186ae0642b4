import { Logger } from '@nestjs/common';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListPartsCommand,
  type Part,
  S3Client,
  type S3ClientConfig,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import { PassThrough, Readable, Transform } from 'node:stream';
import { formatUrl } from '@aws-sdk/core/util';
import { getEndpointFromInstructions } from '@smithy/core/endpoints';
import { extendedEncodeURIComponent, HttpRequest } from '@smithy/core/protocols';
import type { S3Config } from '../config/app-config';
import { AppError } from '../common/app-error';
import { systemClock } from './clock';
import { Sha256WithKeyCache } from './sha256-with-key-cache';
import { multipartUploadGone } from './storage-errors';
import type {
  PartRequirements,
  PresignedDownload,
  PresignedUpload,
  StorageDriver,
  StoredObjectInfo,
  StoredPart,
  StreamedObject,
  UploadRequirements,
} from './storage-driver';

/** Parts of a streamed write: S3's smallest but one, and at most this many in flight (memory is about their product). */
const STREAM_PART_BYTES = 8 * 1024 * 1024;
const STREAM_PARTS_IN_FLIGHT = 2;

/** How long one store call (connecting, retrying and reading the answer included) may take by default. */
export const DEFAULT_STORAGE_TIMEOUT_MS = 5_000;

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
    // A store outage must turn into a quick 503, not a request that hangs for minutes. The SDK's
    // requestTimeout only logs unless told to throw; each call also carries an abort deadline (below)
    // that covers retries and reading the body, since a frozen store accepts connections and never answers.
    requestHandler: {
      connectionTimeout: Math.min(2_000, timeoutOf(config)),
      requestTimeout: timeoutOf(config),
      throwOnRequestTimeout: true,
    },
  };
}

function timeoutOf(config: Pick<S3Config, 'timeoutMs'>): number {
  return config.timeoutMs ?? DEFAULT_STORAGE_TIMEOUT_MS;
}

export class S3StorageDriver implements StorageDriver {
  private readonly logger = new Logger(S3StorageDriver.name);
  readonly clock = systemClock();
  /** A presigned URL is valid until it expires, whatever happens meanwhile. */
  readonly revokesUploadUrls = false;

  /**
   * Presigned URLs are the hot paths (playback, create). `getSignedUrl` clones the client's middleware
   * stack and resolves the endpoint rules on every call (`npm run bench:signing`, docs/PERFORMANCE.md);
   * this presigner is built once and signs requests laid out exactly as the SDK lays out PutObject and
   * GetObject, so the URLs are the same, byte for byte (s3-storage.driver.spec.ts).
   */
  private readonly presigner: S3RequestPresigner;
  /** Where the bucket's objects live and how to sign for them, from the SDK's own endpoint rules, once. */
  private location?: Promise<ObjectLocation>;

  /** The deadline of every store call, retries and body included. */
  private readonly timeoutMs: number;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    config: Pick<S3Config, 'region' | 'timeoutMs'>,
  ) {
    this.presigner = new S3RequestPresigner({ ...client.config, region: async () => config.region });
    this.timeoutMs = timeoutOf(config);
  }

  /** A driver whose endpoint is already resolved: a bucket this driver cannot sign for stops the start. */
  static async open(
    client: S3Client,
    bucket: string,
    config: Pick<S3Config, 'region' | 'timeoutMs'>,
  ): Promise<S3StorageDriver> {
    const driver = new S3StorageDriver(client, bucket, config);
    await driver.objectLocation();
    return driver;
  }

  close(): void {
    this.client.destroy();
  }

  async presignUpload(key: string, requirements: UploadRequirements): Promise<PresignedUpload> {
    // The store itself enforces what is signed, so a phone cannot upload another type or size than it
    // declared; with Content-MD5 signed too, S3 refuses bytes whose digest differs (400 BadDigest).
    const headers: Record<string, string> = {
      'Content-Type': requirements.contentType,
      'Content-Length': String(requirements.contentLength),
    };
    if (requirements.contentMd5) headers['Content-MD5'] = requirements.contentMd5;
    const signingDate = this.clock.now();
    const url = await this.presign(
      'presign upload',
      'PUT',
      key,
      { 'x-id': 'PutObject' },
      headers,
      requirements.expiresInSeconds,
      signingDate,
    );
    return { url, method: 'PUT', headers, expiresAt: expiry(signingDate, requirements.expiresInSeconds) };
  }

  /** Laid out as the SDK's UploadPart: the part's exact size is signed, so the store refuses any other. */
  async presignUploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    part: PartRequirements,
    signingDate = this.clock.now(),
  ): Promise<PresignedUpload> {
    const headers = { 'Content-Length': String(part.contentLength) };
    const query = { 'x-id': 'UploadPart', partNumber: String(partNumber), uploadId };
    const url = await this.presign('presign part', 'PUT', key, query, headers, part.expiresInSeconds, signingDate);
    return { url, method: 'PUT', headers, expiresAt: expiry(signingDate, part.expiresInSeconds) };
  }

  async presignDownload(
    key: string,
    expiresInSeconds: number,
    signingDate = this.clock.now(),
  ): Promise<PresignedDownload> {
    const query = { 'x-id': 'GetObject' };
    const url = await this.presign('presign download', 'GET', key, query, {}, expiresInSeconds, signingDate);
    return { url, expiresAt: expiry(signingDate, expiresInSeconds) };
  }

  /**
   * Signs a request laid out as the SDK's own PutObject / GetObject / UploadPart serializer lays it out
   * (same path, query and headers), every given header signed, for the endpoint and region the SDK would use.
   */
  private presign(
    operation: string,
    method: 'PUT' | 'GET',
    key: string,
    query: Record<string, string>,
    headers: Record<string, string>,
    expiresIn: number,
    signingDate: Date,
  ): Promise<string> {
    return this.guard(operation, async () => {
      const { protocol, hostname, port, pathPrefix, signingRegion } = await this.objectLocation();
      const signed = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
      const request = new HttpRequest({
        protocol,
        hostname,
        port,
        method,
        path: pathPrefix + key.split('/').map(extendedEncodeURIComponent).join('/'),
        query,
        headers: { ...signed, host: port === undefined ? hostname : `${hostname}:${port}` },
      });
      const presigned = await this.presigner.presign(request, {
        expiresIn,
        signingDate,
        signingRegion,
        signableHeaders: new Set(Object.keys(signed)),
      });
      return formatUrl(presigned);
    });
  }

  /**
   * The endpoint the SDK itself would address for this bucket (custom endpoint, path or virtual-host
   * style, China and GovCloud partitions, FIPS, dual-stack, AWS_ENDPOINT_URL_S3), resolved once and
   * reused, so the presigned URLs go exactly where `getSignedUrl`'s would, signed for the same region.
   */
  private objectLocation(): Promise<ObjectLocation> {
    this.location ??= resolveObjectLocation(this.client, this.bucket).catch((error: unknown) => {
      this.location = undefined; // a failed resolution is retried on the next request
      throw error;
    });
    return this.location;
  }

  async inspect(key: string): Promise<StoredObjectInfo | null> {
    try {
      const head = await this.withDeadline((abortSignal) =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal }),
      );
      return { size: head.ContentLength ?? 0, contentType: head.ContentType, etag: head.ETag ?? '' };
    } catch (error) {
      if (
        error instanceof S3ServiceException &&
        (error.name === 'NotFound' || error.$metadata.httpStatusCode === 404)
      ) {
        return null;
      }
      throw this.unavailable('inspect', error);
    }
  }

  async readRange(key: string, start: number, endInclusive: number, etag: string): Promise<Uint8Array> {
    try {
      return await this.withDeadline(async (abortSignal) => {
        const object = await this.client.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Range: `bytes=${start}-${endInclusive}`,
            IfMatch: etag,
          }),
          { abortSignal },
        );
        return (await object.Body?.transformToByteArray()) ?? new Uint8Array();
      });
    } catch (error) {
      throw this.changedOrUnavailable('read', error);
    }
  }

  /**
   * A server-side copy made conditional on the ETag that was checked, then the copy itself checked:
   * some stores accept the precondition and ignore it (Ceph RGW reads only its own
   * `x-amz-copy-if-match`), and would copy whatever a phone re-uploaded meanwhile. Only a destination
   * with the checked ETag and size counts; anything else is a changed upload, and the source stays.
   */
  async move(from: string, to: string, etag: string, size?: number): Promise<void> {
    if (from === to) return;
    for (let attempt = 1; ; attempt++) {
      try {
        const source = `${this.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
        await this.withDeadline((abortSignal) =>
          this.client.send(
            new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: source, CopySourceIfMatch: etag }),
            { abortSignal },
          ),
        );
      } catch (error) {
        throw this.changedOrUnavailable('copy', error);
      }
      if (await this.holds(to, etag, size, { copied: true })) break;
      // Other bytes at the destination: either the upload changed (and a store that ignores the
      // precondition copied the new bytes), or another completion of this same upload is writing there
      // right now (s3rver's copies are not atomic). Only in the second case, the source still as it was
      // checked, is copying again right. The destination is left as it is either way: a completion
      // elsewhere may have put the right bytes there by now.
      if (attempt === MOVE_ATTEMPTS || !(await this.holds(from, etag, size, { copied: false }))) throw uploadChanged();
    }
    await this.delete(from);
  }

  /** Whether `key` holds the object with this ETag and size (`null`-safe: nothing there is `false`). */
  private async holds(
    key: string,
    etag: string,
    size: number | undefined,
    { copied }: { copied: boolean },
  ): Promise<boolean> {
    let head: HeadObjectCommandOutput;
    try {
      head = await this.withDeadline((abortSignal) =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal }),
      );
    } catch (error) {
      if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return false;
      throw this.unavailable('check copy', error);
    }
    // Under SSE-KMS or SSE-C an ETag is not a digest of the bytes, and a copy gets a new one: there only
    // the size can be compared, and the store's own precondition (AWS S3 enforces it) does the rest.
    const etagIsDigest = !head.ServerSideEncryption?.startsWith('aws:kms') && !head.SSECustomerAlgorithm;
    const etagMatters = !copied || etagIsDigest;
    return (!etagMatters || sameEtag(head.ETag, etag)) && (size === undefined || head.ContentLength === size);
  }

  /**
   * A HEAD of a key that does not exist: 404 proves the bucket answers and the credentials are good
   * (with s3:ListBucket, which completion's 404 needs too); anything else, or no answer, is down.
   */
  async ping(signal: AbortSignal): Promise<void> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: '.readiness-probe' }), {
        abortSignal: signal,
      });
    } catch (error) {
      if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await this.guard('delete', () =>
      this.withDeadline((abortSignal) =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal }),
      ),
    );
  }

  /**
   * Runs one store call under the driver's deadline: the SDK request is aborted when it passes, and
   * whatever is still awaited (a body that stopped arriving) is given up on, so the caller answers 503.
   */
  private async withDeadline<T>(call: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const error = new Error(`the store did not answer within ${this.timeoutMs} ms`);
        error.name = 'StorageTimeout';
        controller.abort(error);
        reject(error);
      }, this.timeoutMs);
    });
    const work = call(controller.signal);
    work.catch(() => undefined); // settled after the deadline: nobody waits for it any more
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The deadline covers the answer's headers; the body then streams for as long as it takes, each read
   * bounded by the client's socket timeout, so a store that stops sending fails the stream.
   */
  async openRead(key: string, signal?: AbortSignal): Promise<Readable | null> {
    try {
      const object = await this.withDeadline((deadline) =>
        this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
          abortSignal: signal ? AbortSignal.any([deadline, signal]) : deadline,
        }),
      );
      if (!(object.Body instanceof Readable)) throw new Error('the store answered without a body');
      return object.Body;
    } catch (error) {
      if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return null;
      throw this.unavailable('open read', error);
    }
  }

  /**
   * lib-storage's Upload: a single PutObject for a body under one part, else a multipart upload of
   * STREAM_PART_BYTES parts, aborted when anything fails, so no partial object is ever visible.
   */
  async writeStream(key: string, body: NodeJS.ReadableStream, object: StreamedObject): Promise<{ size: number }> {
    let size = 0;
    const counted = new PassThrough();
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        callback(null, chunk);
      },
    });
    // A failing body fails the upload: its error is carried through to the stream the upload reads.
    body.on('error', (error: Error) => counted.destroy(error));
    (body as Readable).pipe(counter).pipe(counted);
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: counted,
        ContentType: object.contentType,
        ContentDisposition: object.contentDisposition,
      },
      partSize: STREAM_PART_BYTES,
      queueSize: STREAM_PARTS_IN_FLIGHT,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (error) {
      (body as Readable).destroy?.();
      if (error instanceof AppError) throw error;
      throw this.unavailable('stream write', error);
    }
    return { size };
  }

  async createMultipartUpload(key: string, contentType: string): Promise<string> {
    const created = await this.guard('create multipart upload', () =>
      this.withDeadline((abortSignal) =>
        this.client.send(
          new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: contentType }),
          { abortSignal },
        ),
      ),
    );
    if (!created.UploadId) throw this.unavailable('create multipart upload', new Error('no UploadId in the answer'));
    return created.UploadId;
  }

  async listParts(key: string, uploadId: string): Promise<StoredPart[]> {
    const parts: StoredPart[] = [];
    let marker: string | undefined;
    try {
      // A page holds at most 1000 parts; a 100 MiB recording has 20, but MAX_UPLOAD_BYTES may allow 10000.
      do {
        const page = await this.withDeadline((abortSignal) =>
          this.client.send(
            new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }),
            { abortSignal },
          ),
        );
        for (const part of page.Parts ?? []) {
          if (part.PartNumber !== undefined)
            parts.push({ partNumber: part.PartNumber, size: part.Size ?? 0, etag: part.ETag ?? '' });
        }
        marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
      } while (marker !== undefined);
    } catch (error) {
      throw this.goneOrUnavailable('list parts', error);
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  /**
   * Joins the parts. The reply's ETag is not used (Ceph RGW sends an empty one): the caller looks at
   * the object with HeadObject afterwards, as for a single upload.
   */
  async completeMultipartUpload(key: string, uploadId: string, parts: readonly StoredPart[]): Promise<void> {
    const list: Part[] = parts.map((part) => ({ PartNumber: part.partNumber, ETag: part.etag }));
    try {
      await this.withDeadline((abortSignal) =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: list },
          }),
          { abortSignal },
        ),
      );
    } catch (error) {
      throw this.goneOrUnavailable('complete multipart upload', error);
    }
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.withDeadline((abortSignal) =>
        this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }), {
          abortSignal,
        }),
      );
    } catch (error) {
      if (isNoSuchUpload(error)) return;
      throw this.unavailable('abort multipart upload', error);
    }
  }

  private goneOrUnavailable(operation: string, error: unknown): AppError {
    if (isNoSuchUpload(error)) return multipartUploadGone();
    // An ETag that is not the part's (the part was uploaded again meanwhile) or a part that went missing.
    if (error instanceof S3ServiceException && ['InvalidPart', 'InvalidPartOrder'].includes(error.name)) {
      return new AppError('UPLOAD_CHANGED', 'The parts changed while the upload was being completed. Complete again.');
    }
    return this.unavailable(operation, error);
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
      return uploadChanged();
    }
    return this.unavailable(operation, error);
  }

  private unavailable(operation: string, error: unknown): AppError {
    this.logger.error(
      `S3 ${operation} failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    );
    return new AppError('STORAGE_UNAVAILABLE', 'The audio store is unreachable right now. Retry in a few seconds.');
  }
}

function isNoSuchUpload(error: unknown): boolean {
  return (
    error instanceof S3ServiceException && (error.name === 'NoSuchUpload' || error.$metadata.httpStatusCode === 404)
  );
}

interface ObjectLocation {
  protocol: string;
  hostname: string;
  port?: number;
  /** Ends with "/": the object's escaped key follows. */
  pathPrefix: string;
  signingRegion?: string;
}

async function resolveObjectLocation(client: S3Client, bucket: string): Promise<ObjectLocation> {
  const endpoint = await getEndpointFromInstructions({ Bucket: bucket, Key: 'key' }, GetObjectCommand, client.config);
  const authScheme = endpoint.properties?.authSchemes?.[0] as { name?: string; signingRegion?: string } | undefined;
  if (authScheme?.name !== undefined && authScheme.name !== 'sigv4') {
    // SigV4A (multi-region access points) and S3 Express sessions need signing this driver does not do.
    throw new Error(
      `The bucket's endpoint needs ${authScheme.name} signing, which presigned URLs here do not support.`,
    );
  }
  const url = endpoint.url;
  return {
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    pathPrefix: url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`,
    signingRegion: authScheme?.signingRegion,
  };
}

/** Copies tried while the source stays as checked but the destination shows other bytes. */
const MOVE_ATTEMPTS = 3;

function uploadChanged(): AppError {
  return new AppError(
    'UPLOAD_CHANGED',
    'The upload changed or disappeared while it was being checked. Complete again.',
  );
}

/** ETags compared as opaque strings, whether or not a store quotes them (RGW's copy result does not). */
function sameEtag(a: string | undefined, b: string): boolean {
  const bare = (etag: string) => etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
  return a !== undefined && bare(a) === bare(b);
}

/** X-Amz-Date is the signing instant to the second; the URL stops working the given seconds after it. */
function expiry(signingDate: Date, expiresInSeconds: number): Date {
  return new Date(Math.floor(signingDate.getTime() / 1000) * 1000 + expiresInSeconds * 1000);
}
