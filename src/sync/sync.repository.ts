import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AudioClip } from '../audio-clips/audio-clip.entity';
import { CLIP_COLUMNS, clipFromRow, type ClipRow } from '../audio-clips/audio-clips.repository';
import { timestampParameter } from '../database/database.options';
import { SqlStatements } from '../database/sql-statements';
import type { NoteRow } from '../notes/notes.repository';
import type { NoteResponseDto } from '../notes/note.dto';
import { SyncOwner } from './sync-owner.entity';
import { SyncTombstone, type SyncItemType } from './sync-tombstone.entity';

const OWNER_STATE_SQL = 'SELECT seq, epoch, purged_seq FROM sync_owners WHERE owner_id = ?';
/** One range of an owner's change numbers, in order (served by each table's (owner_id, change_seq) index). */
const CHANGED_RANGE = 'WHERE owner_id = ? AND change_seq > ? AND change_seq <= ? ORDER BY change_seq LIMIT ?';
const NOTES_CHANGED_SQL = `SELECT id, title, body, version, created_at, updated_at, change_seq FROM notes ${CHANGED_RANGE}`;
const CLIPS_CHANGED_SQL = `SELECT ${CLIP_COLUMNS} FROM audio_clips ${CHANGED_RANGE}`;
const TOMBSTONES_CHANGED_SQL = `SELECT item_type, id, version, deleted_at, change_seq FROM sync_tombstones ${CHANGED_RANGE}`;

type ChangedNoteRow = NoteRow & { change_seq: number | string };

interface TombstoneRow {
  item_type: SyncItemType;
  id: string;
  version: number | string | null;
  deleted_at: Date | string;
  change_seq: number | string;
}

export interface ChangedItems {
  notes: { changeSeq: number; note: NoteResponseDto }[];
  clips: AudioClip[];
  tombstones: SyncTombstone[];
}

/** The change feed's reads, and the purge of old tombstones. */
@Injectable()
export class SyncRepository {
  private readonly sql: SqlStatements;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {
    this.sql = new SqlStatements(dataSource);
  }

  /**
   * The owner's counter row; null for an owner who never changed anything. A plain read: it never waits
   * for a writer holding the row.
   */
  async ownerState(ownerId: string): Promise<SyncOwner | null> {
    const row = await this.sql.one<{ seq: number | string; epoch: string; purged_seq: number | string }>(
      OWNER_STATE_SQL,
      [ownerId],
    );
    if (!row) return null;
    return Object.assign(new SyncOwner(), {
      ownerId,
      seq: Number(row.seq),
      epoch: row.epoch,
      purgedSeq: Number(row.purged_seq),
    });
  }

  /**
   * The owner's items whose last change is numbered in (after, upTo], at most `limit` of each kind, in
   * change order: notes and clips in their current state, deleted ones as tombstones. Each table is read
   * through its (owner_id, change_seq) index, by a statement prepared once (the feed is a hot path).
   */
  async changedBetween(ownerId: string, after: number, upTo: number, limit: number): Promise<ChangedItems> {
    const params = [ownerId, after, upTo, limit];
    const [noteRows, clipRows, tombstoneRows] = [
      await this.sql.all<ChangedNoteRow>(NOTES_CHANGED_SQL, params),
      await this.sql.all<ClipRow>(CLIPS_CHANGED_SQL, params),
      await this.sql.all<TombstoneRow>(TOMBSTONES_CHANGED_SQL, params),
    ];
    return {
      // In their response shape straight from the rows: no Date in between (a page is up to 100 notes).
      notes: noteRows.map((row) => ({
        changeSeq: Number(row.change_seq),
        note: {
          id: row.id,
          title: row.title,
          body: row.body,
          version: Number(row.version),
          created_at: this.sql.iso(row.created_at),
          updated_at: this.sql.iso(row.updated_at),
        },
      })),
      clips: clipRows.map((row) => clipFromRow(row, this.sql)),
      tombstones: tombstoneRows.map((row) =>
        Object.assign(new SyncTombstone(), {
          itemType: row.item_type,
          id: row.id,
          ownerId,
          version: row.version === null ? null : Number(row.version),
          deletedAt: this.sql.date(row.deleted_at),
          changeSeq: Number(row.change_seq),
        }),
      ),
    };
  }

  /**
   * Forgets the tombstones of deletions before `cutoff`, first raising their owners' `purged_seq` to the
   * highest of them: a cursor below it might have missed one, and answers 410. Returns how many went.
   */
  async purgeTombstones(cutoff: Date): Promise<number> {
    const at = timestampParameter(this.dataSource.options.type, cutoff);
    const adapt = (sql: string) => new SqlStatements(this.dataSource).adapt(sql);
    return this.dataSource.transaction(async (manager) => {
      const purged = `(SELECT MAX(change_seq) FROM sync_tombstones WHERE sync_tombstones.owner_id = sync_owners.owner_id AND deleted_at < ?)`;
      await manager.query(
        adapt(
          `UPDATE sync_owners SET purged_seq = CASE WHEN ${purged} > purged_seq THEN ${purged} ELSE purged_seq END
           WHERE owner_id IN (SELECT owner_id FROM sync_tombstones WHERE deleted_at < ?)`,
        ),
        [at, at, at],
      );
      const result = await manager
        .createQueryBuilder()
        .delete()
        .from(SyncTombstone)
        .where('deleted_at < :at', { at })
        .execute();
      return result.affected ?? 0;
    });
  }
}
