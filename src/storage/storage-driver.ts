import type { Readable } from 'node:stream';
import type { Clock } from './clock';

/** What the client must send to put bytes straight into storage. */
export interface PresignedUpload {
  url: string;
  method: 'PUT';
  /** Headers the client must send exactly as given: they are part of the signature. */
  headers: Record<string, string>;
  expiresAt: Date;
}

export interface PresignedDownload {
  url: string;
  expiresAt: Date;
}

export interface StoredObjectInfo {
  size: number;
  contentType: string | undefined;
  /** Changes whenever the bytes do; reads and moves can be made conditional on it. */
  etag: string;
}

export interface UploadRequirements {
  contentType: string;
  contentLength: number;
  expiresInSeconds: number;
  /** Base64 MD5 of the bytes: when given, the store refuses any other bytes. */
  contentMd5?: string;
}

/** One part of a multipart upload, as the store holds it. */
export interface StoredPart {
  partNumber: number;
  size: number;
  /** The store's ETag of the part, quoted as S3 gives it; completion needs it back. */
  etag: string;
}

/** How a streamed object is stored and later served. */
export interface StreamedObject {
  contentType: string;
  /** Sent with every download of the object (`attachment; filename=…`). */
  contentDisposition?: string;
}

export interface PartRequirements {
  /** Exact size of this part: signed into the URL, so the store refuses any other. */
  contentLength: number;
  expiresInSeconds: number;
}

/**
 * The one port every storage back end implements. Object bytes never pass through services apart
 * from small ranged reads: they hand out signed URLs, look at what arrived, move and delete.
 */
export interface StorageDriver {
  /** The time URLs are signed at (their expiry counts from it). */
  readonly clock: Clock;
  /**
   * Whether the store can stop a signed upload URL before it expires (see `acceptUploadsOnlyWhen`).
   * Where it cannot (S3), the URL of a deleted or failed clip still writes its declared bytes until it
   * runs out, and those bytes are counted against the clip's owner meanwhile.
   */
  readonly revokesUploadUrls: boolean;
  presignUpload(key: string, requirements: UploadRequirements): Promise<PresignedUpload>;
  presignDownload(key: string, expiresInSeconds: number): Promise<PresignedDownload>;
  /** `null` when nothing is stored under the key yet. */
  inspect(key: string): Promise<StoredObjectInfo | null>;
  /** Bytes `start` to `endInclusive`, only while the object still has `etag` (else UPLOAD_CHANGED). */
  readRange(key: string, start: number, endInclusive: number, etag: string): Promise<Uint8Array>;
  /**
   * Moves the object to another key, only while it still has `etag` (and `size`, when given): else
   * UPLOAD_CHANGED, with the source left in place.
   */
  move(from: string, to: string, etag: string, size?: number): Promise<void>;
  /**
   * The whole object as a stream, read from the store as it is consumed (never held in memory), for the
   * server's own background work (renditions, exports); `null` when nothing is stored under the key. The
   * stream errors if the store stops sending, or when `signal` aborts.
   */
  openRead(key: string, signal?: AbortSignal): Promise<Readable | null>;
  /**
   * Stores what `body` yields under `key`, streamed (on S3 as a multipart upload of bounded parts), so
   * memory stays flat whatever the size; the object appears only once whole. Resolves with its size;
   * rejects (and leaves no object) when the body or the store fails.
   */
  writeStream(key: string, body: NodeJS.ReadableStream, object: StreamedObject): Promise<{ size: number }>;
  /** Deleting a key that holds nothing is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Stores that serve their own signed URLs can take them back: uploads then land only while `check`
   * says the key still wants bytes. (A presigned S3 URL cannot be revoked, so S3 has no such method.)
   */
  acceptUploadsOnlyWhen?(check: (key: string) => Promise<boolean>): void;
  /** Finishes a move a crash cut in half, where the store's move is not atomic; returns whether it did. */
  finishInterruptedMove?(from: string, to: string): Promise<boolean>;
  /** Removes partial uploads untouched since `olderThan` (left by a crash), where the store keeps them; returns how many. */
  sweepIncoming?(olderThan: Date): Promise<number>;
  /** Resolves when the store answers (readiness probe); rejects when it cannot be used. */
  ping(signal: AbortSignal): Promise<void>;

  /**
   * Multipart uploads, as S3 has them: one upload id per object, parts of at least 5 MiB (but the last)
   * uploaded through their own presigned URLs in any order, listed to resume, then joined into the
   * object under `key`. An upload id the store does not know (completed, aborted) answers
   * MULTIPART_UPLOAD_GONE from every call but abort, for which it is not an error.
   */
  createMultipartUpload(key: string, contentType: string): Promise<string>;
  presignUploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    part: PartRequirements,
  ): Promise<PresignedUpload>;
  /** Every part the store holds, in part-number order. */
  listParts(key: string, uploadId: string): Promise<StoredPart[]>;
  completeMultipartUpload(key: string, uploadId: string, parts: readonly StoredPart[]): Promise<void>;
  abortMultipartUpload(key: string, uploadId: string): Promise<void>;
}

export const STORAGE_DRIVER = Symbol('STORAGE_DRIVER');
