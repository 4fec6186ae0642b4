import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In, QueryFailedError, Repository } from 'typeorm';
import { AppError } from '../common/app-error';
import { afterCursor, PageRequest, toPage, type Page } from '../common/pagination';
import { timestampParameter } from '../database/database.options';
import { SqlStatements } from '../database/sql-statements';
import { AudioClip, AudioClipStatus, DurationSource } from './audio-clip.entity';

/** A row of `audio_clips` as the database driver returns it. */
interface ClipRow {
  id: string;
  owner_id: string;
  note_id: string | null;
  status: AudioClipStatus;
  mime_type: string;
  bytes: number | string;
  duration_ms: number;
  declared_duration_ms: number;
  duration_source: DurationSource;
  content_md5: string | null;
  storage_key: string;
  upload_key: string;
  upload_expires_at: Date | string | null;
  multipart_upload_id: string | null;
  part_size: number | string | null;
  failure_reason: string | null;
  created_at: Date | string;
  updated_at: Date | string;
  completed_at: Date | string | null;
}

/** Clips that hold storage: what the quota counts. */
const HOLDING_STATUSES = [AudioClipStatus.Pending, AudioClipStatus.Ready];

/**
 * Every query on `audio_clips` lives here, including the conditional state changes, and every one
 * is scoped by owner: another user's clip is indistinguishable from a missing one.
 */

export type PlayableClip = Pick<AudioClip, 'id' | 'status' | 'storageKey'>;

/** The hot reads, exported so that the benchmarks run and explain exactly these. */
export const CLIP_BY_ID_SQL = 'SELECT * FROM audio_clips WHERE id = ? AND owner_id = ?';
/** Playback needs two columns of the row, not the whole clip. */
export const PLAYABLE_CLIP_SQL = 'SELECT status, storage_key FROM audio_clips WHERE id = ? AND owner_id = ?';
/**
 * The CASTs change nothing in the result or the plan (both columns are text). They are there for SQLite:
 * with values bound directly, better-sqlite3 runs this ORDER BY statement several times slower, most
 * likely because STAT4 re-prepares a statement whose plan could depend on its bound values; a CAST hides
 * them from the planner. Figures in docs/PERFORMANCE.md.
 */
export const PRIMARY_CLIP_SQL =
  "SELECT * FROM audio_clips WHERE note_id = CAST(? AS TEXT) AND status = 'ready' AND owner_id = CAST(? AS TEXT) ORDER BY completed_at DESC, id DESC LIMIT 1";

@Injectable()
export class AudioClipsRepository {
  private readonly clips: Repository<AudioClip>;
  private readonly sql: SqlStatements;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {
    this.clips = dataSource.getRepository(AudioClip);
    this.sql = new SqlStatements(dataSource);
  }

  async insert(clip: AudioClip): Promise<void> {
    try {
      await this.clips.insert(clip);
    } catch (error) {
      // The note was deleted between the service's check and this insert.
      if (isForeignKeyViolation(error)) throw new AppError('NOTE_NOT_FOUND', `No note with id ${clip.noteId}.`);
      throw error;
    }
  }

  /**
   * Inserts the clip unless that takes its owner over `quotaBytes`; returns the bytes held without it
   * when refused. Insert-then-check needs no lock on either database: of racing inserts, whichever
   * sums last sees all the others, so together they can never pass the quota.
   */
  async insertWithinQuota(
    clip: AudioClip,
    quotaBytes: number,
  ): Promise<{ inserted: true } | { inserted: false; heldBytes: number }> {
    await this.insert(clip);
    const held = await this.bytesHeldBy(clip.ownerId);
    if (held <= quotaBytes) return { inserted: true };
    await this.clips.delete({ ownerId: clip.ownerId, id: clip.id });
    return { inserted: false, heldBytes: held - clip.bytes };
  }

  async bytesHeldBy(ownerId: string): Promise<number> {
    const total = await this.clips.sum('bytes', { ownerId, status: In(HOLDING_STATUSES) });
    return Number(total ?? 0);
  }

  /** Hot path (playback, complete): one primary-key read. */
  async findById(ownerId: string, id: string): Promise<AudioClip | null> {
    const row = await this.sql.one<ClipRow>(CLIP_BY_ID_SQL, [id, ownerId]);
    return row ? this.toClip(row) : null;
  }

  /** Hot path (playback): what a playback URL needs, without the rest of the row. */
  async findPlayable(ownerId: string, id: string): Promise<PlayableClip | null> {
    const row = await this.sql.one<Pick<ClipRow, 'status' | 'storage_key'>>(PLAYABLE_CLIP_SQL, [id, ownerId]);
    return row ? { id, status: row.status, storageKey: row.storage_key } : null;
  }

  /** Hot path: the note's primary clip, the ready one completed last (served by idx_audio_clips_note_ready). */
  async findPrimaryOfNote(ownerId: string, noteId: string): Promise<AudioClip | null> {
    const row = await this.sql.one<ClipRow>(PRIMARY_CLIP_SQL, [noteId, ownerId]);
    return row ? this.toClip(row) : null;
  }

  private toClip(row: ClipRow): AudioClip {
    return Object.assign(new AudioClip(), {
      id: row.id,
      ownerId: row.owner_id,
      noteId: row.note_id,
      status: row.status,
      mimeType: row.mime_type,
      bytes: Number(row.bytes),
      durationMs: row.duration_ms,
      declaredDurationMs: row.declared_duration_ms,
      durationSource: row.duration_source,
      contentMd5: row.content_md5,
      storageKey: row.storage_key,
      uploadKey: row.upload_key,
      uploadExpiresAt: row.upload_expires_at === null ? null : this.sql.date(row.upload_expires_at),
      multipartUploadId: row.multipart_upload_id,
      partSize: row.part_size === null ? null : Number(row.part_size),
      failureReason: row.failure_reason,
      createdAt: this.sql.date(row.created_at),
      updatedAt: this.sql.date(row.updated_at),
      completedAt: row.completed_at === null ? null : this.sql.date(row.completed_at),
    });
  }

  async listOfNote(ownerId: string, noteId: string, page: PageRequest): Promise<Page<AudioClip>> {
    const query = this.clips
      .createQueryBuilder('clip')
      .where('clip.noteId = :noteId AND clip.ownerId = :ownerId', { noteId, ownerId })
      .orderBy('clip.createdAt', 'DESC')
      .addOrderBy('clip.id', 'DESC')
      .limit(page.limit + 1);
    const cursorTime = page.after && timestampParameter(this.dataSource.options.type, page.after.createdAt);
    return toPage(await afterCursor(query, 'clip', page.after, cursorTime).getMany(), page.limit);
  }

  /** The objects a note's clips may have in storage, with how long their upload URLs stay valid. */
  keysOfNote(
    ownerId: string,
    noteId: string,
  ): Promise<Pick<AudioClip, 'storageKey' | 'uploadKey' | 'uploadExpiresAt' | 'multipartUploadId'>[]> {
    return this.clips.find({
      select: { storageKey: true, uploadKey: true, uploadExpiresAt: true, multipartUploadId: true },
      where: { ownerId, noteId },
    });
  }

  /**
   * pending → ready as one conditional UPDATE, so of two racing completions (or a completion racing
   * the sweeper) exactly one makes a change; returns whether this call made it.
   */
  async markReady(
    ownerId: string,
    id: string,
    at: Date,
    duration: Pick<AudioClip, 'durationMs' | 'durationSource'>,
  ): Promise<boolean> {
    return this.transition(
      { ownerId, id, status: AudioClipStatus.Pending },
      { status: AudioClipStatus.Ready, completedAt: at, updatedAt: at, ...duration },
    );
  }

  /** pending → failed, with the reason. */
  markFailed(ownerId: string, id: string, at: Date, reason: string): Promise<boolean> {
    return this.transition(
      { ownerId, id, status: AudioClipStatus.Pending },
      { status: AudioClipStatus.Failed, failureReason: reason.slice(0, 500), updatedAt: at },
    );
  }

  /** pending → expired, for a clip still older than the cutoff whose last upload URL has run out. */
  async markExpired(id: string, cutoff: Date, now: Date): Promise<boolean> {
    const result = await this.clips
      .createQueryBuilder()
      .update()
      .set({ status: AudioClipStatus.Expired, failureReason: 'The upload was not completed in time.', updatedAt: now })
      .where('id = :id AND status = :pending AND created_at < :cutoff', {
        id,
        pending: AudioClipStatus.Pending,
        cutoff: timestampParameter(this.dataSource.options.type, cutoff),
      })
      .andWhere('(upload_expires_at IS NULL OR upload_expires_at < :now)', {
        now: timestampParameter(this.dataSource.options.type, now),
      })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  findExpirable(cutoff: Date, now: Date, limit: number): Promise<AudioClip[]> {
    return this.clips
      .createQueryBuilder('clip')
      .where('clip.status = :pending AND clip.createdAt < :cutoff', {
        pending: AudioClipStatus.Pending,
        cutoff: timestampParameter(this.dataSource.options.type, cutoff),
      })
      .andWhere('(clip.uploadExpiresAt IS NULL OR clip.uploadExpiresAt < :now)', {
        now: timestampParameter(this.dataSource.options.type, now),
      })
      .orderBy('clip.createdAt', 'ASC')
      .limit(limit)
      .getMany();
  }

  /** A fresh upload URL was handed out: the clip must not be swept before it runs out. Only while pending. */
  async extendUpload(ownerId: string, id: string, until: Date): Promise<boolean> {
    return this.transition({ ownerId, id, status: AudioClipStatus.Pending }, { uploadExpiresAt: until });
  }

  /** Which clip still needs the object under this key, if any: a ready clip's audio, or a pending clip's upload or audio. */
  async keyUse(key: string): Promise<'ready' | 'pending' | null> {
    if (await this.clips.existsBy({ storageKey: key, status: AudioClipStatus.Ready })) return 'ready';
    const pending = await this.clips.exists({
      where: [
        { uploadKey: key, status: AudioClipStatus.Pending },
        { storageKey: key, status: AudioClipStatus.Pending },
      ],
    });
    return pending ? 'pending' : null;
  }

  private async transition(
    where: Partial<Pick<AudioClip, 'ownerId' | 'id' | 'status'>>,
    changes: Partial<AudioClip>,
  ): Promise<boolean> {
    const result = await this.clips.update(where, changes);
    return (result.affected ?? 0) > 0;
  }

  async delete(ownerId: string, id: string): Promise<boolean> {
    const result = await this.clips.delete({ ownerId, id });
    return (result.affected ?? 0) > 0;
  }
}

function isForeignKeyViolation(error: unknown): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const code = (error.driverError as { code?: unknown } | undefined)?.code;
  return code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}
