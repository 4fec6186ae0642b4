import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity({ name: 'notes' })
@Index('idx_notes_owner_created', ['ownerId', 'createdAt', 'id'])
export class Note {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  /** The `sub` of the token that created it; every query is scoped by it. */
  @Column({ name: 'owner_id', type: 'varchar', length: 255 })
  ownerId!: string;

  @Column({ type: 'varchar', length: 200 })
  title!: string;

  @Column({ type: 'text' })
  body!: string;

  @Column({ name: 'created_at' })
  createdAt!: Date;

  @Column({ name: 'updated_at' })
  updatedAt!: Date;
}
