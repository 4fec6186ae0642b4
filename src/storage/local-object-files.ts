import { createHash, randomUUID } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { access, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../common/app-error';
import { KeyedLock } from './keyed-lock';

/** Keys are built by the server, but the URL path is not: only these shapes ever touch the disk. */
const SAFE_KEY = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/i;
const INCOMING_DIR = '.incoming';
export const META_SUFFIX = '.meta.json';

export interface ObjectMeta {
  contentType: string;
  size: number;
  /** Hex MD5 of the bytes, as S3 gives for single-part uploads. */
  etag: string;
  /** Served as Content-Disposition, when the object was stored with one (an export archive). */
  contentDisposition?: string;
}

export interface StoredObject {
  path: string;
  meta: ObjectMeta;
}

/**
 * The local driver's folder: an object is its bytes at `<root>/<key>` with its metadata beside them in
 * `<key>.meta.json`; uploads are written under `.incoming/` and renamed into place when whole.
 */
export class LocalObjectFiles {
  /** Held around anything that must see an object's bytes and metadata change together. */
  readonly lock = new KeyedLock();

  private constructor(readonly root: string) {}

  static async open(directory: string): Promise<LocalObjectFiles> {
    const root = resolve(directory);
    await mkdir(join(root, INCOMING_DIR), { recursive: true });
    return new LocalObjectFiles(root);
  }

  /** A fresh path for an upload still arriving. */
  /** Rejects when uploads could not be received (the folder is gone or read-only). */
  async checkWritable(): Promise<void> {
    await access(join(this.root, INCOMING_DIR), constants.W_OK);
  }

  incomingPath(): string {
    return join(this.root, INCOMING_DIR, randomUUID());
  }

  /**
   * Puts a whole file from `.incoming/` (and its metadata) in place as the object under `key`, renamed
   * under the object's own lock so that a reader sees the old object or the new one, never a mix. On
   * failure the metadata written here is removed; the incoming file stays the caller's.
   */
  async place(key: string, incomingPath: string, meta: ObjectMeta): Promise<void> {
    const path = this.pathFor(key);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(incomingPath + META_SUFFIX, JSON.stringify(meta));
    try {
      await this.lock.run(key, async () => {
        await rename(incomingPath, path);
        await rename(incomingPath + META_SUFFIX, path + META_SUFFIX);
      });
    } catch (error) {
      await rm(incomingPath + META_SUFFIX, { force: true });
      throw error;
    }
  }

  /**
   * Writes exactly the `expected` bytes of `body` to a new file at `path` and returns their MD5. More is
   * refused as it arrives; fewer, once the body ends, with `short(received)`. The caller removes the
   * file when this throws.
   */
  async receive(body: Readable, path: string, expected: number, short: (received: number) => string): Promise<Buffer> {
    const digest = createHash('md5');
    let received = 0;
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
    await pipeline(body, counter, createWriteStream(path, { flags: 'wx' }));
    if (received !== expected) throw new AppError('UPLOAD_INCOMPLETE', short(received));
    return digest.digest();
  }

  /** Deletes files under `.incoming/` last modified before `olderThan`; a live upload writes to its file all the time. */
  async removeStaleIncoming(olderThan: Date): Promise<number> {
    const directory = join(this.root, INCOMING_DIR);
    let removed = 0;
    for (const name of await readdir(directory)) {
      const path = join(directory, name);
      const stats = await stat(path).catch(() => null);
      if (stats?.isFile() && stats.mtime < olderThan) {
        await rm(path, { force: true });
        removed += 1;
      }
    }
    return removed;
  }

  async read(key: string): Promise<StoredObject | null> {
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

  pathFor(key: string): string {
    if (!SAFE_KEY.test(key) || key.endsWith(META_SUFFIX))
      throw new AppError('NOT_FOUND', 'Nothing is stored under this URL.');
    return join(this.root, ...key.split('/'));
  }
}
