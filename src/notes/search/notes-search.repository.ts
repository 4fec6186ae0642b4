import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { timestampParameter } from '../../database/database.options';
import { SqlStatements } from '../../database/sql-statements';
import type { NoteRow } from '../notes.repository';
import type { SearchCursor } from './search-cursor';
import { toFtsQuery, toTsQuery, type SearchQuery } from './search-query';
import { ownerSearchKey } from './search-sql';

export interface SearchRow {
  id: string;
  title: string;
  body: string;
  version: number;
  /** ISO 8601, as the API answers (no Date made and formatted again for each hit). */
  createdAt: string;
  updatedAt: string;
  titleMatch: boolean;
}

export type RawRow = NoteRow & { title_match: boolean | number };

/**
 * The search queries, one per database, always scoped by owner. Postgres: `note_search` (tsvector, GIN
 * index; owner and time beside it); SQLite: the FTS5 table `notes_search`, whose terms each start with
 * their owner's key. Order: title matches every term first, then newest `updated_at`, then id — the cursor's order.
 */
@Injectable()
export class NotesSearchRepository {
  private readonly postgres: boolean;
  private readonly sql: SqlStatements;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {
    this.postgres = dataSource.options.type === 'postgres';
    this.sql = new SqlStatements(dataSource);
  }

  async search(ownerId: string, query: SearchQuery, limit: number, after?: SearchCursor): Promise<SearchRow[]> {
    const rows = (
      this.postgres
        ? await this.searchPostgres(ownerId, query, limit, after)
        : await this.searchSqlite(ownerId, query, limit, after)
    ) as RawRow[];
    return rows.map((row) => ({
      id: row.id,
      title: row.title,
      body: row.body,
      version: Number(row.version),
      createdAt: this.sql.iso(row.created_at),
      updatedAt: this.sql.iso(row.updated_at),
      titleMatch: row.title_match === true || row.title_match === 1,
    }));
  }

  /**
   * Two ordered halves, each in the order of `idx_note_search_owner_updated`, so that Postgres can either
   * walk the owner's notes newest first and stop at the page (a common word) or take the few matches from
   * the GIN index and sort them (a rare one), instead of ranking every match.
   */
  private searchPostgres(ownerId: string, query: SearchQuery, limit: number, after?: SearchCursor): Promise<unknown> {
    const params: unknown[] = [ownerId, toTsQuery(query), toTsQuery(query, true), limit];
    let titleCursor = '';
    let restCursor = '';
    if (after) {
      params.push(after.updatedAt, after.id);
      if (after.titleMatch) titleCursor = 'AND (s.updated_at, s.note_id) < ($5, $6)';
      else {
        titleCursor = 'AND false';
        restCursor = 'AND (s.updated_at, s.note_id) < ($5, $6)';
      }
    }
    return this.dataSource.query(
      POSTGRES_SEARCH_SQL.replace('/*title cursor*/', titleCursor).replace('/*rest cursor*/', restCursor),
      params,
    );
  }

  private searchSqlite(ownerId: string, query: SearchQuery, limit: number, after?: SearchCursor): Promise<unknown> {
    // Prepared once on the driver's own connection, as the hot reads are: TypeORM's query path costs more
    // than the search itself on small pages.
    return searchSqlite((sql, params) => this.sql.all(sql, params), ownerId, query, limit, after);
  }
}

const POSTGRES_HALF = (
  titleMatch: boolean,
) => `(SELECT n.id, n.title, n.body, n.version, n.created_at, n.updated_at, ${titleMatch} AS title_match
    FROM note_search s JOIN notes n ON n.id = s.note_id
    WHERE s.owner_id = $1 AND n.owner_id = $1 AND s.terms @@ $2::tsquery AND ${titleMatch ? '' : 'NOT '}s.terms @@ $3::tsquery
      /*${titleMatch ? 'title' : 'rest'} cursor*/
    ORDER BY s.updated_at DESC, s.note_id DESC
    LIMIT $4)`;

/** Notes whose title matches every term, then the others; the "title cursor" and "rest cursor" comments mark where each half is narrowed. */
export const POSTGRES_SEARCH_SQL = `SELECT * FROM (${POSTGRES_HALF(true)} UNION ALL ${POSTGRES_HALF(false)}) AS hits
  ORDER BY title_match DESC, updated_at DESC, id DESC
  LIMIT $4`;

/**
 * The hits of an FTS5 expression (its terms are the owner's: see sqliteNoteTerms), counted up to the
 * second parameter, and their rowids as a JSON array (complete when fewer than that).
 */
export const SQLITE_HITS_SQL = `SELECT count(*) AS hits, json_group_array(r) AS rowids
  FROM (SELECT rowid AS r FROM notes_search WHERE notes_search MATCH ? LIMIT ?)`;
const SQLITE_HIT_COLUMNS = 'n.id, n.title, n.body, n.version, n.created_at, n.updated_at';
const SQLITE_CURSOR = 'AND (n.updated_at, n.id) < (?, ?)';
/** Few hits: each by its rowid, then sorted (NOT INDEXED keeps SQLite from walking the owner's notes instead). */
export const SQLITE_SORTED_HITS_SQL = (cursor: boolean) =>
  `SELECT ${SQLITE_HIT_COLUMNS} FROM notes n NOT INDEXED
    WHERE n.rowid IN (SELECT value FROM json_each(?)) AND n.owner_id = ? ${cursor ? SQLITE_CURSOR : ''}
    ORDER BY n.updated_at DESC, n.id DESC LIMIT ?`;
/**
 * Many hits: the owner's notes newest first through idx_notes_owner_updated, each kept if its rowid (in
 * the index entry, so no row is read for the others) is among the hits, until the page is full.
 */
export const SQLITE_WALKED_HITS_SQL = (cursor: boolean) =>
  `SELECT ${SQLITE_HIT_COLUMNS} FROM notes n INDEXED BY idx_notes_owner_updated
    WHERE n.owner_id = ? AND n.rowid IN (SELECT rowid FROM notes_search WHERE notes_search MATCH ?) ${cursor ? SQLITE_CURSOR : ''}
    ORDER BY n.updated_at DESC, n.id DESC LIMIT ?`;
/**
 * Up to this many hits are sorted; past it the owner's notes are walked. Sorting costs about 2.6 µs a hit
 * (a rowid lookup each); a walk, about 0.3 µs a hit (the set of hits it tests against) and 0.1 µs an index
 * entry it passes before the page is full (about limit × owner's notes / hits). At 500 the two cost the
 * same for an owner of about 100,000 notes, and neither grows with the owner's notes the way sorting every
 * hit did (docs/PERFORMANCE.md).
 */
export const SQLITE_SORT_AT_MOST = 500;

type Run = (sql: string, params: unknown[]) => Promise<unknown[]> | unknown[];

/**
 * SQLite search, each half (the title has every term, then the rest) read newest first: FTS5 gives its
 * hits up to SQLITE_SORT_AT_MOST + 1; when there are no more than SQLITE_SORT_AT_MOST, they are read by
 * rowid and sorted, else one statement walks the owner's notes with the hits coming from FTS5 inside it.
 * The rest half is only read when the title hits do not fill the page. Exported so that the bench's
 * baseline runs exactly these statements.
 */
export async function searchSqlite(
  run: Run,
  ownerId: string,
  query: SearchQuery,
  limit: number,
  after?: SearchCursor,
): Promise<RawRow[]> {
  const key = ownerSearchKey(ownerId);
  const cursorParams = after ? [timestampParameter('better-sqlite3', after.updatedAt), after.id] : [];
  const half = async (expression: string, cursor: boolean, want: number, titleMatch: boolean): Promise<RawRow[]> => {
    const [{ hits, rowids }] = (await run(SQLITE_HITS_SQL, [expression, SQLITE_SORT_AT_MOST + 1])) as {
      hits: number;
      rowids: string;
    }[];
    if (hits === 0) return [];
    const extra = cursor ? cursorParams : [];
    const rows = (
      hits <= SQLITE_SORT_AT_MOST
        ? await run(SQLITE_SORTED_HITS_SQL(cursor), [rowids, ownerId, ...extra, want])
        : await run(SQLITE_WALKED_HITS_SQL(cursor), [ownerId, expression, ...extra, want])
    ) as RawRow[];
    for (const row of rows) row.title_match = titleMatch;
    return rows;
  };
  // The title hits first: when they fill the page (a common word), the other hits are never read. A cursor
  // in the title half continues it, then the rest from its start; one in the rest continues the rest.
  const title = toFtsQuery(query, key, true);
  const titleRows = after && !after.titleMatch ? [] : await half(title, after !== undefined, limit, true);
  if (titleRows.length >= limit) return titleRows;
  const rest = `(${toFtsQuery(query, key)}) NOT (${title})`;
  const restRows = await half(rest, after !== undefined && !after.titleMatch, limit - titleRows.length, false);
  return [...titleRows, ...restRows];
}
