import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

export enum AudioClipStatus {
  /** Created; the phone has a URL and may be uploading. */
  Pending = 'pending',
  /** The stored object was checked against what was declared; it can be played. */
  Ready = 'ready',
}

/** SQL `bigint` comes back from Postgres as a string; sizes here always fit a JS number. */
const bigintAsNumber = {
  to: (value: number | null) => value,
  from: (value: string | number | null) => (value === null ? null : Number(value)),
};

@Entity({ name: 'audio_clips' })
@Index('idx_audio_clips_note_ready', ['noteId', 'status', 'completedAt'])
@Index('idx_audio_clips_note_created', ['noteId', 'createdAt', 'id'])
@Index('idx_audio_clips_owner_status', ['ownerId', 'status'])
export class AudioClip {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  /** The `sub` of the token that created it; every query is scoped by it. */
  @Column({ name: 'owner_id', type: 'varchar', length: 255 })
  ownerId!: string;

  @Column({ name: 'note_id', type: 'varchar', length: 36, nullable: true })
  noteId!: string | null;

  @Column({ type: 'varchar', length: 16 })
  status!: AudioClipStatus;

  @Column({ name: 'mime_type', type: 'varchar', length: 255 })
  mimeType!: string;

  @Column({ type: 'bigint', transformer: bigintAsNumber })
  bytes!: number;

  @Column({ name: 'duration_ms', type: 'integer' })
  durationMs!: number;

  @Column({ name: 'storage_key', type: 'varchar', length: 512, unique: true })
  storageKey!: string;

  @Column({ name: 'created_at' })
  createdAt!: Date;

  @Column({ name: 'updated_at' })
  updatedAt!: Date;

  @Column({ name: 'completed_at', type: Date, nullable: true })
  completedAt!: Date | null;
}
