import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../common/app-error';
import { KeyedLock } from './keyed-lock';
import { META_SUFFIX, type LocalObjectFiles } from './local-object-files';
import type { LocalUrlSigner } from './local-url-signer';
import { multipartUploadGone } from './storage-errors';
import type { PartRequirements, PresignedUpload, StoredPart } from './storage-driver';

const MULTIPART_DIR = '.multipart';
const MANIFEST = 'upload.json';
const UPLOAD_ID = /^[0-9a-f]{32}$/;

interface Manifest {
  key: string;
  contentType: string;
}

interface PartMeta {
  size: number;
  /** Hex MD5 of the part, as S3 gives it (quoted in listings). */
  md5: string;
}

export interface IncomingPart {
  body: Readable;
  uploadId?: string;
  partNumber?: string;
  signature?: string;
  expires?: string;
  signedContentLength?: string;
  contentLength?: string;
}

/**
 * The local driver's multipart uploads, with S3's contract: an upload id per object, parts uploaded
 * through signed URLs (each bound to its upload, part number and exact size) into the upload's own
 * folder, listed to resume, and joined into the object on completion (ETag as S3 makes it: the MD5 of
 * the parts' MD5s, then "-" and their count). Nothing is visible under the key before completion.
 */
export class LocalMultipartUploads {
  /** Per upload id: a part's two renames, a listing, and the join never interleave. */
  private readonly uploadLock = new KeyedLock();

  constructor(
    private readonly files: LocalObjectFiles,
    private readonly signer: LocalUrlSigner,
    private readonly objectUrl: (key: string) => string,
  ) {}

  async create(key: string, contentType: string): Promise<string> {
    this.files.pathFor(key);
    const uploadId = randomUUID().replaceAll('-', '');
    const dir = this.dirOf(uploadId);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, MANIFEST), JSON.stringify({ key, contentType } satisfies Manifest));
    return uploadId;
  }

  presignPart(key: string, uploadId: string, partNumber: number, part: PartRequirements): PresignedUpload {
    const expiresAtSeconds = Math.floor(Date.now() / 1000) + part.expiresInSeconds;
    const signature = this.signer.sign({
      method: 'PUT',
      key,
      expiresAtSeconds,
      contentLength: part.contentLength,
      part: { uploadId, partNumber },
    });
    const query = new URLSearchParams({
      uploadId,
      partNumber: String(partNumber),
      expires: String(expiresAtSeconds),
      length: String(part.contentLength),
      signature,
    });
    return {
      url: `${this.objectUrl(key)}?${query.toString()}`,
      method: 'PUT',
      headers: { 'Content-Length': String(part.contentLength) },
      expiresAt: new Date(expiresAtSeconds * 1000),
    };
  }

  /** Receives one part through its signed URL; a part sent again replaces the earlier one. */
  async receivePart(key: string, incoming: IncomingPart): Promise<{ etag: string }> {
    this.files.pathFor(key);
    const partNumber = Number(incoming.partNumber);
    const uploadId = incoming.uploadId ?? '';
    const expected = Number(incoming.signedContentLength);
    const verdict = this.signer.verify(
      {
        method: 'PUT',
        key,
        expiresAtSeconds: Number(incoming.expires),
        contentLength: incoming.signedContentLength === undefined ? undefined : expected,
        part: { uploadId, partNumber },
      },
      incoming.signature,
    );
    if (!verdict.ok) throw new AppError('SIGNED_URL_INVALID', verdict.reason);
    if (incoming.contentLength === undefined || Number(incoming.contentLength) !== expected) {
      throw new AppError(
        'SIGNED_URL_INVALID',
        `This URL accepts exactly ${expected} bytes (send Content-Length: ${expected}).`,
      );
    }
    await this.manifestOf(key, uploadId);

    const temporary = this.files.incomingPath();
    try {
      const md5 = await this.files.receive(
        incoming.body,
        temporary,
        expected,
        (received) => `Received ${received} of the ${expected} bytes of part ${partNumber}; send the part again.`,
      );
      const meta: PartMeta = { size: expected, md5: md5.toString('hex') };
      await writeFile(temporary + META_SUFFIX, JSON.stringify(meta));
      await this.uploadLock.run(uploadId, async () => {
        // Completed or aborted while the bytes were arriving: the part has nowhere to go.
        await this.manifestOf(key, uploadId);
        const path = join(this.dirOf(uploadId), String(partNumber));
        // The old part's metadata goes first: a crash in between leaves the part missing, never mislabelled.
        await rm(path + META_SUFFIX, { force: true });
        await rename(temporary, path);
        await rename(temporary + META_SUFFIX, path + META_SUFFIX);
      });
      return { etag: `"${meta.md5}"` };
    } catch (error) {
      await rm(temporary, { force: true });
      await rm(temporary + META_SUFFIX, { force: true });
      if (error instanceof AppError) throw error;
      throw new AppError('UPLOAD_INCOMPLETE', 'The part was interrupted before all its bytes arrived; send it again.');
    }
  }

  list(key: string, uploadId: string): Promise<StoredPart[]> {
    return this.uploadLock.run(uploadId, () => this.listNow(key, uploadId));
  }

  private async listNow(key: string, uploadId: string): Promise<StoredPart[]> {
    await this.manifestOf(key, uploadId);
    const dir = this.dirOf(uploadId);
    const parts: StoredPart[] = [];
    for (const name of await readdir(dir)) {
      if (!/^[1-9]\d{0,4}$/.test(name)) continue;
      const part = await readPart(join(dir, name));
      if (part) parts.push({ partNumber: Number(name), size: part.size, etag: `"${part.md5}"` });
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  /** Joins the given parts, in order, into one object under `key`; each must still be the part listed. */
  complete(key: string, uploadId: string, parts: readonly StoredPart[]): Promise<void> {
    return this.uploadLock.run(uploadId, async () => {
      const { contentType } = await this.manifestOf(key, uploadId);
      const dir = this.dirOf(uploadId);
      const temporary = this.files.incomingPath();
      const digests: Buffer[] = [];
      let size = 0;
      try {
        const output = createWriteStream(temporary, { flags: 'wx' });
        const sources = async function* (): AsyncGenerator<Buffer> {
          for (const part of parts) {
            const path = join(dir, String(part.partNumber));
            const stored = await readPart(path);
            if (!stored || `"${stored.md5}"` !== part.etag) {
              throw new AppError(
                'UPLOAD_CHANGED',
                'The parts changed while the upload was being completed. Complete again.',
              );
            }
            digests.push(Buffer.from(stored.md5, 'hex'));
            size += stored.size;
            for await (const chunk of createReadStream(path)) yield chunk as Buffer;
          }
        };
        await pipeline(Readable.from(sources()), output);
        const etag = `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${parts.length}`;
        await this.files.place(key, temporary, { contentType, size, etag });
      } catch (error) {
        await rm(temporary, { force: true });
        throw error;
      }
      await rm(dir, { recursive: true, force: true });
    });
  }

  /** Aborting an upload that is gone (completed, aborted) is not an error, as on S3. */
  abort(key: string, uploadId: string): Promise<void> {
    if (!UPLOAD_ID.test(uploadId)) return Promise.resolve();
    return this.uploadLock.run(uploadId, async () => {
      const manifest = await readManifest(this.dirOf(uploadId));
      if (manifest?.key === key) await rm(this.dirOf(uploadId), { recursive: true, force: true });
    });
  }

  private async manifestOf(key: string, uploadId: string): Promise<Manifest> {
    if (!UPLOAD_ID.test(uploadId)) throw multipartUploadGone();
    const manifest = await readManifest(this.dirOf(uploadId));
    if (manifest?.key !== key) throw multipartUploadGone();
    return manifest;
  }

  private dirOf(uploadId: string): string {
    return join(this.files.root, MULTIPART_DIR, uploadId);
  }
}

async function readManifest(dir: string): Promise<Manifest | null> {
  try {
    return JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** A part whose bytes and metadata disagree (a crash between the two renames) counts as not uploaded. */
async function readPart(path: string): Promise<PartMeta | null> {
  try {
    const [meta, stats] = await Promise.all([readFile(path + META_SUFFIX, 'utf8'), stat(path)]);
    const parsed = JSON.parse(meta) as PartMeta;
    return parsed.size === stats.size ? parsed : null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
