import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { AudioClip } from '../audio-clips/audio-clip.entity';
import { bigintAsNumber } from '../database/column-transformers';

export enum RenditionStatus {
  /** To be made (or being made: see `claimedUntil`). */
  Pending = 'pending',
  Ready = 'ready',
  /** The decoder could not make it (timeout, crash, wrong result): final, with `failureReason`. */
  Failed = 'failed',
  /** Only in answers, never stored: this server has no ffmpeg, so nothing will make it here. */
  Unavailable = 'unavailable',
}

export enum RenditionSource {
  /** Made by the server from the original. */
  Rendition = 'rendition',
  /** The original already is this format: it is played as it is, nothing was made. */
  Original = 'original',
}

/**
 * One format the server makes of a ready clip (today only `m4a`: AAC-LC in MP4), made in the background
 * by RenditionWorker. Its object is the server's choice: not counted toward the owner's quota, deleted
 * with the clip (the row by ON DELETE CASCADE, the object through the deletion outbox).
 */
@Entity({ name: 'renditions' })
@Index('idx_renditions_status_claimed', ['status', 'claimedUntil'])
@Index('idx_renditions_storage_key', ['storageKey'])
@Index('idx_renditions_owner', ['ownerId'])
export class Rendition {
  @PrimaryColumn({ name: 'clip_id', type: 'varchar', length: 36 })
  clipId!: string;

  @PrimaryColumn({ type: 'varchar', length: 16 })
  format!: string;

  /** The clip's owner, so that whatever removes an owner's rows finds these too. */
  @Column({ name: 'owner_id', type: 'varchar', length: 255 })
  ownerId!: string;

  /** Declared for the schema (a rendition goes with its clip); the code reads and writes `clipId`. */
  @ManyToOne(() => AudioClip, { onDelete: 'CASCADE', createForeignKeyConstraints: true })
  @JoinColumn({ name: 'clip_id', foreignKeyConstraintName: 'fk_renditions_clip' })
  clip?: AudioClip;

  @Column({ type: 'varchar', length: 16 })
  status!: RenditionStatus;

  @Column({ type: 'varchar', length: 16, default: RenditionSource.Rendition })
  source!: RenditionSource;

  /** Where the made object lives (under the clip's key); the original's key when `source` is `original`. */
  @Column({ name: 'storage_key', type: 'varchar', length: 512 })
  storageKey!: string;

  @Column({ type: 'bigint', nullable: true, transformer: bigintAsNumber })
  bytes!: number | null;

  @Column({ name: 'duration_ms', type: 'integer', nullable: true })
  durationMs!: number | null;

  @Column({ name: 'failure_reason', type: 'varchar', length: 500, nullable: true })
  failureReason!: string | null;

  /** Tries begun: a claim counts one, so a job cut off by a crash is retried a bounded number of times. */
  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  /** Which worker holds the job (random per claim); only it may finish the job. */
  @Column({ name: 'claim_token', type: 'varchar', length: 36, nullable: true })
  claimToken!: string | null;

  /** The claim's lease: past it (the instance died mid-job), another worker may take the job up. */
  @Column({ name: 'claimed_until', type: Date, nullable: true })
  claimedUntil!: Date | null;

  @Column({ name: 'created_at' })
  createdAt!: Date;

  @Column({ name: 'updated_at' })
  updatedAt!: Date;
}
