import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity({ name: 'notes' })
@Index('idx_notes_created_at_id', ['createdAt', 'id'])
export class Note {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'varchar', length: 200 })
  title!: string;

  @Column({ type: 'text' })
  body!: string;

  @Column({ name: 'created_at' })
  createdAt!: Date;

  @Column({ name: 'updated_at' })
  updatedAt!: Date;
}
