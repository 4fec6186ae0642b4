import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** Remembers which clip an `Idempotency-Key` created, so a retried create returns it instead of a second one. */
@Entity({ name: 'idempotency_keys' })
@Index('idx_idempotency_keys_created', ['createdAt'])
export class IdempotencyKey {
  @PrimaryColumn({ name: 'owner_id', type: 'varchar', length: 255 })
  ownerId!: string;

  @PrimaryColumn({ name: 'idempotency_key', type: 'varchar', length: 255 })
  key!: string;

  /** SHA-256 of the request body: the same key with another body is a client bug, not a retry. */
  @Column({ name: 'request_hash', type: 'varchar', length: 64 })
  requestHash!: string;

  @Column({ name: 'clip_id', type: 'varchar', length: 36 })
  clipId!: string;

  @Column({ name: 'created_at' })
  createdAt!: Date;
}
