import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { dirname, join } from 'node:path';
import { AppError } from '../common/app-error';
import { loadOrCreateSecret } from '../common/secret-file';
import type { LocalStorageConfig } from '../config/app-config';
import { systemClock } from './clock';
import { LocalObjectFiles, META_SUFFIX, type ObjectMeta } from './local-object-files';
import { LOCAL_OBJECTS_ROUTE, LocalObjectServer } from './local-object-server';
import { LocalMultipartUploads } from './local-multipart-uploads';
import { LocalUrlSigner } from './local-url-signer';
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

/**
 * The embedded default: objects live in a folder and the app itself plays the part of S3, serving
 * HMAC-signed URLs with the same guarantees (expiry, bound type and length) as presigned S3 URLs.
 */
export class LocalStorageDriver implements StorageDriver {
  /** Takes the uploads and serves the downloads of the URLs this driver signs. */
  readonly server: LocalObjectServer;
  readonly clock = systemClock();
  /** Its server takes an upload only while `acceptUploadsOnlyWhen`'s check says the key still wants bytes. */
  readonly revokesUploadUrls = true;
  /** Multipart uploads, S3's contract on the folder; their part URLs are taken in through `multipart.receivePart`. */
  readonly multipart: LocalMultipartUploads;

  private constructor(
    private readonly files: LocalObjectFiles,
    private readonly publicBaseUrl: string,
    private readonly signer: LocalUrlSigner,
  ) {
    this.server = new LocalObjectServer(files, signer);
    this.multipart = new LocalMultipartUploads(files, signer, (key) => this.objectUrl(key));
  }

  acceptUploadsOnlyWhen(check: (key: string) => Promise<boolean>): void {
    this.server.acceptUploadsOnlyWhen(check);
  }

  static async open(config: LocalStorageConfig, publicBaseUrl: string): Promise<LocalStorageDriver> {
    const files = await LocalObjectFiles.open(config.directory);
    const secret = config.signingSecret
      ? Buffer.from(config.signingSecret)
      : await loadOrCreateSecret(join(files.root, '.signing-key'));
    return new LocalStorageDriver(files, publicBaseUrl, new LocalUrlSigner(secret));
  }

  async presignUpload(key: string, requirements: UploadRequirements): Promise<PresignedUpload> {
    const expiresAtSeconds = this.nowSeconds() + requirements.expiresInSeconds;
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
    const expiresAtSeconds = this.nowSeconds() + expiresInSeconds;
    const signature = this.signer.sign({ method: 'GET', key, expiresAtSeconds });
    const query = new URLSearchParams({ expires: String(expiresAtSeconds), signature });
    return { url: `${this.objectUrl(key)}?${query.toString()}`, expiresAt: new Date(expiresAtSeconds * 1000) };
  }

  /** The folder is there and writable (a lost mount or a read-only disk make the server unready). */
  async ping(): Promise<void> {
    await this.files.checkWritable();
  }

  async inspect(key: string): Promise<StoredObjectInfo | null> {
    const stored = await this.files.read(key);
    return stored && { size: stored.meta.size, contentType: stored.meta.contentType, etag: stored.meta.etag };
  }

  readRange(key: string, start: number, endInclusive: number, etag: string): Promise<Uint8Array> {
    return this.files.lock.run(key, () => this.readRangeNow(key, start, endInclusive, etag));
  }

  private async readRangeNow(key: string, start: number, endInclusive: number, etag: string): Promise<Uint8Array> {
    const stored = await this.files.read(key);
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

  /**
   * A move is two renames (metadata, then bytes). A crash between them leaves the bytes at `from` and
   * their metadata at `to`, each half unreadable on its own; this finishes that move when the bytes
   * are exactly those the metadata describes (size and MD5). Returns whether it did.
   */
  finishInterruptedMove(from: string, to: string): Promise<boolean> {
    return this.files.lock.run(from, async () => {
      const source = this.files.pathFor(from);
      const target = this.files.pathFor(to);
      const [bytesThere, targetMeta, metaLeft, targetBytes] = await Promise.all([
        stat(source).catch(() => null),
        readFile(target + META_SUFFIX, 'utf8').catch(() => null),
        stat(source + META_SUFFIX).catch(() => null),
        stat(target).catch(() => null),
      ]);
      if (!bytesThere || targetMeta === null || metaLeft || targetBytes) return false;
      const meta = JSON.parse(targetMeta) as ObjectMeta;
      if (meta.size !== bytesThere.size) return false;
      const digest = createHash('md5');
      await pipeline(createReadStream(source), digest);
      if (digest.digest('hex') !== meta.etag) return false;
      await rename(source, target);
      return true;
    });
  }

  /** Removes uploads still arriving in `.incoming/` that nobody has written to since `olderThan` (a crash's leftovers). */
  sweepIncoming(olderThan: Date): Promise<number> {
    return this.files.removeStaleIncoming(olderThan);
  }

  /** Renames into place; a concurrent move of the same object that got there first counts as done. */
  move(from: string, to: string, etag: string): Promise<void> {
    return from === to ? Promise.resolve() : this.files.lock.run(from, () => this.moveNow(from, to, etag));
  }

  private async moveNow(from: string, to: string, etag: string): Promise<void> {
    const source = await this.files.read(from);
    if (!source || source.meta.etag !== etag) {
      const target = await this.files.read(to);
      if (target?.meta.etag === etag) return;
      throw uploadChanged();
    }
    const target = this.files.pathFor(to);
    await mkdir(dirname(target), { recursive: true });
    try {
      await rename(source.path + META_SUFFIX, target + META_SUFFIX);
      await rename(source.path, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      if ((await this.files.read(to))?.meta.etag !== etag) throw uploadChanged();
    }
  }

  async openRead(key: string, signal?: AbortSignal): Promise<Readable | null> {
    const stored = await this.files.read(key);
    return stored && createReadStream(stored.path, signal ? { signal } : {});
  }

  /** Written under `.incoming/` and renamed into place once whole, as an upload is. */
  async writeStream(key: string, body: NodeJS.ReadableStream, object: StreamedObject): Promise<{ size: number }> {
    const incoming = this.files.incomingPath();
    const digest = createHash('md5');
    let size = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        digest.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(body, counter, createWriteStream(incoming, { flags: 'wx' }));
      await this.files.place(key, incoming, {
        contentType: object.contentType,
        size,
        etag: digest.digest('hex'),
        ...(object.contentDisposition ? { contentDisposition: object.contentDisposition } : {}),
      });
    } catch (error) {
      await rm(incoming, { force: true });
      throw error;
    }
    return { size };
  }

  async delete(key: string): Promise<void> {
    const path = this.files.pathFor(key);
    await rm(path + META_SUFFIX, { force: true });
    await rm(path, { force: true });
  }

  private nowSeconds(): number {
    return Math.floor(this.clock.now().getTime() / 1000);
  }

  createMultipartUpload(key: string, contentType: string): Promise<string> {
    return this.multipart.create(key, contentType);
  }

  async presignUploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    part: PartRequirements,
  ): Promise<PresignedUpload> {
    return this.multipart.presignPart(key, uploadId, partNumber, part);
  }

  listParts(key: string, uploadId: string): Promise<StoredPart[]> {
    return this.multipart.list(key, uploadId);
  }

  completeMultipartUpload(key: string, uploadId: string, parts: readonly StoredPart[]): Promise<void> {
    return this.multipart.complete(key, uploadId, parts);
  }

  abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    return this.multipart.abort(key, uploadId);
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
