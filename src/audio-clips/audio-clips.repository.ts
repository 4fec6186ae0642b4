import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, QueryFailedError, Repository, type WhereExpressionBuilder } from 'typeorm';
import { AppError } from '../common/app-error';
import { afterCursor, PageRequest, toPage, type Page } from '../common/pagination';
import { timestampParameter } from '../database/database.options';
import { SqlStatements } from '../database/sql-statements';
import { AudioClip, AudioClipStatus, CompletedBy, DurationSource, waveformAsHex } from './audio-clip.entity';
import type { GoneClip } from './deletions/deletion-rules';

/** A row of `audio_clips` as the database driver returns it. */
export interface ClipRow {
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
  upload_check_at: Date | string | null;
  multipart_upload_id: string | null;
  part_size: number | string | null;
  failure_reason: string | null;
  created_at: Date | string;
  updated_at: Date | string;
  completed_at: Date | string | null;
  completed_by: CompletedBy | null;
  waveform: string | null;
  change_seq: number | string;
}

export interface ClipListFilter {
  /** Only clips in one of these states; all states when absent. */
  statuses?: AudioClipStatus[];
  /** Only clips whose row changed at or after this moment (every state change sets `updated_at`). */
  updatedSince?: Date;
}

export interface ClipLimits {
  /** Bytes of pending and ready clips; null means no quota. */
  quotaBytes: number | null;
  maxPendingBytes: number;
  maxPendingUploads: number;
}

/** What an owner holds against their limits; every figure includes the dead upload URLs still counted. */
export interface Holdings {
  /** Pending and ready bytes (what the quota counts). */
  usedBytes: number;
  pendingBytes: number;
  pendingUploads: number;
  /** Upload URLs of deleted or failed clips that the store cannot revoke and that are still valid. */
  deadUploads: number;
  deadUploadBytes: number;
  /** When the last of them has run out (with the grace for an upload under way); they stop counting at the janitor's next pass. */
  deadUploadsCountedUntil: Date | null;
}

/**
 * Upload URLs of deleted or failed clips that still count against their owner: the deletion outbox's
 * entries that hold bytes (see `deletionsOfGoneClip`). Run on every create, so served by
 * idx_storage_deletions_owner (the migration test checks the plans).
 */
export const DEAD_UPLOADS_SQL = 'SELECT COUNT(*) FROM storage_deletions WHERE owner_id = ? AND held_bytes IS NOT NULL';
export const DEAD_UPLOAD_BYTES_SQL = 'SELECT COALESCE(SUM(held_bytes), 0) FROM storage_deletions WHERE owner_id = ?';
const DEAD_UPLOADS = `(${DEAD_UPLOADS_SQL})`;
const DEAD_UPLOAD_BYTES = `(${DEAD_UPLOAD_BYTES_SQL})`;

/**
 * The one computation of what an owner holds against the limits: the insert that enforces them and
 * every answer that reports them (a refused create, `GET /api/me`) use these same expressions, so a
 * figure shown can never disagree with a refusal. Each `?` is the owner's id (`params` of them).
 */
const HOLDING_EXPRESSIONS = {
  /** Pending clips and the dead upload URLs still counted. */
  pendingUploads: `((SELECT COUNT(*) FROM audio_clips WHERE owner_id = ? AND status = 'pending') + ${DEAD_UPLOADS})`,
  /** Their bytes. */
  pendingBytes: `((SELECT COALESCE(SUM(bytes), 0) FROM audio_clips WHERE owner_id = ? AND status = 'pending') + ${DEAD_UPLOAD_BYTES})`,
  /** What the quota counts: pending and ready bytes, and the dead upload URLs' bytes. */
  usedBytes: `((SELECT COALESCE(SUM(bytes), 0) FROM audio_clips WHERE owner_id = ? AND status IN ('pending', 'ready')) + ${DEAD_UPLOAD_BYTES})`,
  deadUploads: DEAD_UPLOADS,
  deadUploadBytes: DEAD_UPLOAD_BYTES,
  deadUploadsCountedUntil:
    '(SELECT MAX(delete_after) FROM storage_deletions WHERE owner_id = ? AND held_bytes IS NOT NULL)',
} as const;

/** The owner's id once per `?` of the expression. */
function ownerParams(expression: string, ownerId: string): string[] {
  return Array.from({ length: expression.split('?').length - 1 }, () => ownerId);
}

/**
 * Every query on `audio_clips` lives here, including the conditional state changes, and every one
 * is scoped by owner: another user's clip is indistinguishable from a missing one.
 */

export type PlayableClip = Pick<AudioClip, 'id' | 'status' | 'storageKey' | 'mimeType'>;

/** The hot reads, exported so that the benchmarks run and explain exactly these. */
/**
 * Every column, by name rather than `*`: Postgres refuses to run a prepared statement whose result
 * columns changed since it was planned, so with `*` a migration adding a column would break the hot
 * reads of every instance still running (a rolling deploy) until their connections were renewed.
 */
export const CLIP_COLUMNS =
  'id, owner_id, note_id, status, mime_type, bytes, duration_ms, declared_duration_ms, duration_source, content_md5, ' +
  'storage_key, upload_key, upload_expires_at, upload_check_at, multipart_upload_id, part_size, failure_reason, ' +
  'created_at, updated_at, completed_at, completed_by, waveform, change_seq';
export const CLIP_BY_ID_SQL = `SELECT ${CLIP_COLUMNS} FROM audio_clips WHERE id = ? AND owner_id = ?`;
/** Playback needs two columns of the row, not the whole clip. */
export const PLAYABLE_CLIP_SQL = 'SELECT status, storage_key, mime_type FROM audio_clips WHERE id = ? AND owner_id = ?';
/**
 * The CASTs change nothing in the result or the plan (both columns are text). They are there for SQLite:
 * with values bound directly, better-sqlite3 runs this ORDER BY statement several times slower, most
 * likely because STAT4 re-prepares a statement whose plan could depend on its bound values; a CAST hides
 * them from the planner. Figures in docs/PERFORMANCE.md.
 */
export const PRIMARY_CLIP_SQL = `SELECT ${CLIP_COLUMNS} FROM audio_clips WHERE note_id = CAST(? AS TEXT) AND status = 'ready' AND owner_id = CAST(? AS TEXT) ORDER BY completed_at DESC, id DESC LIMIT 1`;

@Injectable()
export class AudioClipsRepository {
  private readonly dataSource: DataSource;
  private readonly sql: SqlStatements;

  constructor(@InjectRepository(AudioClip) private readonly clips: Repository<AudioClip>) {
    this.dataSource = clips.manager.connection;
    this.sql = new SqlStatements(this.dataSource);
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
   * Inserts the clip only if its owner stays within every limit, as one conditional INSERT … SELECT:
   * exactly as many racing creates succeed as fit. SQLite runs one statement at a time; on Postgres the
   * statements of one owner are serialized by a transaction-scoped advisory lock, since each would
   * otherwise check a snapshot without the others' rows.
   *
   * The upload URLs of the owner's deleted and failed clips that the store cannot revoke count as
   * pending uploads of their declared bytes (see `deletionsOfGoneClip`) until the deletion outbox has
   * deleted their keys for the last time. Their hold is written before the clip stops counting and
   * removed only after their last delete, so concurrent deletes never let a create through that does
   * not fit: at worst a clip is counted twice for a moment.
   */
  async insertWithinLimits(clip: AudioClip, limits: ClipLimits): Promise<boolean> {
    const at = (date: Date | null) => (date === null ? null : timestampParameter(this.dataSource.options.type, date));
    const { pendingUploads, pendingBytes, usedBytes } = HOLDING_EXPRESSIONS;
    const conditions = [`${pendingUploads} < ?`, `${pendingBytes} + ? <= ?`];
    const conditionParams: unknown[] = [
      ...ownerParams(pendingUploads, clip.ownerId),
      limits.maxPendingUploads,
      ...ownerParams(pendingBytes, clip.ownerId),
      clip.bytes,
      limits.maxPendingBytes,
    ];
    if (limits.quotaBytes !== null) {
      conditions.push(`${usedBytes} + ? <= ?`);
      conditionParams.push(...ownerParams(usedBytes, clip.ownerId), clip.bytes, limits.quotaBytes);
    }
    const values = [
      clip.id,
      clip.ownerId,
      clip.noteId,
      clip.status,
      clip.mimeType,
      clip.bytes,
      clip.durationMs,
      clip.declaredDurationMs,
      clip.durationSource,
      clip.contentMd5,
      clip.storageKey,
      clip.uploadKey,
      at(clip.uploadExpiresAt),
      at(clip.uploadCheckAt),
      clip.multipartUploadId,
      clip.partSize,
      clip.failureReason,
      at(clip.createdAt),
      at(clip.updatedAt),
      at(clip.completedAt),
      clip.completedBy,
    ];
    const sql = this.sql.adapt(
      `INSERT INTO audio_clips (id, owner_id, note_id, status, mime_type, bytes, duration_ms, declared_duration_ms,
         duration_source, content_md5, storage_key, upload_key, upload_expires_at, upload_check_at, multipart_upload_id, part_size, failure_reason,
         created_at, updated_at, completed_at, completed_by)
       SELECT ${values.map(() => '?').join(', ')} WHERE ${conditions.join(' AND ')} RETURNING id`,
    );
    try {
      const rows = (await this.dataSource.transaction(async (manager) => {
        if (this.dataSource.options.type === 'postgres') {
          await manager.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`audio_clips:${clip.ownerId}`]);
          // The note before the owner's change counter (which the insert's trigger takes): a delete of the note
          // takes them in that order too, so a create racing the note's deletion waits instead of deadlocking.
          if (clip.noteId !== null)
            await manager.query('SELECT 1 FROM notes WHERE id = $1 FOR KEY SHARE', [clip.noteId]);
        }
        return manager.query(sql, [...values, ...conditionParams]);
      })) as unknown[];
      return rows.length > 0;
    } catch (error) {
      // The note was deleted between the service's check and this insert.
      if (isForeignKeyViolation(error)) throw new AppError('NOTE_NOT_FOUND', `No note with id ${clip.noteId}.`);
      throw error;
    }
  }

  /**
   * What the owner holds against the limits, computed by the very expressions the insert checks: for
   * the answer to a refused create and for `GET /api/me`. The dead upload URLs still counted are
   * included in the other figures, with when the last of them stops counting.
   */
  async holdings(ownerId: string): Promise<Holdings> {
    const entries = Object.entries(HOLDING_EXPRESSIONS);
    const [row] = (await this.dataSource.query(
      this.sql.adapt(`SELECT ${entries.map(([name, expression]) => `${expression} AS ${snake(name)}`).join(', ')}`),
      entries.flatMap(([, expression]) => ownerParams(expression, ownerId)),
    )) as Record<string, number | string | Date | null>[];
    const figure = (name: keyof typeof HOLDING_EXPRESSIONS) => Number(row[snake(name)] ?? 0);
    const until = row.dead_uploads_counted_until as Date | string | null;
    return {
      usedBytes: figure('usedBytes'),
      pendingBytes: figure('pendingBytes'),
      pendingUploads: figure('pendingUploads'),
      deadUploadBytes: figure('deadUploadBytes'),
      deadUploads: figure('deadUploads'),
      deadUploadsCountedUntil: until === null ? null : this.sql.date(until),
    };
  }

  /** Hot path (playback, complete): one primary-key read. */
  async findById(ownerId: string, id: string): Promise<AudioClip | null> {
    const row = await this.sql.one<ClipRow>(CLIP_BY_ID_SQL, [id, ownerId]);
    return row ? this.toClip(row) : null;
  }

  /** Hot path (playback): what a playback URL needs, without the rest of the row. */
  async findPlayable(ownerId: string, id: string): Promise<PlayableClip | null> {
    const row = await this.sql.one<Pick<ClipRow, 'status' | 'storage_key' | 'mime_type'>>(PLAYABLE_CLIP_SQL, [
      id,
      ownerId,
    ]);
    return row ? { id, status: row.status, storageKey: row.storage_key, mimeType: row.mime_type } : null;
  }

  /** Hot path: the note's primary clip, the ready one completed last (served by idx_audio_clips_note_ready). */
  async findPrimaryOfNote(ownerId: string, noteId: string): Promise<AudioClip | null> {
    const row = await this.sql.one<ClipRow>(PRIMARY_CLIP_SQL, [noteId, ownerId]);
    return row ? this.toClip(row) : null;
  }

  private toClip(row: ClipRow): AudioClip {
    return clipFromRow(row, this.sql);
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

  /** The owner's clips, newest first, narrowed to some states and to those changed since a moment. */
  async list(ownerId: string, filter: ClipListFilter, page: PageRequest): Promise<Page<AudioClip>> {
    const type = this.dataSource.options.type;
    const query = this.clips
      .createQueryBuilder('clip')
      .where('clip.ownerId = :ownerId', { ownerId })
      .orderBy('clip.createdAt', 'DESC')
      .addOrderBy('clip.id', 'DESC')
      .limit(page.limit + 1);
    if (filter.statuses) query.andWhere('clip.status IN (:...statuses)', { statuses: filter.statuses });
    if (filter.updatedSince)
      query.andWhere('clip.updatedAt >= :updatedSince', {
        updatedSince: timestampParameter(type, filter.updatedSince),
      });
    const cursorTime = page.after && timestampParameter(type, page.after.createdAt);
    return toPage(await afterCursor(query, 'clip', page.after, cursorTime).getMany(), page.limit);
  }

  /**
   * The objects clips may have in storage, with how long their upload URLs stay valid and what they can
   * write: one note's clips (the note's deletion), or every clip of the owner (an account deletion).
   */
  keysOfGoneClips(ownerId: string, noteId?: string): Promise<GoneClip[]> {
    return this.clips.find({
      select: {
        ownerId: true,
        status: true,
        bytes: true,
        storageKey: true,
        uploadKey: true,
        uploadExpiresAt: true,
        multipartUploadId: true,
      },
      where: noteId === undefined ? { ownerId } : { ownerId, noteId },
    });
  }

  /** Every clip of the owner, in every state, oldest first (an export). */
  allOfOwner(ownerId: string): Promise<AudioClip[]> {
    return this.clips.find({ where: { ownerId }, order: { createdAt: 'ASC', id: 'ASC' } });
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
    completedBy: CompletedBy,
  ): Promise<boolean> {
    return this.transition(
      { ownerId, id, status: AudioClipStatus.Pending },
      { status: AudioClipStatus.Ready, completedAt: at, updatedAt: at, completedBy, uploadCheckAt: null, ...duration },
    );
  }

  /** A ready clip by id alone: the rendition worker's read (the job row was scoped when it was made). */
  async findReady(id: string): Promise<AudioClip | null> {
    return this.clips.findOneBy({ id, status: AudioClipStatus.Ready });
  }

  /**
   * The waveform the rendition job made; `updated_at` moves so that a list `updated_since` finds the clip
   * again. Only while ready (the status itself never changes here).
   */
  async setWaveform(id: string, waveform: number[], at: Date): Promise<boolean> {
    return this.transition({ id, status: AudioClipStatus.Ready }, { waveform, updatedAt: at });
  }

  /** pending → failed, with the reason. */
  markFailed(ownerId: string, id: string, at: Date, reason: string): Promise<boolean> {
    return this.transition(
      { ownerId, id, status: AudioClipStatus.Pending },
      { status: AudioClipStatus.Failed, failureReason: reason.slice(0, 500), updatedAt: at },
    );
  }

  /**
   * pending → expired, for a clip older than the cutoff to which no upload can still be landing: its
   * last URL ran out before `uploadsClosedBefore` (see `nextUploadCheck`).
   */
  async markExpired(id: string, cutoff: Date, uploadsClosedBefore: Date, now: Date): Promise<boolean> {
    const type = this.dataSource.options.type;
    const result = await this.clips
      .createQueryBuilder()
      .update()
      .set({
        status: AudioClipStatus.Expired,
        failureReason: 'Nothing was uploaded in time.',
        uploadCheckAt: null,
        updatedAt: now,
      })
      .where('id = :id AND status = :pending AND created_at < :cutoff', {
        id,
        pending: AudioClipStatus.Pending,
        cutoff: timestampParameter(type, cutoff),
      })
      .andWhere('(upload_expires_at IS NULL OR upload_expires_at <= :closed)', {
        closed: timestampParameter(type, uploadsClosedBefore),
      })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  /**
   * Pending clips whose upload the janitor should look for now: their look is due (their URL has run
   * out), or they are past the TTL and get a last look before they expire. Oldest first.
   */
  findUploadsToLookFor(now: Date, cutoff: Date, limit: number): Promise<AudioClip[]> {
    return this.uploadsToLookFor(this.clips.createQueryBuilder('clip').select(), now, cutoff)
      .orderBy('clip.createdAt', 'ASC')
      .limit(limit)
      .getMany();
  }

  /**
   * Takes the look at a clip for this caller: moves its next look to `next`, only if it is still pending
   * and still due. The moved time makes it not due for anyone else, so of several janitors one wins.
   */
  async claimUploadLook(id: string, now: Date, cutoff: Date, next: Date | null): Promise<boolean> {
    const update = this.clips
      .createQueryBuilder('clip')
      .update()
      .set({ uploadCheckAt: next })
      .where('id = :id', { id });
    const result = await this.uploadsToLookFor(update, now, cutoff).execute();
    return (result.affected ?? 0) > 0;
  }

  /** Looks again at `at` (the store could not be reached); only while pending. */
  async scheduleUploadLook(id: string, at: Date): Promise<void> {
    await this.clips.update({ id, status: AudioClipStatus.Pending }, { uploadCheckAt: at });
  }

  private uploadsToLookFor<Q extends WhereExpressionBuilder>(query: Q, now: Date, cutoff: Date): Q {
    const type = this.dataSource.options.type;
    return query
      .andWhere('status = :pending', { pending: AudioClipStatus.Pending })
      .andWhere('(upload_check_at <= :now OR (upload_check_at IS NULL AND created_at < :cutoff))', {
        now: timestampParameter(type, now),
        cutoff: timestampParameter(type, cutoff),
      });
  }

  /**
   * A fresh upload URL was handed out: the clip must not be swept before it runs out, and the janitor
   * looks for its upload again once it has. Only while pending.
   */
  async extendUpload(ownerId: string, id: string, until: Date, checkAt: Date): Promise<boolean> {
    return this.transition(
      { ownerId, id, status: AudioClipStatus.Pending },
      { uploadExpiresAt: until, uploadCheckAt: checkAt },
    );
  }

  /** Whether a pending clip still waits for bytes under this upload key. */
  isPendingUpload(uploadKey: string): Promise<boolean> {
    return this.clips.existsBy({ uploadKey, status: AudioClipStatus.Pending });
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

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

function isForeignKeyViolation(error: unknown): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const code = (error.driverError as { code?: unknown } | undefined)?.code;
  return code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

/** A clip from its row as `CLIP_COLUMNS` reads it. */
export function clipFromRow(row: ClipRow, sql: Pick<SqlStatements, 'date'>): AudioClip {
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
    uploadExpiresAt: row.upload_expires_at === null ? null : sql.date(row.upload_expires_at),
    uploadCheckAt: row.upload_check_at === null ? null : sql.date(row.upload_check_at),
    multipartUploadId: row.multipart_upload_id,
    partSize: row.part_size === null ? null : Number(row.part_size),
    failureReason: row.failure_reason,
    createdAt: sql.date(row.created_at),
    updatedAt: sql.date(row.updated_at),
    completedAt: row.completed_at === null ? null : sql.date(row.completed_at),
    completedBy: row.completed_by,
    waveform: waveformAsHex.from(row.waveform),
    changeSeq: Number(row.change_seq),
  });
}
