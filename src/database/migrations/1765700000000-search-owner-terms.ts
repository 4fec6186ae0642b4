import { MigrationInterface, QueryRunner } from 'typeorm';
import {
  postgresOwnerVectorFunction,
  SQLITE_OWNER_TERMS_FUNCTION,
  SQLITE_PREFIX_INDEXES,
  SQLITE_TERMS_FUNCTION,
  SQLITE_TOKENIZER,
} from '../../notes/search/search-sql';

const TRIGGERS = ['notes_search_insert', 'notes_search_update', 'notes_search_delete'];

/**
 * SQLite: every search term under its owner's key and part (`<key>t<term>` for the title, `<key>b<term>`
 * for the body; see sqliteNoteTerms), in one column. Before it, a query intersected the owner's term with
 * words that every owner's notes share, so an owner's search cost grew with the whole table and with all
 * of the owner's notes; a title-only query also read the body's positions to filter them out. Now an
 * FTS5 list holds one owner's notes with the word where the query wants it. The table is contentless, so
 * it is made again, with new triggers, and refilled from `notes`. Postgres: nothing to do here.
 */
export class SearchOwnerTerms1765700000000 implements MigrationInterface {
  name = 'SearchOwnerTerms1765700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'postgres') {
      await queryRunner.query(postgresOwnerVectorFunction());
      await this.rebuildPostgres(
        queryRunner,
        'notes_search_owner_vector(NEW.owner_id, NEW.title, NEW.body)',
        'notes_search_owner_vector(n.owner_id, n.title, n.body)',
      );
      return;
    }
    await this.dropSearch(queryRunner);
    await queryRunner.query(`CREATE VIRTUAL TABLE notes_search USING fts5(terms, content='', contentless_delete=1,
      tokenize="${SQLITE_TOKENIZER}", prefix='${SQLITE_PREFIX_INDEXES}')`);
    const terms = (row: string) => `${SQLITE_OWNER_TERMS_FUNCTION}(${row}owner_id, ${row}title, ${row}body)`;
    await this.createTriggers(queryRunner, '(rowid, terms)', terms('new.'));
    await queryRunner.query(`INSERT INTO notes_search (rowid, terms) SELECT rowid, ${terms('')} FROM notes`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'postgres') {
      await this.rebuildPostgres(
        queryRunner,
        'notes_search_vector(NEW.title, NEW.body)',
        'notes_search_vector(n.title, n.body)',
      );
      await queryRunner.query('DROP FUNCTION notes_search_owner_vector(text, text, text)');
      return;
    }
    await this.dropSearch(queryRunner);
    await queryRunner.query(`CREATE VIRTUAL TABLE notes_search USING fts5(owner, title, body, content='',
      contentless_delete=1, tokenize="${SQLITE_TOKENIZER}", prefix='2 3')`);
    const values = (row: string) =>
      `hex(${row}owner_id), ${SQLITE_TERMS_FUNCTION}(${row}title, ${row}body, 'title'), ${SQLITE_TERMS_FUNCTION}(${row}title, ${row}body, 'body')`;
    await this.createTriggers(queryRunner, '(rowid, owner, title, body)', values('new.'));
    await queryRunner.query(
      `INSERT INTO notes_search (rowid, owner, title, body) SELECT rowid, ${values('')} FROM notes`,
    );
  }

  /**
   * The trigger computes `vector` (terms now depend on the owner too, so a new owner recomputes them), and
   * every row is computed again with `rebuilt`, under a GIN index made afresh once they are in.
   */
  private async rebuildPostgres(queryRunner: QueryRunner, vector: string, rebuilt: string): Promise<void> {
    await queryRunner.query(`CREATE OR REPLACE FUNCTION notes_search_sync() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF TG_OP = 'UPDATE' AND NEW.title = OLD.title AND NEW.body = OLD.body AND NEW.owner_id = OLD.owner_id THEN
          UPDATE note_search SET updated_at = NEW.updated_at WHERE note_id = NEW.id;
        ELSE
          INSERT INTO note_search (note_id, owner_id, updated_at, terms)
          VALUES (NEW.id, NEW.owner_id, NEW.updated_at, ${vector})
          ON CONFLICT (note_id) DO UPDATE
            SET owner_id = EXCLUDED.owner_id, updated_at = EXCLUDED.updated_at, terms = EXCLUDED.terms;
        END IF;
        RETURN NULL;
      END
    $fn$`);
    await queryRunner.query('DROP INDEX idx_note_search_terms');
    await queryRunner.query(`UPDATE note_search s SET terms = ${rebuilt} FROM notes n WHERE n.id = s.note_id`);
    await queryRunner.query(
      'CREATE INDEX idx_note_search_terms ON note_search USING gin (terms) WITH (fastupdate = off)',
    );
  }

  private async dropSearch(queryRunner: QueryRunner): Promise<void> {
    for (const trigger of TRIGGERS) await queryRunner.query(`DROP TRIGGER ${trigger}`);
    await queryRunner.query('DROP TABLE notes_search');
  }

  private async createTriggers(queryRunner: QueryRunner, columns: string, values: string): Promise<void> {
    const insert = `INSERT INTO notes_search ${columns} VALUES (new.rowid, ${values});`;
    await queryRunner.query(`CREATE TRIGGER notes_search_insert AFTER INSERT ON notes BEGIN ${insert} END`);
    await queryRunner.query(`CREATE TRIGGER notes_search_update AFTER UPDATE OF owner_id, title, body ON notes BEGIN
      DELETE FROM notes_search WHERE rowid = old.rowid; ${insert} END`);
    await queryRunner.query(
      'CREATE TRIGGER notes_search_delete AFTER DELETE ON notes BEGIN DELETE FROM notes_search WHERE rowid = old.rowid; END',
    );
  }
}
