import { MigrationInterface, QueryRunner, Table, TableColumn, TableIndex } from 'typeorm';

/**
 * The clip lifecycle: uploads land under their own key and are moved into place on completion;
 * measured durations; failure reasons; optional checksums; idempotent creation; and the outbox of
 * storage deletions that must happen even when the store is down at the time.
 */
export class ClipLifecycle1764400000000 implements MigrationInterface {
  name = 'ClipLifecycle1764400000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const timestamp = queryRunner.connection.driver.options.type === 'postgres' ? 'timestamptz' : 'datetime';

    // Clips from before this migration were uploaded straight to their storage key.
    await queryRunner.addColumn(
      'audio_clips',
      new TableColumn({ name: 'upload_key', type: 'varchar', length: '512', isNullable: true }),
    );
    await queryRunner.query('UPDATE audio_clips SET upload_key = storage_key');
    await queryRunner.changeColumn(
      'audio_clips',
      'upload_key',
      new TableColumn({ name: 'upload_key', type: 'varchar', length: '512', isNullable: false }),
    );

    await queryRunner.addColumn(
      'audio_clips',
      new TableColumn({ name: 'declared_duration_ms', type: 'integer', isNullable: true }),
    );
    await queryRunner.query('UPDATE audio_clips SET declared_duration_ms = duration_ms');
    await queryRunner.changeColumn(
      'audio_clips',
      'declared_duration_ms',
      new TableColumn({ name: 'declared_duration_ms', type: 'integer', isNullable: false }),
    );

    await queryRunner.addColumns('audio_clips', [
      new TableColumn({ name: 'duration_source', type: 'varchar', length: '16', default: "'declared'" }),
      new TableColumn({ name: 'content_md5', type: 'varchar', length: '24', isNullable: true }),
      new TableColumn({ name: 'failure_reason', type: 'varchar', length: '500', isNullable: true }),
      new TableColumn({ name: 'upload_expires_at', type: timestamp, isNullable: true }),
    ]);
    // The sweeper looks for old pending clips.
    await queryRunner.createIndex(
      'audio_clips',
      new TableIndex({ name: 'idx_audio_clips_status_created', columnNames: ['status', 'created_at'] }),
    );
    // The primary clip orders by (completed_at, id): with id in the index, the newest is read off it without a sort.
    await queryRunner.dropIndex('audio_clips', 'idx_audio_clips_note_ready');
    await queryRunner.createIndex(
      'audio_clips',
      new TableIndex({ name: 'idx_audio_clips_note_ready', columnNames: ['note_id', 'status', 'completed_at', 'id'] }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'storage_deletions',
        columns: [
          { name: 'storage_key', type: 'varchar', length: '512', isPrimary: true },
          // No upload URL can write the key after this; the last delete happens then.
          { name: 'delete_after', type: timestamp },
          { name: 'next_attempt_at', type: timestamp },
          { name: 'attempts', type: 'integer', default: 0 },
          // Bumped by every enqueue and claim: a worker only removes or reschedules the entry it claimed.
          { name: 'version', type: 'integer', default: 0 },
          { name: 'last_error', type: 'varchar', length: '500', isNullable: true },
          { name: 'created_at', type: timestamp },
        ],
        indices: [new TableIndex({ name: 'idx_storage_deletions_next_attempt', columnNames: ['next_attempt_at'] })],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'idempotency_keys',
        columns: [
          { name: 'owner_id', type: 'varchar', length: '255', isPrimary: true },
          { name: 'idempotency_key', type: 'varchar', length: '255', isPrimary: true },
          { name: 'request_hash', type: 'varchar', length: '64' },
          { name: 'clip_id', type: 'varchar', length: '36' },
          { name: 'created_at', type: timestamp },
        ],
        indices: [new TableIndex({ name: 'idx_idempotency_keys_created', columnNames: ['created_at'] })],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('idempotency_keys');
    await queryRunner.dropTable('storage_deletions');
    await queryRunner.dropIndex('audio_clips', 'idx_audio_clips_note_ready');
    await queryRunner.createIndex(
      'audio_clips',
      new TableIndex({ name: 'idx_audio_clips_note_ready', columnNames: ['note_id', 'status', 'completed_at'] }),
    );
    await queryRunner.dropIndex('audio_clips', 'idx_audio_clips_status_created');
    for (const column of [
      'upload_expires_at',
      'failure_reason',
      'content_md5',
      'duration_source',
      'declared_duration_ms',
      'upload_key',
    ]) {
      await queryRunner.dropColumn('audio_clips', column);
    }
  }
}
