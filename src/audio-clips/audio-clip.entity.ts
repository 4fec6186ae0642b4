import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { Note } from '../notes/note.entity';
import type { RenditionView } from '../renditions/rendition-view';
import { bigintAsNumber } from '../database/column-transformers';

export enum AudioClipStatus {
  /** Created; the phone has a URL and may be uploading. */
  Pending = 'pending',
  /** The stored object was checked against what was declared; it can be played. */
  Ready = 'ready',
  /** The upload was not the audio declared; its bytes were deleted. Final. */
  Failed = 'failed',
  /** Never completed within the upload TTL; swept, its bytes deleted. Final. */
  Expired = 'expired',
}

export enum DurationSource {
  /** Measured from the audio itself. */
  Measured = 'measured',
  /** What the phone said: the container carries no duration (MediaRecorder WebM), or not checked yet. */
  Declared = 'declared',
}

export enum CompletedBy {
  /** The phone called `POST …/complete`. */
  Client = 'client',
  /** The janitor found the upload after its URL had run out, the phone never having completed it. */
  Server = 'server',
}

/**
 * A waveform is 100 bytes (0–255); stored as 200 hex digits, answered as an array of integers.
 */
export const waveformAsHex = {
  to: (value: number[] | null | undefined) =>
    value === null || value === undefined ? value : Buffer.from(value).toString('hex'),
  from: (value: string | null) => (value === null ? null : [...Buffer.from(value, 'hex')]),
};

@Entity({ name: 'audio_clips' })
@Index('idx_audio_clips_note_ready', ['noteId', 'status', 'completedAt', 'id'])
@Index('idx_audio_clips_note_created', ['noteId', 'createdAt', 'id'])
@Index('idx_audio_clips_owner_status', ['ownerId', 'status'])
@Index('idx_audio_clips_status_created', ['status', 'createdAt'])
@Index('idx_audio_clips_status_upload_check', ['status', 'uploadCheckAt'])
@Index('idx_audio_clips_owner_created', ['ownerId', 'createdAt'])
// The change feed reads an owner's changes in order (docs/sync.md).
@Index('idx_audio_clips_owner_change', ['ownerId', 'changeSeq'])
// The janitor asks whether a pending clip still uploads to a key.
@Index('idx_audio_clips_upload_key', ['uploadKey'])
export class AudioClip {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  /** The `sub` of the token that created it; every query is scoped by it. */
  @Column({ name: 'owner_id', type: 'varchar', length: 255 })
  ownerId!: string;

  @Column({ name: 'note_id', type: 'varchar', length: 36, nullable: true })
  noteId!: string | null;

  /** Declared for the schema (a clip goes with its note); the code reads and writes `noteId`. */
  @ManyToOne(() => Note, { onDelete: 'CASCADE', nullable: true, createForeignKeyConstraints: true })
  @JoinColumn({ name: 'note_id', foreignKeyConstraintName: 'fk_audio_clips_note' })
  note?: Note | null;

  @Column({ type: 'varchar', length: 16 })
  status!: AudioClipStatus;

  @Column({ name: 'mime_type', type: 'varchar', length: 255 })
  mimeType!: string;

  @Column({ type: 'bigint', transformer: bigintAsNumber })
  bytes!: number;

  @Column({ name: 'duration_ms', type: 'integer' })
  durationMs!: number;

  @Column({ name: 'declared_duration_ms', type: 'integer' })
  declaredDurationMs!: number;

  @Column({ name: 'duration_source', type: 'varchar', length: 16, default: DurationSource.Declared })
  durationSource!: DurationSource;

  /** Base64 MD5 the phone declared; the upload URL then makes the store verify the bytes. */
  @Column({ name: 'content_md5', type: 'varchar', length: 24, nullable: true })
  contentMd5!: string | null;

  /** Where the clip lives once ready. */
  @Column({ name: 'storage_key', type: 'varchar', length: 512, unique: true })
  storageKey!: string;

  /** Where the phone uploads; moved to `storageKey` on completion, so a later PUT cannot swap a ready clip's bytes. */
  @Column({ name: 'upload_key', type: 'varchar', length: 512 })
  uploadKey!: string;

  /** When the last upload URL handed out stops working. */
  @Column({ name: 'upload_expires_at', type: Date, nullable: true })
  uploadExpiresAt!: Date | null;

  /**
   * When the janitor next looks in the store for an upload the phone has not completed: just after the
   * last URL runs out, again once no upload begun with it can still be landing; null when there is
   * nothing left to look for until the clip expires (or a new URL is handed out).
   */
  @Column({ name: 'upload_check_at', type: Date, nullable: true })
  uploadCheckAt!: Date | null;

  /** The store's multipart upload the phone sends parts to; null for a single-PUT upload. */
  @Column({ name: 'multipart_upload_id', type: 'varchar', length: 1024, nullable: true })
  multipartUploadId!: string | null;

  /** Size of every part but the last, for a multipart upload. */
  @Column({ name: 'part_size', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  partSize!: number | null;

  @Column({ name: 'failure_reason', type: 'varchar', length: 500, nullable: true })
  failureReason!: string | null;

  @Column({ name: 'created_at' })
  createdAt!: Date;

  @Column({ name: 'updated_at' })
  updatedAt!: Date;

  @Column({ name: 'completed_at', type: Date, nullable: true })
  completedAt!: Date | null;

  /**
   * 100 peaks (0–255, the loudest slice 255; all 0 for silence) over equal slices of the recording,
   * made with its renditions; null until then.
   */
  @Column({ type: 'varchar', length: 200, nullable: true, transformer: waveformAsHex })
  waveform!: number[] | null;

  /** What the server made of the clip, when loaded (never a column): see RenditionsService. */
  renditions?: RenditionView[];

  /** Who completed it: the phone, or the janitor on its behalf. Null until ready. */
  @Column({ name: 'completed_by', type: 'varchar', length: 16, nullable: true })
  completedBy!: CompletedBy | null;

  /** The owner's change number of the clip's last client-visible change, set by a trigger (src/sync/sync-triggers.ts). */
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
}
