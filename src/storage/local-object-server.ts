import { createReadStream, ReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { AppError } from '../common/app-error';
import { parseRange } from './http-range';
import { LocalObjectFiles } from './local-object-files';
import type { LocalGrant, LocalUrlSigner } from './local-url-signer';

/** Where the local driver's signed URLs point: LocalStorageController serves them with this class. */
export const LOCAL_OBJECTS_ROUTE = '/api/storage/local';

export interface IncomingUpload {
  body: Readable;
  signature?: string;
  expires?: string;
  signedContentType?: string;
  signedContentLength?: string;
  signedContentMd5?: string;
  contentType?: string;
  contentLength?: string;
  contentMd5?: string;
}

export interface ObjectDownload {
  status: 200 | 206;
  headers: Record<string, string>;
  body: ReadStream;
}

/**
 * The local driver's stand-in for S3's object endpoint: takes uploads and serves downloads through the
 * signed URLs, with the same guarantees as presigned S3 URLs (expiry, bound type, length and digest).
 */
export class LocalObjectServer {
  /**
   * Whether an upload key may still receive bytes (its clip is still pending). Unlike S3, this store
   * can take back a signed URL: once the clip is deleted, failed or expired, its URL writes nothing.
   */
  private uploadStillWanted: (key: string) => Promise<boolean> = () => Promise.resolve(true);

  constructor(
    private readonly files: LocalObjectFiles,
    private readonly signer: LocalUrlSigner,
  ) {}

  acceptUploadsOnlyWhen(check: (key: string) => Promise<boolean>): void {
    this.uploadStillWanted = check;
  }

  private async assertUploadWanted(key: string): Promise<void> {
    if (!(await this.uploadStillWanted(key)))
      throw new AppError(
        'SIGNED_URL_INVALID',
        'This upload URL no longer accepts bytes: its clip was deleted, failed or expired.',
      );
  }

  /**
   * Receives an upload through a signed URL. The bytes stream to a temporary file and are renamed into
   * place only once exactly the signed number has arrived, so a reader never sees half an object.
   */
  async receiveUpload(key: string, upload: IncomingUpload): Promise<void> {
    const grant = {
      method: 'PUT' as const,
      key,
      expiresAtSeconds: Number(upload.expires),
      contentType: upload.signedContentType,
      contentLength: upload.signedContentLength === undefined ? undefined : Number(upload.signedContentLength),
      contentMd5: upload.signedContentMd5,
    };
    this.authorize(grant, upload.signature);
    if (grant.contentMd5 !== undefined && upload.contentMd5 !== grant.contentMd5) {
      throw new AppError('SIGNED_URL_INVALID', `This URL needs the header Content-MD5: ${grant.contentMd5}.`);
    }
    if (!sameSignedValue(upload.contentType, grant.contentType)) {
      throw new AppError('SIGNED_URL_INVALID', `This URL accepts only Content-Type: ${grant.contentType}.`);
    }
    if (upload.contentLength === undefined || Number(upload.contentLength) !== grant.contentLength) {
      throw new AppError(
        'SIGNED_URL_INVALID',
        `This URL accepts exactly ${grant.contentLength} bytes (send Content-Length: ${grant.contentLength}).`,
      );
    }

    await this.assertUploadWanted(key);

    this.files.pathFor(key); // a key of an unsafe shape is refused before any byte is written
    const incoming = this.files.incomingPath();
    const expected = grant.contentLength;
    try {
      const md5 = await this.files.receive(
        upload.body,
        incoming,
        expected,
        (received) => `Received ${received} of the ${expected} bytes; send the whole file again.`,
      );
      if (grant.contentMd5 !== undefined && md5.toString('base64') !== grant.contentMd5) {
        throw new AppError(
          'CHECKSUM_MISMATCH',
          'The bytes received do not match the declared Content-MD5; send the file again.',
        );
      }
      // Checked again at the end: the clip may have gone while the bytes were arriving.
      await this.assertUploadWanted(key);
      await this.files.place(key, incoming, {
        contentType: grant.contentType ?? 'application/octet-stream',
        size: expected,
        etag: md5.toString('hex'),
      });
    } catch (error) {
      await rm(incoming, { force: true });
      if (error instanceof AppError) throw error;
      throw new AppError(
        'UPLOAD_INCOMPLETE',
        'The upload was interrupted before all bytes arrived; send the whole file again.',
      );
    }
  }

  /** Serves a signed download, honouring a single `Range` as audio players use to seek. */
  async openDownload(
    key: string,
    query: { expires?: string; signature?: string },
    range: string | undefined,
  ): Promise<ObjectDownload> {
    this.authorize({ method: 'GET', key, expiresAtSeconds: Number(query.expires) }, query.signature);
    const stored = await this.files.read(key);
    if (!stored) throw new AppError('NOT_FOUND', 'Nothing is stored under this URL.');
    const { size, contentType, contentDisposition } = stored.meta;
    const headers: Record<string, string> = {
      'content-type': contentType,
      'accept-ranges': 'bytes',
      'cache-control': 'private, max-age=0',
      ...(contentDisposition ? { 'content-disposition': contentDisposition } : {}),
    };

    const slice = range === undefined ? undefined : parseRange(range, size);
    if (slice === 'unsatisfiable') {
      throw new AppError('RANGE_NOT_SATISFIABLE', `The range "${range}" is outside the ${size}-byte object.`, {
        headers: { 'content-range': `bytes */${size}` },
      });
    }
    if (slice) {
      headers['content-range'] = `bytes ${slice.start}-${slice.end}/${size}`;
      headers['content-length'] = String(slice.end - slice.start + 1);
      return { status: 206, headers, body: createReadStream(stored.path, slice) };
    }
    headers['content-length'] = String(size);
    return { status: 200, headers, body: createReadStream(stored.path) };
  }

  private authorize(grant: LocalGrant, signature: string | undefined): void {
    const verdict = this.signer.verify(grant, signature);
    if (!verdict.ok) throw new AppError('SIGNED_URL_INVALID', verdict.reason);
  }
}

/**
 * A signed header value is matched as S3 matches it (SigV4 canonical form: trimmed, runs of spaces
 * collapsed) and nothing looser, so an upload the local driver accepts is one S3 would accept too:
 * `Audio/WebM; codecs=opus` is not the `audio/webm;codecs=opus` a URL was signed for.
 */
function sameSignedValue(sent: string | undefined, signed: string | undefined): boolean {
  const canonical = (value: string) => value.trim().replace(/ {2,}/g, ' ');
  return sent !== undefined && signed !== undefined && canonical(sent) === canonical(signed);
}
