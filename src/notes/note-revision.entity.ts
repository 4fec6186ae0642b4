import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { Note } from './note.entity';

/**
 * The content of one version of a note, kept for its history, restores and three-way merges: every
 * version from the note's creation, the newest NOTE_REVISIONS_KEPT of them. They go with the note.
 */
@Entity({ name: 'note_revisions' })
export class NoteRevision {
  @PrimaryColumn({ name: 'note_id', type: 'varchar', length: 36 })
  noteId!: string;

  @PrimaryColumn({ type: 'integer' })
  version!: number;

  /** Declared for the schema (revisions go with their note); the code reads and writes `noteId`. */
  @ManyToOne(() => Note, { onDelete: 'CASCADE', createForeignKeyConstraints: true })
  @JoinColumn({ name: 'note_id', foreignKeyConstraintName: 'fk_note_revisions_note' })
  note?: Note;

  @Column({ name: 'owner_id', type: 'varchar', length: 255 })
  ownerId!: string;

  @Column({ type: 'varchar', length: 200 })
  title!: string;

  @Column({ type: 'text' })
  body!: string;

  /** When this version was written. */
  @Column({ name: 'created_at' })
  createdAt!: Date;
}
