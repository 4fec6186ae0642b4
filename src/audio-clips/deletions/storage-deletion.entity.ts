import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../../database/column-transformers';

/**
 * An object that must go, recorded in the same place as the rows so that nothing is orphaned when the
 * store is unreachable at the moment of deletion; StorageDeletionsService works through them.
 */
@Entity({ name: 'storage_deletions' })
@Index('idx_storage_deletions_next_attempt', ['nextAttemptAt'])
@Index('idx_storage_deletions_owner', ['ownerId'])
export class StorageDeletion {
  @PrimaryColumn({ name: 'storage_key', type: 'varchar', length: 512 })
  storageKey!: string;

  /** No upload URL can write the key after this, so a delete then is the last one needed. */
  @Column({ name: 'delete_after' })
  deleteAfter!: Date;

  @Column({ name: 'next_attempt_at' })
  nextAttemptAt!: Date;

  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  /** Bumped by every enqueue and claim, so a worker never removes an entry recorded again after its claim. */
  @Column({ type: 'integer', default: 0 })
  version!: number;

  /** An unfinished multipart upload under the key: aborted before the key is deleted, so its parts go too. */
  @Column({ name: 'multipart_upload_id', type: 'varchar', length: 1024, nullable: true })
  multipartUploadId!: string | null;

  /**
   * Whose quota and pending caps count `heldBytes`: the owner of a deleted or failed clip whose upload
   * URL cannot be revoked and is still valid. Null when nobody is charged.
   */
  @Column({ name: 'owner_id', type: 'varchar', length: 255, nullable: true })
  ownerId!: string | null;

  /** The bytes that URL can still write (its Content-Length is signed); counted until the entry goes. */
  @Column({ name: 'held_bytes', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  heldBytes!: number | null;

  @Column({ name: 'last_error', type: 'varchar', length: 500, nullable: true })
  lastError!: string | null;

  /** When the deletion was last recorded (recording it again refreshes this). */
  @Column({ name: 'created_at' })
  createdAt!: Date;
}
