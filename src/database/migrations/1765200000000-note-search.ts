import { MigrationInterface, QueryRunner } from 'typeorm';
import {
  collationCaseGaps,
  LOCALE_FREE_COLLATIONS,
  postgresSearchFunctions,
  SQLITE_TERMS_FUNCTION,
  SQLITE_TOKENIZER,
  type LocaleFreeCollation,
} from '../../notes/search/search-sql';

/**
 * Full-text search over notes (docs/search.md). The database keeps the index in step on every write,
 * whichever code path makes it: Postgres through a trigger filling `note_search` (a tsvector per note
 * with a GIN index), SQLite through triggers filling the FTS5 table `notes_search`. Both index the
 * terms of search-text.ts; notes that exist already are indexed here.
 */
export class NoteSearch1765200000000 implements MigrationInterface {
  name = 'NoteSearch1765200000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'postgres') await this.upPostgres(queryRunner);
    else await this.upSqlite(queryRunner);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'postgres') {
      await queryRunner.query('DROP TRIGGER notes_search_sync ON notes');
      await queryRunner.query('DROP FUNCTION notes_search_sync()');
      await queryRunner.query('DROP TABLE note_search');
      await queryRunner.query('DROP FUNCTION notes_search_vector(text, text)');
      await queryRunner.query('DROP FUNCTION notes_search_terms(text)');
      await queryRunner.query('DROP FUNCTION notes_search_fold(text)');
      return;
    }
    for (const trigger of SQLITE_TRIGGERS) await queryRunner.query(`DROP TRIGGER ${trigger}`);
    await queryRunner.query('DROP TABLE notes_search');
  }

  private async upPostgres(queryRunner: QueryRunner): Promise<void> {
    const collations = (await queryRunner.query('SELECT collname FROM pg_collation WHERE collname = ANY ($1)', [
      [...LOCALE_FREE_COLLATIONS],
    ])) as { collname: LocaleFreeCollation }[];
    const collation = LOCALE_FREE_COLLATIONS.find((name) => collations.some((row) => row.collname === name)) ?? null;
    const gaps = collation
      ? await collationCaseGaps((sql, parameters) => queryRunner.query(sql, parameters), collation)
      : {};
    for (const statement of postgresSearchFunctions(collation, gaps)) await queryRunner.query(statement);
    // Owner and time beside the terms: one owner's matches, newest first, without visiting `notes`.
    await queryRunner.query(`CREATE TABLE note_search (
      note_id varchar(36) PRIMARY KEY REFERENCES notes (id) ON DELETE CASCADE ON UPDATE CASCADE,
      owner_id varchar(255) NOT NULL,
      updated_at timestamptz NOT NULL,
      terms tsvector NOT NULL
    )`);
    await queryRunner.query(`CREATE FUNCTION notes_search_sync() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF TG_OP = 'UPDATE' AND NEW.title = OLD.title AND NEW.body = OLD.body THEN
          UPDATE note_search SET owner_id = NEW.owner_id, updated_at = NEW.updated_at WHERE note_id = NEW.id;
        ELSE
          INSERT INTO note_search (note_id, owner_id, updated_at, terms)
          VALUES (NEW.id, NEW.owner_id, NEW.updated_at, notes_search_vector(NEW.title, NEW.body))
          ON CONFLICT (note_id) DO UPDATE
            SET owner_id = EXCLUDED.owner_id, updated_at = EXCLUDED.updated_at, terms = EXCLUDED.terms;
        END IF;
        RETURN NULL;
      END
    $fn$`);
    // A deleted note's row goes by its foreign key (ON DELETE CASCADE).
    await queryRunner.query(`CREATE TRIGGER notes_search_sync AFTER INSERT OR UPDATE OF id, owner_id, title, body, updated_at
      ON notes FOR EACH ROW EXECUTE FUNCTION notes_search_sync()`);
    await queryRunner.query(`INSERT INTO note_search (note_id, owner_id, updated_at, terms)
      SELECT id, owner_id, updated_at, notes_search_vector(title, body) FROM notes`);
    // Built after the rows are in: faster than growing it row by row. Without fastupdate, a write puts its
    // terms into the index itself rather than a pending list every search must also read (notes are written
    // far less often than searched).
    await queryRunner.query(
      'CREATE INDEX idx_note_search_terms ON note_search USING gin (terms) WITH (fastupdate = off)',
    );
    await queryRunner.query(
      'CREATE INDEX idx_note_search_owner_updated ON note_search (owner_id, updated_at DESC, note_id DESC)',
    );
  }

  private async upSqlite(queryRunner: QueryRunner): Promise<void> {
    // Contentless: the text lives in `notes`; the FTS5 row of a note has the note's rowid.
    await queryRunner.query(`CREATE VIRTUAL TABLE notes_search USING fts5(
      owner, title, body, content='', contentless_delete=1, tokenize="${SQLITE_TOKENIZER}")`);
    const insert = (row: 'new') =>
      `INSERT INTO notes_search (rowid, owner, title, body) VALUES (${row}.rowid, hex(${row}.owner_id),
        ${SQLITE_TERMS_FUNCTION}(${row}.title, ${row}.body, 'title'), ${SQLITE_TERMS_FUNCTION}(${row}.title, ${row}.body, 'body'));`;
    await queryRunner.query(`CREATE TRIGGER notes_search_insert AFTER INSERT ON notes BEGIN ${insert('new')} END`);
    await queryRunner.query(`CREATE TRIGGER notes_search_update AFTER UPDATE OF owner_id, title, body ON notes BEGIN
      DELETE FROM notes_search WHERE rowid = old.rowid; ${insert('new')} END`);
    await queryRunner.query(
      'CREATE TRIGGER notes_search_delete AFTER DELETE ON notes BEGIN DELETE FROM notes_search WHERE rowid = old.rowid; END',
    );
    await queryRunner.query(`INSERT INTO notes_search (rowid, owner, title, body)
      SELECT rowid, hex(owner_id), ${SQLITE_TERMS_FUNCTION}(title, body, 'title'), ${SQLITE_TERMS_FUNCTION}(title, body, 'body') FROM notes`);
  }
}

const SQLITE_TRIGGERS = ['notes_search_insert', 'notes_search_update', 'notes_search_delete'];
