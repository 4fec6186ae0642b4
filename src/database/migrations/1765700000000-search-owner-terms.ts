import { MigrationInterface, QueryRunner } from 'typeorm';
import {
  SQLITE_OWNER_TERMS_FUNCTION,
  SQLITE_PREFIX_INDEXES,
  SQLITE_TERMS_FUNCTION,
  SQLITE_TOKENIZER,
} from '../../notes/search/search-sql';

const TRIGGERS = ['notes_search_insert', 'notes_search_update', 'notes_search_delete'];

/**
 * SQLite: every search term under its owner's key and part (`<key>t<term>` for the title, `<key>b<term>`
 * for the body; see sqliteNoteTerms), in one column. Before it, a query intersected the owner's term with
 * lists that every owner's notes share, so an owner's search cost grew with the whole table; a title-only
 * query also read the body's positions to filter them out. Now an FTS5 list holds one owner's notes with
 * the word where the query wants it. The table is contentless, so it is made again, with new triggers,
 * and refilled from `notes`. Postgres: nothing (the same keying there made the GIN index ten times bigger
 * and the big owner's queries slower: docs/PERFORMANCE.md).
 */
export class SearchOwnerTerms1765700000000 implements MigrationInterface {
  name = 'SearchOwnerTerms1765700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'postgres') return;
    await this.dropSearch(queryRunner);
    await queryRunner.query(`CREATE VIRTUAL TABLE notes_search USING fts5(terms, content='', contentless_delete=1,
      tokenize="${SQLITE_TOKENIZER}", prefix='${SQLITE_PREFIX_INDEXES}')`);
    const terms = (row: string) => `${SQLITE_OWNER_TERMS_FUNCTION}(${row}owner_id, ${row}title, ${row}body)`;
    await this.createTriggers(queryRunner, '(rowid, terms)', terms('new.'));
    await queryRunner.query(`INSERT INTO notes_search (rowid, terms) SELECT rowid, ${terms('')} FROM notes`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'postgres') return;
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
