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
}

export interface UploadRequirements {
  contentType: string;
  contentLength: number;
  expiresInSeconds: number;
}

/**
 * The one port every storage back end implements. Object bytes never pass through services:
 * they only hand out signed URLs, look at what arrived, and delete.
 */
export interface StorageDriver {
  readonly name: 's3' | 'local';
  presignUpload(key: string, requirements: UploadRequirements): Promise<PresignedUpload>;
  presignDownload(key: string, expiresInSeconds: number): Promise<PresignedDownload>;
  /** `null` when nothing is stored under the key yet. */
  inspect(key: string): Promise<StoredObjectInfo | null>;
  /** Deleting a key that holds nothing is not an error. */
  delete(key: string): Promise<void>;
}

export const STORAGE_DRIVER = Symbol('STORAGE_DRIVER');
