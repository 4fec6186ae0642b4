import { MigrationInterface, QueryRunner, Table, TableForeignKey, TableIndex } from 'typeorm';

/** The first schema. Written with TypeORM's Table API so one migration serves Postgres and SQLite alike. */
export class CreateNotesAndAudioClips1764220000000 implements MigrationInterface {
  name = 'CreateNotesAndAudioClips1764220000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const timestamp = queryRunner.connection.driver.options.type === 'postgres' ? 'timestamptz' : 'datetime';

    await queryRunner.createTable(
      new Table({
        name: 'notes',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'title', type: 'varchar', length: '200' },
          { name: 'body', type: 'text' },
          { name: 'created_at', type: timestamp },
          { name: 'updated_at', type: timestamp },
        ],
        indices: [new TableIndex({ name: 'idx_notes_created_at_id', columnNames: ['created_at', 'id'] })],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'audio_clips',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'note_id', type: 'varchar', length: '36', isNullable: true },
          { name: 'status', type: 'varchar', length: '16' },
          { name: 'mime_type', type: 'varchar', length: '255' },
          { name: 'bytes', type: 'bigint' },
          { name: 'duration_ms', type: 'integer' },
          { name: 'storage_key', type: 'varchar', length: '512', isUnique: true },
          { name: 'created_at', type: timestamp },
          { name: 'updated_at', type: timestamp },
          { name: 'completed_at', type: timestamp, isNullable: true },
        ],
        foreignKeys: [
          new TableForeignKey({
            name: 'fk_audio_clips_note',
            columnNames: ['note_id'],
            referencedTableName: 'notes',
            referencedColumnNames: ['id'],
            onDelete: 'CASCADE',
          }),
        ],
        indices: [
          // The note's primary clip: its most recently completed ready clip.
          new TableIndex({ name: 'idx_audio_clips_note_ready', columnNames: ['note_id', 'status', 'completed_at'] }),
          // A note's clips, newest first, page by page.
          new TableIndex({ name: 'idx_audio_clips_note_created', columnNames: ['note_id', 'created_at', 'id'] }),
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('audio_clips');
    await queryRunner.dropTable('notes');
  }
}
