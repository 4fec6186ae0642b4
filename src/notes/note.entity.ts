import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../database/column-transformers';

@Entity({ name: 'notes' })
@Index('idx_notes_owner_created', ['ownerId', 'createdAt', 'id'])
// The change feed reads an owner's changes in order (docs/sync.md).
@Index('idx_notes_owner_change', ['ownerId', 'changeSeq'])
// SQLite search walks an owner's notes newest first when a query has many hits (docs/search.md).
@Index('idx_notes_owner_updated', ['ownerId', 'updatedAt', 'id'])
export class Note {
  /** A UUID: the client's own when it created the note offline, or the server's. */
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  /** The `sub` of the token that created it; every query is scoped by it. */
  @Column({ name: 'owner_id', type: 'varchar', length: 255 })
  ownerId!: string;

  @Column({ type: 'varchar', length: 200 })
  title!: string;

  @Column({ type: 'text' })
  body!: string;

  /** 1 on create, +1 on every change; the ETag is `"<version>"`. */
  @Column({ type: 'integer', default: 1 })
  version!: number;

  /**
   * SHA-256 of the create's content (title and body), so that a create retried under the client's id is
   * recognised as the same create whatever the note became since; null for a note created without an id.
   */
  @Column({ name: 'create_request_hash', type: 'varchar', length: 64, nullable: true, select: false })
  createRequestHash?: string | null;

  /** The owner's change number of the note's last change, set by a trigger (src/sync/sync-triggers.ts). */
  @Column({
    name: 'change_seq',
    type: 'bigint',
    default: 0,
    transformer: bigintAsNumber,
    select: false,
    insert: false,
    update: false,
  })
  changeSeq?: number;

  @Column({ name: 'created_at' })
  createdAt!: Date;

  @Column({ name: 'updated_at' })
  updatedAt!: Date;
}
