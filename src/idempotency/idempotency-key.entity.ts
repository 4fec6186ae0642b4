import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** The creating endpoints that honour `Idempotency-Key`; a key is scoped to its owner and its endpoint. */
export type IdempotentEndpoint = 'audio-clips' | 'notes';

/** Remembers what an `Idempotency-Key` created, so a retried create returns it instead of a second one. */
@Entity({ name: 'idempotency_keys' })
@Index('idx_idempotency_keys_created', ['createdAt'])
export class IdempotencyKey {
  @PrimaryColumn({ name: 'owner_id', type: 'varchar', length: 255 })
  ownerId!: string;

  @PrimaryColumn({ type: 'varchar', length: 32 })
  endpoint!: IdempotentEndpoint;

  @PrimaryColumn({ name: 'idempotency_key', type: 'varchar', length: 255 })
  key!: string;

  /** SHA-256 of the request body: the same key with another body is a client bug, not a retry. */
  @Column({ name: 'request_hash', type: 'varchar', length: 64 })
  requestHash!: string;

  /** The id of the clip or note the request created. */
  @Column({ name: 'resource_id', type: 'varchar', length: 36 })
  resourceId!: string;

  @Column({ name: 'created_at' })
  createdAt!: Date;
}
