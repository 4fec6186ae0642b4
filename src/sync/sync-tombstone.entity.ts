import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../database/column-transformers';

export type SyncItemType = 'note' | 'audio_clip';

/**
 * A deleted note or clip, written by the delete triggers (src/sync/sync-triggers.ts) for every way a row
 * goes, a note's cascade included; kept SYNC_TOMBSTONE_TTL_SECONDS, then purged by the janitor.
 */
@Entity({ name: 'sync_tombstones' })
@Index('idx_sync_tombstones_owner_seq', ['ownerId', 'changeSeq'])
@Index('idx_sync_tombstones_deleted', ['deletedAt'])
export class SyncTombstone {
  @PrimaryColumn({ name: 'item_type', type: 'varchar', length: 16 })
  itemType!: SyncItemType;

  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ name: 'owner_id', type: 'varchar', length: 255 })
  ownerId!: string;

  /** The note's last version; null for a clip. */
  @Column({ type: 'integer', nullable: true })
  version!: number | null;

  @Column({ name: 'deleted_at' })
  deletedAt!: Date;

  @Column({ name: 'change_seq', type: 'bigint', transformer: bigintAsNumber })
  changeSeq!: number;
}
