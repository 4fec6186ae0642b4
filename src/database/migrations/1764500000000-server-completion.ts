import { MigrationInterface, QueryRunner, TableColumn, TableIndex } from 'typeorm';

/**
 * Uploads the phone never completed are completed by the janitor: who completed a clip, and when the
 * janitor next looks for a pending clip's upload. Plus the index of a user's clips, newest first.
 */
export class ServerCompletion1764500000000 implements MigrationInterface {
  name = 'ServerCompletion1764500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const timestamp = queryRunner.connection.driver.options.type === 'postgres' ? 'timestamptz' : 'datetime';
    await queryRunner.addColumns('audio_clips', [
      new TableColumn({ name: 'completed_by', type: 'varchar', length: '16', isNullable: true }),
      new TableColumn({ name: 'upload_check_at', type: timestamp, isNullable: true }),
    ]);
    // Every clip completed so far was completed by its phone.
    await queryRunner.query("UPDATE audio_clips SET completed_by = 'client' WHERE status = 'ready'");
    // Pending clips are looked at once their URL has run out (older rows without one: at the next pass).
    await queryRunner.query(
      "UPDATE audio_clips SET upload_check_at = COALESCE(upload_expires_at, created_at) WHERE status = 'pending'",
    );
    await queryRunner.createIndex(
      'audio_clips',
      new TableIndex({ name: 'idx_audio_clips_status_upload_check', columnNames: ['status', 'upload_check_at'] }),
    );
    // GET /api/audio-clips: a user's clips, newest first, page by page. Without `id`: with it, the index
    // matches `owner_id = ? AND id = ?` as well as the primary key does, and Postgres may take it for
    // the by-id read (the migration test's plan check saw it do so); ties on created_at are rare.
    await queryRunner.createIndex(
      'audio_clips',
      new TableIndex({ name: 'idx_audio_clips_owner_created', columnNames: ['owner_id', 'created_at'] }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('audio_clips', 'idx_audio_clips_owner_created');
    await queryRunner.dropIndex('audio_clips', 'idx_audio_clips_status_upload_check');
    await queryRunner.dropColumn('audio_clips', 'upload_check_at');
    await queryRunner.dropColumn('audio_clips', 'completed_by');
  }
}
