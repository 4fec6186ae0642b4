import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../database/column-transformers';

export enum ExportStatus {
  /** Asked for; waiting for a worker (again, after a failed attempt). */
  Pending = 'pending',
  /** A worker holds its claim and is building the archive. */
  Running = 'running',
  /** The archive is whole in the store and can be downloaded until `expires_at`. */
  Ready = 'ready',
  /** Every attempt failed. Final. */
  Failed = 'failed',
  /** Its archive was deleted by the janitor after `expires_at`. Final. */
  Expired = 'expired',
}

/**
 * One export of an owner's data: a zip archive built in the background and stored under
 * `<prefix>/exports/`, a key without the owner in it (this row says whose it is).
 */
@Entity({ name: 'exports' })
@Index('idx_exports_owner_created', ['ownerId', 'createdAt'])
@Index('idx_exports_status_next_attempt', ['status', 'nextAttemptAt'])
// At most one export under way per owner: a second request answers the one there is.
@Index('idx_exports_one_running_per_owner', ['ownerId'], { unique: true, where: "status IN ('pending', 'running')" })
export class Export {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ name: 'owner_id', type: 'varchar', length: 255 })
  ownerId!: string;

  @Column({ type: 'varchar', length: 16 })
  status!: ExportStatus;

  /** The archive's key once ready (each attempt writes a key of its own). */
  @Column({ name: 'storage_key', type: 'varchar', length: 512, nullable: true })
  storageKey!: string | null;

  /** The archive's size once ready. */
  @Column({ type: 'bigint', nullable: true, transformer: bigintAsNumber })
  bytes!: number | null;

  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  /** When a worker may take it (again). */
  @Column({ name: 'next_attempt_at' })
  nextAttemptAt!: Date;

  /** The attempt under way: only the worker holding this token may finish it. */
  @Column({ name: 'claim_token', type: 'varchar', length: 36, nullable: true })
  claimToken!: string | null;

  /** The claim lapses then unless renewed (a worker that crashed), and another worker takes over. */
  @Column({ name: 'claimed_until', type: Date, nullable: true })
  claimedUntil!: Date | null;

  @Column({ name: 'last_error', type: 'varchar', length: 500, nullable: true })
  lastError!: string | null;

  @Column({ name: 'created_at' })
  createdAt!: Date;

  @Column({ name: 'updated_at' })
  updatedAt!: Date;

  @Column({ name: 'ready_at', type: Date, nullable: true })
  readyAt!: Date | null;

  /** When the archive stops being downloadable and is deleted. */
  @Column({ name: 'expires_at', type: Date, nullable: true })
  expiresAt!: Date | null;
}
