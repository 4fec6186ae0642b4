import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An owner's notes newest first: SQLite search walks it when a query has many hits (instead of sorting
 * them all). Plain SQL rather than TypeORM's index helpers, which may rebuild the table on SQLite and drop
 * its triggers (sync and search).
 */
export class NotesOwnerUpdated1765500000000 implements MigrationInterface {
  name = 'NotesOwnerUpdated1765500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('CREATE INDEX idx_notes_owner_updated ON notes (owner_id, updated_at, id)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX idx_notes_owner_updated');
  }
}
