import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, EntityManager, LessThan, Repository } from 'typeorm';
import { timestampParameter } from '../database/database.options';
import { SqlStatements } from '../database/sql-statements';
import { afterCursor, PageRequest, toPage, type Page } from '../common/pagination';
import { Note } from './note.entity';
import { NoteRevision } from './note-revision.entity';
import type { NoteContent } from './note-merge';

/** Who uses a note id, for the uniqueness of ids across owners and deleted notes. */
export interface NoteIdUse {
  ownerId: string;
  /** The hash of the create that made the note under this id; null when the server chose the id. */
  createRequestHash: string | null;
  /** The id is a deleted note's (its tombstone is kept). */
  deleted: boolean;
}

const NOTE_BY_ID_SQL =
  'SELECT id, title, body, version, created_at, updated_at FROM notes WHERE id = ? AND owner_id = ?';

/** A note's row as the raw reads select it (`NOTE_BY_ID_SQL`, the change feed, search). */
export interface NoteRow {
  id: string;
  title: string;
  body: string;
  version: number | string;
  created_at: Date | string;
  updated_at: Date | string;
}

/** A new version only if the note is still at the version read (the optimistic check). */
const SQLITE_UPDATE_NOTE_SQL =
  'UPDATE notes SET title = ?, body = ?, version = ?, updated_at = ? WHERE id = ? AND owner_id = ? AND version = ?';
const SQLITE_INSERT_REVISION_SQL =
  'INSERT INTO note_revisions (note_id, version, owner_id, title, body, created_at) VALUES (?, ?, ?, ?, ?, ?)';
const SQLITE_PRUNE_REVISIONS_SQL = 'DELETE FROM note_revisions WHERE note_id = ? AND version <= ?';
/** The same three writes as one statement; the revision and the pruning only when the update took. */
const POSTGRES_UPDATE_NOTE_SQL = `WITH updated AS (
    UPDATE notes SET title = ?::varchar, body = ?::text, version = ?::integer, updated_at = ?::timestamptz
    WHERE id = ?::varchar AND owner_id = ?::varchar AND version = ?::integer
    RETURNING id, owner_id, title, body, version, updated_at
  ), kept AS (
    INSERT INTO note_revisions (note_id, version, owner_id, title, body, created_at)
    SELECT id, version, owner_id, title, body, updated_at FROM updated
  ), pruned AS (
    DELETE FROM note_revisions WHERE note_id IN (SELECT id FROM updated) AND version <= ?::integer
  )
  SELECT COUNT(*) AS updated FROM updated`;

/**
 * Every query on `notes` and `note_revisions` lives here, and every one is scoped by owner: another
 * user's note is indistinguishable from a missing one (ids are checked across owners only for the
 * uniqueness of client-chosen ids, whose answer does not depend on the owner).
 */
@Injectable()
export class NotesRepository {
  private readonly dataSource: DataSource;
  private readonly sql: SqlStatements;

  constructor(
    @InjectRepository(Note) private readonly notes: Repository<Note>,
    @InjectRepository(NoteRevision) private readonly revisions: Repository<NoteRevision>,
  ) {
    this.dataSource = notes.manager.connection;
    this.sql = new SqlStatements(this.dataSource);
  }

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(work);
  }

  /** A new note with its content as revision 1 (inside the caller's transaction). */
  async insertWithFirstRevision(note: Note, createRequestHash: string | null, manager: EntityManager): Promise<void> {
    await manager.getRepository(Note).insert({ ...note, createRequestHash });
    await manager.getRepository(NoteRevision).insert(revisionOf(note));
  }

  /** Hot path (GET, PATCH, DELETE): one primary-key read by a statement prepared once. */
  async findById(ownerId: string, id: string): Promise<Note | null> {
    const row = await this.sql.one<NoteRow>(NOTE_BY_ID_SQL, [id, ownerId]);
    return row ? this.toNote(row, ownerId) : null;
  }

  private toNote(row: NoteRow, ownerId: string): Note {
    return Object.assign(new Note(), {
      id: row.id,
      ownerId,
      title: row.title,
      body: row.body,
      version: Number(row.version),
      createdAt: this.sql.date(row.created_at),
      updatedAt: this.sql.date(row.updated_at),
    });
  }

  exists(ownerId: string, id: string): Promise<boolean> {
    return this.notes.existsBy({ ownerId, id });
  }

  /** Whether this owner deleted a note under this id (and its tombstone is still kept). */
  async isDeletedBy(ownerId: string, id: string): Promise<boolean> {
    const rows = (await this.dataSource.query(
      this.sql.adapt("SELECT 1 AS deleted FROM sync_tombstones WHERE item_type = 'note' AND id = ? AND owner_id = ?"),
      [id, ownerId],
    )) as unknown[];
    return rows.length > 0;
  }

  /** The note or tombstone that holds this id, whoever owns it. */
  async idUse(id: string): Promise<NoteIdUse | null> {
    const live = await this.notes.findOne({
      select: { id: true, ownerId: true, createRequestHash: true },
      where: { id },
    });
    if (live) return { ownerId: live.ownerId, createRequestHash: live.createRequestHash ?? null, deleted: false };
    const [tombstone] = (await this.dataSource.query(
      this.sql.adapt("SELECT owner_id FROM sync_tombstones WHERE item_type = 'note' AND id = ?"),
      [id],
    )) as { owner_id: string }[];
    return tombstone ? { ownerId: tombstone.owner_id, createRequestHash: null, deleted: true } : null;
  }

  async list(ownerId: string, page: PageRequest): Promise<Page<Note>> {
    const query = this.notes
      .createQueryBuilder('note')
      .where('note.ownerId = :ownerId', { ownerId })
      .orderBy('note.createdAt', 'DESC')
      .addOrderBy('note.id', 'DESC')
      .limit(page.limit + 1);
    const cursorTime = page.after && timestampParameter(this.dataSource.options.type, page.after.createdAt);
    return toPage(await afterCursor(query, 'note', page.after, cursorTime).getMany(), page.limit);
  }

  /**
   * Writes `content` as the version after `note.version`, only if the note is still at that version (an
   * optimistic check: of two racing writers one wins, the other reads again). The new version is kept as
   * a revision and the revisions beyond the newest `keep` go, in the same transaction. Null when the note
   * changed or went meanwhile.
   */
  async updateFrom(note: Note, content: NoteContent, at: Date, keep: number): Promise<Note | null> {
    const version = note.version + 1;
    // Revisions at or below this go: the newest `keep` stay.
    const pruneUpTo = version - keep;
    let written: boolean;
    if (this.sql.isPostgres) {
      // One statement, so one round trip and atomic by itself; the triggers fire for its UPDATE as for any.
      const row = await this.sql.one<{ updated: string | number }>(POSTGRES_UPDATE_NOTE_SQL, [
        content.title,
        content.body,
        version,
        at,
        note.id,
        note.ownerId,
        note.version,
        pruneUpTo,
      ]);
      written = Number(row?.updated ?? 0) > 0;
    } else {
      const time = timestampParameter('better-sqlite3', at);
      written = await this.sql.sqliteTransaction((statement) => {
        const { changes } = statement(SQLITE_UPDATE_NOTE_SQL).run(
          content.title,
          content.body,
          version,
          time,
          note.id,
          note.ownerId,
          note.version,
        );
        if (changes === 0) return false;
        statement(SQLITE_INSERT_REVISION_SQL).run(note.id, version, note.ownerId, content.title, content.body, time);
        if (pruneUpTo > 0) statement(SQLITE_PRUNE_REVISIONS_SQL).run(note.id, pruneUpTo);
        return true;
      });
    }
    return written ? Object.assign(new Note(), note, { ...content, version, updatedAt: at }) : null;
  }

  /** Deletes the note if it is still at `version`; its revisions and clips go with it (ON DELETE CASCADE). */
  async deleteAt(ownerId: string, id: string, version: number): Promise<boolean> {
    const result = await this.notes.delete({ ownerId, id, version });
    return (result.affected ?? 0) > 0;
  }

  /** The note's kept revisions, newest first, those below `beforeVersion` when given. */
  listRevisions(ownerId: string, noteId: string, limit: number, beforeVersion?: number): Promise<NoteRevision[]> {
    return this.revisions.find({
      where: { ownerId, noteId, ...(beforeVersion === undefined ? {} : { version: LessThan(beforeVersion) }) },
      order: { version: 'DESC' },
      take: limit,
    });
  }

  findRevision(ownerId: string, noteId: string, version: number): Promise<NoteRevision | null> {
    return this.revisions.findOneBy({ ownerId, noteId, version });
  }

  /** Every note of the owner without its body (an export reads each body when it writes that note), oldest first. */
  summariesOfOwner(ownerId: string): Promise<Pick<Note, 'id' | 'title' | 'createdAt' | 'updatedAt'>[]> {
    return this.notes.find({
      select: { id: true, title: true, createdAt: true, updatedAt: true },
      where: { ownerId },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
  }
}

function revisionOf(note: Note): NoteRevision {
  return Object.assign(new NoteRevision(), {
    noteId: note.id,
    version: note.version,
    ownerId: note.ownerId,
    title: note.title,
    body: note.body,
    createdAt: note.updatedAt,
  });
}
