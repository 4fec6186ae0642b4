import { Controller, Get, Inject, Put, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { SkipThrottle } from '@nestjs/throttler';
import { Public } from '../auth/auth.decorators';
import { AppError } from '../common/app-error';
import { FailedAttemptsLimiter } from '../rate-limit/failed-attempts.limiter';
import { LocalStorageDriver } from './local-storage.driver';
import { STORAGE_DRIVER, type StorageDriver } from './storage-driver';

type SignedQuery = {
  expires?: string;
  type?: string;
  length?: string;
  md5?: string;
  signature?: string;
  uploadId?: string;
  partNumber?: string;
};

/** Repeated parameters arrive as arrays; a signed URL has each once, so anything else simply fails the signature. */
function signedQuery(request: FastifyRequest): SignedQuery {
  const query = request.query as Record<string, unknown>;
  const text = (name: string) => (typeof query[name] === 'string' ? query[name] : undefined);
  return {
    expires: text('expires'),
    type: text('type'),
    length: text('length'),
    md5: text('md5'),
    signature: text('signature'),
    uploadId: text('uploadId'),
    partNumber: text('partNumber'),
  };
}

/**
 * The local driver's stand-in for S3's object endpoint: the signed URLs the API hands out point here.
 * Only mounted in spirit when the local driver is active; with S3 every path answers 404.
 */
// Signed URLs are the credential here, as with S3: the phone sends no bearer token to storage.
@Public()
@SkipThrottle()
@ApiExcludeController()
@Controller('storage/local')
export class LocalStorageController {
  constructor(
    @Inject(STORAGE_DRIVER) private readonly driver: StorageDriver,
    private readonly failedAttempts: FailedAttemptsLimiter,
  ) {}

  @Put('*')
  async putObject(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const query = signedQuery(request);
    if (query.uploadId !== undefined || query.partNumber !== undefined) {
      // A part of a multipart upload, answered as S3 does: 200 with the part's ETag.
      const { etag } = await this.countingFailures(request, () =>
        this.local().multipart.receivePart(objectKey(request), {
          body: request.body as Readable,
          uploadId: query.uploadId,
          partNumber: query.partNumber,
          signature: query.signature,
          expires: query.expires,
          signedContentLength: query.length,
          contentLength: request.headers['content-length'],
        }),
      );
      await reply.status(200).header('etag', etag).send();
      return;
    }
    await this.countingFailures(request, () =>
      this.local().server.receiveUpload(objectKey(request), {
        body: request.body as Readable,
        signature: query.signature,
        expires: query.expires,
        signedContentType: query.type,
        signedContentLength: query.length,
        signedContentMd5: query.md5,
        contentType: request.headers['content-type'],
        contentLength: request.headers['content-length'],
        contentMd5: typeof request.headers['content-md5'] === 'string' ? request.headers['content-md5'] : undefined,
      }),
    );
    await reply.status(200).send();
  }

  /** Fastify answers HEAD through this handler too, without the body. */
  @Get('*')
  async getObject(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const download = await this.countingFailures(request, () =>
      this.local().server.openDownload(objectKey(request), signedQuery(request), request.headers.range),
    );
    // The signed URL is the permission, as on S3: an <audio> element on any page may play it.
    await reply
      .status(download.status)
      .headers(download.headers)
      .header('cross-origin-resource-policy', 'cross-origin')
      .send(download.body);
  }

  /** A URL whose signature fails counts against the client's address, like a failed sign-in. */
  private async countingFailures<T>(request: FastifyRequest, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof AppError && error.code === 'SIGNED_URL_INVALID')
        await this.failedAttempts.failed(request.ip, error);
      throw error;
    }
  }

  private local(): LocalStorageDriver {
    if (!(this.driver instanceof LocalStorageDriver))
      throw new AppError('NOT_FOUND', 'Local storage is not enabled on this server.');
    return this.driver;
  }
}

function objectKey(request: FastifyRequest): string {
  return (request.params as Record<string, string | undefined>)['*'] ?? '';
}
