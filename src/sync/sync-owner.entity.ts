import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../database/column-transformers';

/**
 * One owner's change counter (docs/sync.md). Written only by the triggers of src/sync/sync-triggers.ts
 * (and the janitor's `purgedSeq`); its row lock orders the owner's writers.
 */
@Entity({ name: 'sync_owners' })
export class SyncOwner {
  @PrimaryColumn({ name: 'owner_id', type: 'varchar', length: 255 })
  ownerId!: string;

  /** The owner's last change number. */
  @Column({ type: 'bigint', default: 0, transformer: bigintAsNumber })
  seq!: number;

  /** Random, new with every fresh row: a cursor of another epoch is from a sync state that was reset. */
  @Column({ type: 'varchar', length: 32 })
  epoch!: string;

  /** The highest change number among the owner's purged tombstones: a cursor below it may have missed one. */
  @Column({ name: 'purged_seq', type: 'bigint', default: 0, transformer: bigintAsNumber })
  purgedSeq!: number;
}
