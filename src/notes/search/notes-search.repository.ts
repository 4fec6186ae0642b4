import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { timestampParameter } from '../../database/database.options';
import { SqlStatements } from '../../database/sql-statements';
import type { SearchCursor } from './search-cursor';
import { toFtsQuery, toTsQuery, type SearchQuery } from './search-query';
import { ownerTerm } from './search-sql';

export interface SearchRow {
  id: string;
  title: string;
  body: string;
  version: number;
  createdAt: Date;
  updatedAt: Date;
  titleMatch: boolean;
}

interface RawRow {
  id: string;
  title: string;
  body: string;
  version: number | string;
  created_at: Date | string;
  updated_at: Date | string;
  title_match: boolean | number;
}

/**
 * The search queries, one per database, always scoped by owner. Postgres: `note_search` (tsvector, GIN
 * index; owner and time beside it); SQLite: the FTS5 table `notes_search`, whose rows carry the owner as a
 * term. Order: title matches every term first, then newest `updated_at`, then id — the cursor's order.
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
      createdAt: toDate(row.created_at),
      updatedAt: toDate(row.updated_at),
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
    const owner = `{owner} : "${ownerTerm(ownerId)}"`;
    const all = `${owner} AND (${toFtsQuery(query)})`;
    const title = `${owner} AND (${toFtsQuery(query, true)})`;
    const params: unknown[] = [title, all, ownerId];
    let cursor = '';
    if (after) {
      const updatedAt = timestampParameter('better-sqlite3', after.updatedAt);
      cursor = after.titleMatch
        ? `AND (${SQLITE_TITLE_MATCH} = 0 OR (n.updated_at, n.id) < (?, ?))`
        : `AND ${SQLITE_TITLE_MATCH} = 0 AND (n.updated_at, n.id) < (?, ?)`;
      params.push(title, updatedAt, after.id);
    }
    params.push(limit);
    // Prepared once on the driver's own connection, as the hot reads are: TypeORM's query path costs more
    // than the search itself on small pages.
    return this.sql.all(SQLITE_SEARCH_SQL.replace('/*cursor*/', cursor), params);
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

const SQLITE_TITLE_MATCH = '(s.rowid IN (SELECT rowid FROM notes_search WHERE notes_search MATCH ?))';

/** CROSS JOIN keeps SQLite's join order: the full-text index first, then each match's note by rowid. */
export const SQLITE_SEARCH_SQL = `SELECT n.id, n.title, n.body, n.version, n.created_at, n.updated_at, ${SQLITE_TITLE_MATCH} AS title_match
  FROM notes_search s CROSS JOIN notes n ON n.rowid = s.rowid
  WHERE notes_search MATCH ? AND n.owner_id = ? /*cursor*/
  ORDER BY title_match DESC, n.updated_at DESC, n.id DESC
  LIMIT ?`;

/** SQLite hands timestamps back as `YYYY-MM-DD HH:MM:SS.SSS` text in UTC; Postgres as Dates. */
function toDate(value: Date | string): Date {
  return value instanceof Date ? value : new Date(`${value.replace(' ', 'T')}Z`);
}
