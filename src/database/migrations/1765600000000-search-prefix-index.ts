import { MigrationInterface, QueryRunner } from 'typeorm';
import { SQLITE_TERMS_FUNCTION, SQLITE_TOKENIZER } from '../../notes/search/search-sql';

/**
 * SQLite: FTS5 prefix indexes for 2- and 3-character prefixes. The last word of every query is a prefix
 * (search as you type), and without them FTS5 answers a short prefix by merging the lists of every term
 * that starts with it (hundreds). The table is contentless, so it is made again and refilled from `notes`;
 * the triggers of the search migration write to it by name and carry on. Postgres: nothing to do (its GIN
 * index answers prefixes from its sorted terms).
 */
export class SearchPrefixIndex1765600000000 implements MigrationInterface {
  name = 'SearchPrefixIndex1765600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await this.rebuild(queryRunner, ", prefix='2 3'");
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await this.rebuild(queryRunner, '');
  }

  private async rebuild(queryRunner: QueryRunner, options: string): Promise<void> {
    if (queryRunner.connection.driver.options.type === 'postgres') return;
    await queryRunner.query('DROP TABLE notes_search');
    await queryRunner.query(`CREATE VIRTUAL TABLE notes_search USING fts5(
      owner, title, body, content='', contentless_delete=1, tokenize="${SQLITE_TOKENIZER}"${options})`);
    await queryRunner.query(`INSERT INTO notes_search (rowid, owner, title, body)
      SELECT rowid, hex(owner_id), ${SQLITE_TERMS_FUNCTION}(title, body, 'title'), ${SQLITE_TERMS_FUNCTION}(title, body, 'body') FROM notes`);
  }
}
