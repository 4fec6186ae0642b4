import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, ReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../common/app-error';
import { loadOrCreateSecret } from '../common/secret-file';
import type { LocalStorageConfig } from '../config/app-config';
import { LocalUrlSigner } from './local-url-signer';
import type {
  PresignedDownload,
  PresignedUpload,
  StorageDriver,
  StoredObjectInfo,
  UploadRequirements,
} from './storage-driver';

export const LOCAL_OBJECTS_ROUTE = '/api/storage/local';

/** Keys are built by the server, but the URL path is not: only these shapes ever touch the disk. */
const SAFE_KEY = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/i;
const INCOMING_DIR = '.incoming';
const META_SUFFIX = '.meta.json';

interface ObjectMeta {
  contentType: string;
  size: number;
  /** Hex MD5 of the bytes, as S3 gives for single-part uploads. */
  etag: string;
}

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
 * The embedded default: objects live in a folder and the app itself plays the part of S3, serving
 * HMAC-signed URLs with the same guarantees (expiry, bound type and length) as presigned S3 URLs.
 */
export class LocalStorageDriver implements StorageDriver {
  readonly name = 'local';

  /**
   * Per-key critical sections: an upload's two renames (bytes, then metadata), and the etag check with
   * the read or move that relies on it, never interleave, so bytes are never used under another
   * upload's etag.
   */
  private readonly locks = new Map<string, Promise<unknown>>();

  private constructor(
    private readonly root: string,
    private readonly publicBaseUrl: string,
    private readonly signer: LocalUrlSigner,
  ) {}

  static async open(config: LocalStorageConfig, publicBaseUrl: string): Promise<LocalStorageDriver> {
    const root = resolve(config.directory);
    await mkdir(join(root, INCOMING_DIR), { recursive: true });
    const secret = config.signingSecret
      ? Buffer.from(config.signingSecret)
      : await loadOrCreateSecret(join(root, '.signing-key'));
    return new LocalStorageDriver(root, publicBaseUrl, new LocalUrlSigner(secret));
  }

  async presignUpload(key: string, requirements: UploadRequirements): Promise<PresignedUpload> {
    const expiresAtSeconds = nowSeconds() + requirements.expiresInSeconds;
    const signature = this.signer.sign({
      method: 'PUT',
      key,
      expiresAtSeconds,
      contentType: requirements.contentType,
      contentLength: requirements.contentLength,
      contentMd5: requirements.contentMd5,
    });
    const query = new URLSearchParams({
      expires: String(expiresAtSeconds),
      type: requirements.contentType,
      length: String(requirements.contentLength),
      ...(requirements.contentMd5 ? { md5: requirements.contentMd5 } : {}),
      signature,
    });
    const headers: Record<string, string> = {
      'Content-Type': requirements.contentType,
      'Content-Length': String(requirements.contentLength),
    };
    if (requirements.contentMd5) headers['Content-MD5'] = requirements.contentMd5;
    return {
      url: `${this.objectUrl(key)}?${query.toString()}`,
      method: 'PUT',
      headers,
      expiresAt: new Date(expiresAtSeconds * 1000),
    };
  }

  async presignDownload(key: string, expiresInSeconds: number): Promise<PresignedDownload> {
    const expiresAtSeconds = nowSeconds() + expiresInSeconds;
    const signature = this.signer.sign({ method: 'GET', key, expiresAtSeconds });
    const query = new URLSearchParams({ expires: String(expiresAtSeconds), signature });
    return { url: `${this.objectUrl(key)}?${query.toString()}`, expiresAt: new Date(expiresAtSeconds * 1000) };
  }

  async inspect(key: string): Promise<StoredObjectInfo | null> {
    const stored = await this.readStored(key);
    return stored && { size: stored.meta.size, contentType: stored.meta.contentType, etag: stored.meta.etag };
  }

  readRange(key: string, start: number, endInclusive: number, etag: string): Promise<Uint8Array> {
    return this.exclusively(key, () => this.readRangeNow(key, start, endInclusive, etag));
  }

  private async readRangeNow(key: string, start: number, endInclusive: number, etag: string): Promise<Uint8Array> {
    const stored = await this.readStored(key);
    if (!stored || stored.meta.etag !== etag) throw uploadChanged();
    const length = Math.max(0, Math.min(endInclusive, stored.meta.size - 1) - start + 1);
    // Moved away since it was looked at (a concurrent completion): the caller sees it as changed.
    const file = await open(stored.path, 'r').catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOENT' ? uploadChanged() : error;
    });
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await file.read(buffer, 0, length, start);
      return buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  }

  /** Renames into place; a concurrent move of the same object that got there first counts as done. */
  move(from: string, to: string, etag: string): Promise<void> {
    return from === to ? Promise.resolve() : this.exclusively(from, () => this.moveNow(from, to, etag));
  }

  private async moveNow(from: string, to: string, etag: string): Promise<void> {
    const source = await this.readStored(from);
    if (!source || source.meta.etag !== etag) {
      const target = await this.readStored(to);
      if (target?.meta.etag === etag) return;
      throw uploadChanged();
    }
    const target = this.pathFor(to);
    await mkdir(dirname(target), { recursive: true });
    try {
      await rename(source.path + META_SUFFIX, target + META_SUFFIX);
      await rename(source.path, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      if ((await this.readStored(to))?.meta.etag !== etag) throw uploadChanged();
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathFor(key);
    await rm(path + META_SUFFIX, { force: true });
    await rm(path, { force: true });
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
    if (!sameMimeType(upload.contentType, grant.contentType)) {
      throw new AppError('SIGNED_URL_INVALID', `This URL accepts only Content-Type: ${grant.contentType}.`);
    }
    if (upload.contentLength === undefined || Number(upload.contentLength) !== grant.contentLength) {
      throw new AppError(
        'SIGNED_URL_INVALID',
        `This URL accepts exactly ${grant.contentLength} bytes (send Content-Length: ${grant.contentLength}).`,
      );
    }

    const path = this.pathFor(key);
    const incoming = join(this.root, INCOMING_DIR, randomUUID());
    let received = 0;
    const expected = grant.contentLength;
    const digest = createHash('md5');
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        digest.update(chunk);
        callback(
          received > expected
            ? new AppError('UPLOAD_INCOMPLETE', `More than the signed ${expected} bytes were sent.`)
            : null,
          chunk,
        );
      },
    });
    try {
      await pipeline(upload.body, counter, createWriteStream(incoming, { flags: 'wx' }));
      if (received !== expected) {
        throw new AppError(
          'UPLOAD_INCOMPLETE',
          `Received ${received} of the ${expected} bytes; send the whole file again.`,
        );
      }
      const md5 = digest.digest();
      if (grant.contentMd5 !== undefined && md5.toString('base64') !== grant.contentMd5) {
        throw new AppError(
          'CHECKSUM_MISMATCH',
          'The bytes received do not match the declared Content-MD5; send the file again.',
        );
      }
      await mkdir(dirname(path), { recursive: true });
      const meta: ObjectMeta = {
        contentType: grant.contentType ?? 'application/octet-stream',
        size: received,
        etag: md5.toString('hex'),
      };
      await writeFile(incoming + META_SUFFIX, JSON.stringify(meta));
      await this.exclusively(key, async () => {
        await rename(incoming, path);
        await rename(incoming + META_SUFFIX, path + META_SUFFIX);
      });
    } catch (error) {
      await rm(incoming, { force: true });
      await rm(incoming + META_SUFFIX, { force: true });
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
    const stored = await this.readStored(key);
    if (!stored) throw new AppError('NOT_FOUND', 'Nothing is stored under this URL.');
    const { size, contentType } = stored.meta;
    const headers: Record<string, string> = {
      'content-type': contentType,
      'accept-ranges': 'bytes',
      'cache-control': 'private, max-age=0',
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

  private exclusively<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const current = previous.then(work, work);
    const settled = current.catch(() => undefined);
    this.locks.set(key, settled);
    void settled.then(() => {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    });
    return current;
  }

  private authorize(grant: Parameters<LocalUrlSigner['verify']>[0], signature: string | undefined): void {
    const verdict = this.signer.verify(grant, signature);
    if (!verdict.ok) throw new AppError('SIGNED_URL_INVALID', verdict.reason);
  }

  private async readStored(key: string): Promise<{ path: string; meta: ObjectMeta } | null> {
    const path = this.pathFor(key);
    try {
      const [meta, stats] = await Promise.all([readFile(path + META_SUFFIX, 'utf8'), stat(path)]);
      const parsed = JSON.parse(meta) as ObjectMeta;
      // A crash between the two renames leaves bytes and metadata that disagree: treat that as not uploaded.
      return parsed.size === stats.size ? { path, meta: parsed } : null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  private pathFor(key: string): string {
    if (!SAFE_KEY.test(key) || key.endsWith(META_SUFFIX))
      throw new AppError('NOT_FOUND', 'Nothing is stored under this URL.');
    return join(this.root, ...key.split('/'));
  }

  private objectUrl(key: string): string {
    return `${this.publicBaseUrl}${LOCAL_OBJECTS_ROUTE}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }
}

function uploadChanged(): AppError {
  return new AppError(
    'UPLOAD_CHANGED',
    'The upload changed or disappeared while it was being checked. Complete again.',
  );
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function sameMimeType(sent: string | undefined, signed: string | undefined): boolean {
  const normalize = (value: string) =>
    value
      .trim()
      .toLowerCase()
      .replace(/\s*;\s*/g, ';');
  return sent !== undefined && signed !== undefined && normalize(sent) === normalize(signed);
}

/** One `bytes=` range; a multi-range or malformed header is ignored (the whole object is served), as RFC 9110 allows. */
export function parseRange(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  // RFC 9110: a last position before the first makes the header invalid, and an invalid Range is ignored.
  if (match[2] !== '' && Number(match[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1) };
}
